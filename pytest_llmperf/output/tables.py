"""The end-of-session tables: per configuration, one in the FoodExtract tutorial's terms and one of
latency and memory; then the comparison with a stored earlier run, then the environment differences.

"total time" is the median measured round (one round = the whole workload); samples/s, speedup
and the projection derive from it. A case whose rounds were not steady (``stats.Steadiness``: their
CV above --llmperf-max-cv, or a slow first round) has its figures marked ``~``, and so has a speedup
either of whose cases is; the cases and their CVs are named under the table. Untimed runs
(``--benchmark-disable``, or outputs-only tests) show their consistency columns and '-' for time.
The same tables go to ``$GITHUB_STEP_SUMMARY`` as Markdown when it is set, and each test's figures
go into JUnit XML as ``<properties>``. A configuration with speculative decoding adds its acceptance
rate, tokens per forward pass and speedup over the same case without it (from that case's row when
it ran later).
"""

from __future__ import annotations

from statistics import median

from ..measure.compare import divergence_summary
from ..measure.results import SECONDS_PER_DAY, RunResult
from ..model.shapes import is_shape
from ..settings.options import NO_QUANTIZATION

COLUMNS = ("batch size", "strategy", "length match", "avg similarity to bs=1", "avg similarity to reference",
           "total time", "samples/s", "speedup vs bs=1", "projected samples per day", "prefill padding")
# A quantized configuration's table adds its outputs against the unquantized model's bs=1 outputs, after the
# bs=1 column: samples identical, mean similarity, and how the others diverge (near-tie or confident change).
UNQUANTIZED_COLUMNS = ("match unquantized", "similarity to unquantized", "divergence from unquantized")


def render(records: list[dict]) -> str:
    """One table per configuration, from the results' records (``RunResult.record``: what the results
    file holds and xdist workers send), so every process prints the same tables; records of several
    machines (a merged run's: ``record["machine"]``) get tables of their own, titled with the machine. A row is one test's
    run of a case: when two tests time the same strategy and batch size, both rows show, each with
    the speedup its own test computed (the ``speedup_vs_bs1`` saved in the JSON), and a "test"
    column tells them apart."""
    groups: dict[tuple, dict[tuple, dict]] = {}
    for record in records:
        info = record["extra_info"]
        rows = groups.setdefault((record.get("machine"), info["model"], info["config_hash"], info["workload_hash"]), {})
        key = (record["test"], info["strategy"], info["batch_size"], bool(info.get("batch_size_search")))
        rows[key] = record  # the latest of a test's runs of a case
    machines = {machine for machine, *_ in groups}
    tables = []
    for (machine, *_), rows in groups.items():
        ordered = _rows(list(rows.values()))
        tables.append(_table(ordered, records, machine if len(machines) > 1 else None))
        if any(r["timed"] for r in ordered):
            tables.append(_second_table(ordered))
    unavailable = _telemetry_lines(records)
    return "\n\n".join([*tables, "\n".join(unavailable)] if unavailable else tables)


def _rows(records: list[dict]) -> list[dict]:
    """Timed rows, one per test; an untimed case (outputs only) once, and only when nothing timed it:
    its outputs are the same whichever test ran it (and under xdist, whichever worker)."""
    timed_cases = {_case(r) for r in records if r["timed"]}
    untimed = {}
    for record in records:
        if not record["timed"] and _case(record) not in timed_cases:
            untimed.setdefault(_case(record), record)
    shown = [r for r in records if r["timed"]] + list(untimed.values())
    return sorted(shown, key=lambda r: (*_case(r), r["test"]))  # a "max" row after its size's


def _second_table(ordered: list[dict]) -> str:
    """Latency and memory per case, from its recorded rounds (``latency.py``, ``instruments.PeakMemory``):
    TTFT, ITL and e2e percentiles over every request, the peak memory and the part above the model.
    A column that nothing measured (reserved memory off CUDA) is left out."""
    timed = [r for r in ordered if r["timed"]]
    tests = {r["test"] for r in timed}
    infos = [r["extra_info"] for r in timed]
    milliseconds = lambda value: "-" if value is None else f"{value:,.1f} ms"  # noqa: E731
    megabytes = lambda value: "-" if value is None else f"{value:,.1f} MB"  # noqa: E731
    columns = {  # header -> cell of a row's extra_info
        "TTFT p50": lambda info: milliseconds(info.get("ttft_ms_p50")),
        "TTFT p95": lambda info: milliseconds(info.get("ttft_ms_p95")),
        "ITL p50": lambda info: milliseconds(info.get("itl_ms_p50")),
        "ITL p95": lambda info: milliseconds(info.get("itl_ms_p95")),
        "e2e p95": lambda info: milliseconds(info.get("e2e_ms_p95")),
        "weights": lambda info: megabytes(info.get("weight_memory_mb")),
        "peak memory": lambda info: megabytes(info.get("peak_memory_mb")),
        "above the model": lambda info: megabytes(info.get("peak_memory_above_model_mb")),
        "reserved (CUDA)": lambda info: megabytes(info.get("peak_memory_reserved_mb")),
        "energy/token": lambda info: "-" if info.get("energy_per_token_j") is None else
        f"{1e3 * info['energy_per_token_j']:,.3g} mJ",
        "roofline": _roofline,
    }
    # a column only where something measured it
    optional = {"reserved (CUDA)": "peak_memory_reserved_mb", "energy/token": "energy_per_token_j"}
    shown = {header: cell for header, cell in columns.items()
             if header not in optional or any(info.get(optional[header]) is not None for info in infos)}
    body = [[*([r["test"].rsplit("::", 1)[-1]] if len(tests) > 1 else []), batch_size_label(r["extra_info"]),
             r["extra_info"]["strategy"], *(cell(r["extra_info"]) for cell in shown.values())] for r in timed]
    headers = (("test",) if len(tests) > 1 else ()) + ("batch size", "strategy", *shown)
    widths = _widths(headers, body)
    latency = sorted({info["latency_source"] for info in infos if info.get("latency_source")})
    memory = next((info["memory_measure"] for info in infos if info.get("memory_measure")), "not measured")
    roofline = _bandwidth_note(infos)
    energy = next((info["energy_measure"] for info in infos if info.get("energy_measure")), None)
    lines = [f"latency and memory (latency: {', '.join(latency) or 'not measured'}, percentiles over every request; "
             f"memory: {memory}; MB = 2**20 bytes{roofline}{f'; energy: {energy}' if energy else ''})",
             _row(headers, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
             *(_row(cells, widths) for cells in body)]
    lines += list(dict.fromkeys(f"roofline of {info['strategy']} bs={batch_size_label(info)}: {info['roofline_note']}"
                                if info["roofline_note"].startswith("probe disturbed") else
                                f"roofline: {info['roofline_note']}" for info in infos if info.get("roofline_note")))
    return "\n".join(lines)


def _roofline(info: dict) -> str:
    if info.get("roofline_note"):  # said under the table
        return "probe disturbed" if info["roofline_note"].startswith("probe disturbed") else "n/a"
    return "-" if info.get("roofline_fraction") is None else f"{info['roofline_fraction']:.1%}"


def _bandwidth_note(infos: list[dict]) -> str:
    """``; roofline: of 12.3 GB/s copy bandwidth (best of 4 probes; ...)``: the process's best probe,
    beside the device's own figure or why there is none."""
    best = max((info for info in infos if info.get("memory_bandwidth_gb_s")),
               key=lambda info: (info["memory_bandwidth_gb_s"], info.get("memory_bandwidth_probes") or 0), default=None)
    if best is None:
        return ""
    details = []
    if best.get("memory_bandwidth_probes"):
        details.append(f"best of {best['memory_bandwidth_probes']} probe{'s' * (best['memory_bandwidth_probes'] > 1)}")
    if best.get("device_memory_bandwidth_gb_s"):
        device = best["device_memory_bandwidth_gb_s"]
        details.append(f"{best['memory_bandwidth_gb_s'] / device:.0%} of the device's own {device:,.4g} GB/s")
    elif best.get("device_memory_bandwidth_source"):
        details.append(best["device_memory_bandwidth_source"])
    return (f"; roofline: of {best['memory_bandwidth_gb_s']:,.3g} GB/s copy bandwidth"
            + (f" ({', '.join(details)})" if details else ""))


def _telemetry_lines(records: list[dict]) -> list[str]:
    """Telemetry the session could not measure, said once (not once per case)."""
    unavailable = dict.fromkeys(r["extra_info"]["telemetry"] for r in records if r["timed"]
                                and str(r["extra_info"].get("telemetry") or "").startswith("not available"))
    return [f"GPU telemetry and energy: {reason}" for reason in unavailable]


def batch_size_label(info: dict) -> str:
    """``16``, or ``24 (max)`` for the largest batch size that fits."""
    return f"{info['batch_size']} (max)" if info.get("batch_size_search") else str(info["batch_size"])


def _table(ordered: list[dict], records: list[dict], machine: str | None = None) -> str:
    """``records``: the session's, where a speculative case finds its non-speculative row; ``machine``:
    named in the title where a merged run holds several."""
    tests = {r["test"] for r in ordered if r["timed"]}  # an untimed row is the case's, not a test's
    first = ordered[0]["extra_info"]
    rounds = {len(r["extra_info"]["round_s"]) for r in ordered if r["timed"]}
    timing_note = f"median of {'/'.join(map(str, sorted(rounds)))} measured round(s)" if rounds else "untimed"
    model = first["model"]
    quantized = first.get("quantization") not in (None, NO_QUANTIZATION)  # a run saved before quantization: None
    if is_shape(model):  # name the source: nothing was loaded
        model += f" (random weights, built{' and quantized' if quantized else ''} in {first['load_time_s']:.1f} s)"
    if first.get("prompt_tokens") is not None:
        workload = (f"dataset synthetic: {first['num_samples']} prompts x {first['prompt_tokens']} tokens, exactly "
                    f"{first['max_new_tokens']} new tokens each (EOS ignored)")
    else:
        workload = (f"dataset {first['dataset']}:{first['split']}, {first['num_samples']} samples, max_new_tokens "
                    f"{first['max_new_tokens']}")
    device = f"{first['device']} of {machine}" if machine else first["device"]
    details = f"{first['dtype']}, attn {first['attn_implementation']}" + (
        f", quantization {first['quantization']}" if quantized else "")
    speculative = _speculative_title(first)
    title = (f"llmperf: {model} [{first['config']}] on {device} ({details}){speculative} | {workload} | "
             f"total time = {timing_note}")
    plain_rows = _non_speculative_rows(first, records) if speculative else {}
    bs1_rows = {(r["test"], r["extra_info"]["strategy"]): r for r in ordered if r["extra_info"]["batch_size"] == 1}
    body = []
    for record in ordered:
        info = record["extra_info"]
        timed = record["timed"]
        mark = UNSTEADY if unsteady(info) else ""
        bs1 = bs1_rows.get((record["test"], info["strategy"]))
        speedup = _speedup(info, bs1)
        if speedup != "-" and info["batch_size"] != 1 and (mark or (bs1 is not None and unsteady(bs1["extra_info"]))):
            speedup = UNSTEADY + speedup
        body.append([
            *([record["test"].rsplit("::", 1)[-1]] if len(tests) > 1 else []),
            batch_size_label(info),
            info["strategy"],
            f"{round(info['length_match_to_bs1'] * info['num_samples'])}/{info['num_samples']}",
            f"{info['similarity_to_bs1']:.3f}",
            *(_unquantized_cells(info) if quantized else ()),
            _reference_cell(info),
            f"{mark}{median(info['round_s']):.3f} s" if timed else "-",
            f"{mark}{info['samples_per_s']:.2f}" if timed else "-",
            speedup,
            *((_acceptance(info), _tokens_per_forward(info),
               _speedup_vs_plain(info, plain_rows.get(_plain_key(record)))) if speculative else ()),
            f"{mark}{info['samples_per_s'] * SECONDS_PER_DAY:,.0f}" if timed else "-",
            _padding_cell(info),
        ])
    # the quantization columns after the bs=1 ones, the speculative ones after the speedup
    columns = (("test",) if len(tests) > 1 else ()) + COLUMNS[:4] + (UNQUANTIZED_COLUMNS if quantized else ()) \
        + COLUMNS[4:8] + (SPECULATIVE_COLUMNS if speculative else ()) + COLUMNS[8:]
    widths = _widths(columns, body)
    lines = [title, _row(columns, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(cells, widths) for cells in body]
    searches = {r["extra_info"]["strategy"]: r["extra_info"]["batch_size_search"]["summary"] for r in ordered
                if r["extra_info"].get("batch_size_search")}
    lines += [f"{strategy} bs=max: {summary}" for strategy, summary in searches.items()]
    if speculative:
        lines.append(SPECULATIVE_NOTE)
        lines += list(dict.fromkeys(f"acceptance n/a: {r['extra_info']['acceptance_rate_note']}" for r in ordered
                                    if r["extra_info"].get("acceptance_rate_note")))
    shaky = [r["extra_info"] for r in ordered if r["timed"] and unsteady(r["extra_info"])]
    if shaky:
        lines.append(f"{UNSTEADY} unsteady rounds, figures uncertain (a speedup is marked when either of its cases "
                     "is): " + "; ".join(f"{info['strategy']} bs={batch_size_label(info)} {_spread(info)}"
                                         for info in shaky)
                     + "; raise --llmperf-rounds or --llmperf-warmup, or quieten the machine")
    return "\n".join(lines)


def _padding_cell(info: dict) -> str:
    """The padded share of the prefill positions; n/a where nothing was padded (continuous batching packs
    its sequences) or a strategy did not report its batches. Results saved before it was measured: '-'."""
    if "padding_fraction" not in info:
        return "-"
    return "n/a" if info["padding_fraction"] is None else f"{info['padding_fraction']:.1%}"


def _unquantized_cells(info: dict) -> tuple[str, str, str]:
    """Samples identical to the unquantized model's bs=1 outputs, the mean similarity, the divergences."""
    if info.get("exact_match_to_unquantized") is None:
        return "-", "-", "-"
    identical = round(info["exact_match_to_unquantized"] * info["num_samples"])
    return (f"{identical}/{info['num_samples']}", f"{info['similarity_to_unquantized']:.3f}",
            divergence_summary(info["divergences_from_unquantized"]))


SPECULATIVE_COLUMNS = ("acceptance", "tokens/forward", "speedup vs non-speculative")
SPECULATIVE_NOTE = ("speculative decoding: length match and similarity are against the non-speculative bs=1 outputs; "
                    "acceptance = draft tokens kept / proposed; tokens/forward = tokens generated per forward pass of "
                    "the main model (1 without speculation)")


def _speculative_title(info: dict) -> str:
    """`` | speculative decoding: assisted, draft builtin``; '' for a configuration without it."""
    mode = info.get("speculative") or "none"
    if mode == "none":
        return ""
    config = info.get("speculative_config") or {}
    how = f"draft {info['draft_model']}" if info.get("draft_model") else \
        f"up to {config['prompt_lookup_num_tokens']} tokens per step" if "prompt_lookup_num_tokens" in config else ""
    return f" | speculative decoding: {mode}" + (f", {how}" if how else "")


def _acceptance(info: dict) -> str:
    if info.get("acceptance_rate_note"):
        return "n/a (random weights)"
    if info.get("acceptance_rate") is None:
        return "-" if info.get("draft_tokens_proposed") is None else "none proposed"
    return f"{info['acceptance_rate']:.3f} ({info['draft_tokens_accepted']}/{info['draft_tokens_proposed']})"


def _tokens_per_forward(info: dict) -> str:
    return "-" if info.get("tokens_per_forward") is None else f"{info['tokens_per_forward']:.2f}"


def _plain_key(record: dict) -> tuple:
    info = record["extra_info"]
    return record["test"], info["strategy"], info["batch_size"]


def _non_speculative_rows(first: dict, records: list[dict]) -> dict[tuple, dict]:
    """The timed rows of the same model, workload and configuration without speculative decoding
    (its configuration id without the mode), by (test, strategy, batch size)."""
    plain = first["config"].removesuffix(f"-{first['speculative']}")
    same = lambda info: (info["config"], info["model"], info["workload_hash"]) == (  # noqa: E731
        plain, first["model"], first["workload_hash"])
    return {_plain_key(r): r["extra_info"] for r in records if r["timed"] and same(r["extra_info"])}


def _speedup_vs_plain(info: dict, plain: dict | None) -> str:
    """The case's own speedup over its non-speculative run (what its JSON says); when that ran only
    after it, from the non-speculative row of the same test."""
    value = info.get("speedup_vs_non_speculative")
    if value is None and info["samples_per_s"] is not None and plain is not None and plain["samples_per_s"]:
        value = info["samples_per_s"] / plain["samples_per_s"]
    if value is None:
        return "-"
    return f"{UNSTEADY if unsteady(info) or (plain is not None and unsteady(plain)) else ''}{value:.2f}x"


def _reference_cell(info: dict) -> str:
    if is_shape(info["model"]):
        return "n/a (random weights)"
    return "-" if info["similarity_to_reference"] is None else f"{info['similarity_to_reference']:.3f}"


UNSTEADY = "~"  # the mark of a figure from unsteady rounds


def unsteady(info: dict) -> bool:
    """Whether a case's measured rounds were judged not steady (``extra_info["steady"]``)."""
    return info.get("steady") is False


def _spread(info: dict) -> str:
    """``(CV 48%, first round 2.9x the others)``: why a case's rounds were not steady."""
    parts = [f"CV {info['round_cv']:.0%}"] if info.get("round_cv") is not None else []
    if info.get("first_round_ratio") is not None and info["first_round_ratio"] > 1:
        parts.append(f"first round {info['first_round_ratio']:.2f}x the others")
    return f"({', '.join(parts)})" if parts else ""


def _case(record: dict) -> tuple:
    info = record["extra_info"]
    return info["strategy"], info["batch_size"], bool(info.get("batch_size_search"))


def _speedup(info: dict, bs1_row: dict | None) -> str:
    """The result's own speedup (what its JSON says); when its bs=1 ran only after it, from the bs=1
    row of the same test, so the column is filled whatever order the batch sizes ran in."""
    if info["samples_per_s"] is None:
        return "-"
    if info["batch_size"] == 1:
        return "1.00x"
    value = info["speedup_vs_bs1"]
    if value is None and bs1_row is not None and bs1_row["extra_info"]["samples_per_s"]:
        value = info["samples_per_s"] / bs1_row["extra_info"]["samples_per_s"]
    return "-" if value is None else f"{value:.2f}x"


def _row(cells, widths) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"


# -- against a stored earlier run ------------------------------------------------------------------

COMPARISON_COLUMNS = ("case", "metric", "baseline", "now", "change", "CI", "verdict")
GITHUB_SUMMARY_LIMIT = 1_000_000  # GitHub refuses a step summary above 1 MiB


def comparison_record(comparison) -> dict:
    """A ``regression.BaselineComparison`` as its table rows and environment lines (JSON types only:
    what an xdist worker sends its controller)."""
    name = _case_name(comparison.test_id)
    rows, speed_adjusted = [], False
    if comparison.status != "compared":
        rows.append([name, "-", "-", "-", "-", "-", f"{comparison.status}: {comparison.reason}"])
    elif comparison.other_hardware:  # the machine is said once, under the table
        rows.append([name, "timing", "-", "-", "-", "-", comparison.other_hardware.split(":", 1)[0]])
    for check in comparison.metrics if comparison.status == "compared" else ():
        change = check.change
        raw = check.now / check.baseline
        ratio = change.ratio if change else raw
        shown = f"{ratio - 1:+.1%}" + (f"* (raw {raw - 1:+.1%})" if check.speed_adjusted else "")
        speed_adjusted |= check.speed_adjusted
        rows.append([name, check.metric.label, f"{check.baseline:.4g}", f"{check.now:.4g}", shown,
                     f"{change.ci[0]:.3f}-{change.ci[1]:.3f}" if change else "-",
                     f"{check.verdict}: {check.speed_changed}" if check.speed_changed else
                     f"{check.verdict} (waited for a CPU)" if check.cpu_waited else
                     check.verdict + (" (low power)" if change and change.low_power else "")])
    drift = comparison.drift if comparison.status == "compared" else None
    if drift is not None:
        rows.append([name, "outputs", f"{drift.total} samples", f"{drift.identical} identical",
                     f"{drift.total - drift.identical} differ", "-", drift.verdict])
    return {
        "test": comparison.test_id, "rows": rows, "speed_adjusted": speed_adjusted,
        "baseline": comparison.baseline.label if comparison.baseline is not None else None,
        "compared": comparison.status == "compared",
        "hardware_differences": list(comparison.hardware_differences),
        "software_differences": list(comparison.software_differences),
        "causes": list(comparison.causes) if comparison.status == "compared" else [],  # shown even when passing
        "drifted": bool(drift is not None and drift.divergences),
        "other_hardware": comparison.other_hardware,
    }


def render_comparisons(records: list[dict]) -> str:
    """The comparison table (one row per case and metric, plus one for outputs), then what differs in
    the environment and what changed in the inputs (the likely causes of any drift), even when every
    gate passed. ``records``: ``comparison_record``s."""
    if not records:
        return ""
    body = []
    for test_id in dict.fromkeys(record["test"] for record in records):  # each case's rows together, once
        body += [row for record in records if record["test"] == test_id for row in record["rows"]]
    first = records[0]["baseline"]
    title = f"llmperf vs baseline {first}" if first is not None else "llmperf vs baseline"
    lines = [title, _row(COMPARISON_COLUMNS, widths := _widths(COMPARISON_COLUMNS, body)),
             "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(_row(cells, widths) for cells in body)]
    if any(record["speed_adjusted"] for record in records):
        lines.append("* at equal machine speed: each run's rounds scaled by the speed probe measured beside them "
                     "(raw: the medians as measured)")
    other_hardware = next((record["other_hardware"] for record in records if record.get("other_hardware")), "")
    if other_hardware:
        lines.append(f"{other_hardware} (its timing is judged once a baseline from this machine is merged in: "
                     "pytest-llmperf merge, docs/ci.md)")
    compared = [record for record in records if record["compared"]]
    if compared:
        hardware = compared[0]["hardware_differences"]
        software = compared[0]["software_differences"]
        lines.append("")
        lines.append("environment: hardware " + ("differs: " + "; ".join(hardware) +
                                                 " (timing not comparable)" if hardware else "identical"))
        lines.append("environment: software " + ("differs: " + "; ".join(software) if software else "identical"))
    causes = list(dict.fromkeys(cause for record in compared for cause in record["causes"]))
    if causes:
        title = "likely causes of the drift" if any(record["drifted"] for record in compared) else \
            "changed since the baseline"
        lines.append(f"{title}: " + "; ".join(causes))
    return "\n".join(lines)


def _case_name(test_id: str) -> str:
    return test_id.rsplit("::", 1)[-1]


def _widths(columns, body) -> list[int]:
    return [max(len(cell) for cell in column) for column in zip(columns, *body)]


def junit_properties(result: RunResult, against) -> list[tuple[str, object]]:
    """A test's figures as JUnit ``<properties>`` (``item.user_properties``)."""
    properties: list[tuple[str, object]] = [("llmperf.case", result.label)]
    if result.timing is not None:
        properties += [("llmperf.tokens_per_s", round(result.tokens_per_s, 3)),
                       ("llmperf.samples_per_s", round(result.samples_per_s, 3)),
                       ("llmperf.round_cv", None if result.timing.steadiness.cv is None
                        else round(result.timing.steadiness.cv, 4))]
        if result.speedup_vs_bs1 is not None:
            properties.append(("llmperf.speedup_vs_bs1", round(result.speedup_vs_bs1, 3)))
    properties.append(("llmperf.exact_match_to_bs1", round(result.consistency.exact_match, 4)))
    if result.unquantized is not None:
        properties.append(("llmperf.exact_match_to_unquantized", round(result.unquantized.exact_match, 4)))
    if against is not None:
        properties.append(("llmperf.baseline", against.status))
        if against.baseline is not None:
            properties.append(("llmperf.baseline_run", against.baseline.label))
        for check in against.metrics:
            prefix = f"llmperf.{check.metric.name}"
            properties += [(f"{prefix}.baseline", round(check.baseline, 3)), (f"{prefix}.verdict", check.verdict)]
            if check.change is not None:
                properties += [(f"{prefix}.ratio", round(check.change.ratio, 4)),
                               (f"{prefix}.ci_low", round(check.change.ci[0], 4)),
                               (f"{prefix}.ci_high", round(check.change.ci[1], 4))]
                if check.change.p_value is not None:
                    properties.append((f"{prefix}.p", round(check.change.p_value, 5)))
        if against.drift is not None:
            properties += [("llmperf.outputs.identical", against.drift.identical),
                           ("llmperf.outputs.total", against.drift.total),
                           ("llmperf.outputs.verdict", against.drift.verdict)]
    return properties


def github_summary(sections: list[str]) -> str:
    """The session's tables as Markdown for ``$GITHUB_STEP_SUMMARY``, cut to stay under GitHub's limit."""
    text = "## pytest-llmperf\n\n" + "\n\n".join(_markdown(section) for section in sections if section) + "\n"
    if len(text.encode()) > GITHUB_SUMMARY_LIMIT:
        cut = text.encode()[:GITHUB_SUMMARY_LIMIT - 200].decode(errors="ignore")
        text = cut.rsplit("\n", 1)[0] + "\n\n*(truncated: the full tables are in the job log)*\n"
    return text


def _markdown(section: str) -> str:
    """A title line over a pipe table becomes a bold title, a blank line, and the table."""
    out = []
    for block in section.split("\n\n"):
        lines = block.splitlines()
        if lines and not lines[0].startswith("|"):
            out.append(f"**{lines[0].replace('*', chr(92) + '*')}**\n")  # 2**20 would end the bold
            lines = lines[1:]
        out.append("\n".join(line if line.startswith("|") else f"{line}  " for line in lines))
    return "\n\n".join(out)
