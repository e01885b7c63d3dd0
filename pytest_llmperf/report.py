"""The end-of-session tables: one per configuration, in the FoodExtract tutorial's terms, then the
comparison with a stored earlier run, then the environment differences.

"total time" is the median measured round (one round = the whole workload); samples/s, speedup
and the projection derive from it. Untimed runs (``--benchmark-disable``, or outputs-only tests)
show their consistency columns and '-' for time. The same tables go to ``$GITHUB_STEP_SUMMARY``
as Markdown when it is set, and each test's figures go into JUnit XML as ``<properties>``.
"""

from __future__ import annotations

from .results import SECONDS_PER_DAY, RunResult, speedup

COLUMNS = ("batch size", "strategy", "length match", "avg similarity to bs=1", "avg similarity to reference",
           "total time", "samples/s", "speedup vs bs=1", "projected samples per day")


def render(results: list[RunResult]) -> str:
    """One table per configuration. A row is one test's run of a case: when two tests time the same
    strategy and batch size, both rows show, each with the speedup its own test computed (the
    ``speedup_vs_bs1`` saved in the JSON), and a "test" column tells them apart."""
    groups: dict[tuple, dict[tuple, RunResult]] = {}
    for result in results:
        rows = groups.setdefault((result.spec, result.workload), {})
        key = (result.test, result.strategy, result.batch_size, bool(result.batch_size_search))
        rows[key] = result  # the latest of a test's runs of a case
    return "\n\n".join(_table(list(rows.values())) for rows in groups.values())


def _table(results: list[RunResult]) -> str:
    timed_cases = {(r.strategy, r.batch_size) for r in results if r.timing}
    shown = [r for r in results if r.timing or (r.strategy, r.batch_size) not in timed_cases]  # timed first
    ordered = sorted(shown, key=lambda r: (r.strategy, r.batch_size, r.test))
    tests = {r.test for r in ordered}
    first = ordered[0]
    workload = first.workload
    rounds = {len(r.timing.round_s) for r in ordered if r.timing}
    timing_note = f"median of {'/'.join(map(str, sorted(rounds)))} measured round(s)" if rounds else "untimed"
    title = (f"llmperf: {first.spec.model} [{first.spec.id}] on {first.device} ({first.dtype}, "
             f"attn {first.attn_implementation}) | dataset {workload.dataset}:{workload.split}, "
             f"{first.num_samples} samples, max_new_tokens {workload.max_new_tokens} | total time = {timing_note}")
    bs1_rows = {(r.test, r.strategy): r for r in ordered if r.batch_size == 1}
    body = [[
        *([r.test.rsplit("::", 1)[-1]] if len(tests) > 1 else []),
        f"{r.batch_size} (max)" if r.batch_size_search else str(r.batch_size),
        r.strategy,
        f"{r.consistency.length_matches}/{r.num_samples}",
        f"{r.consistency.similarity:.3f}",
        f"{r.reference.similarity:.3f}" if r.reference else "-",
        f"{r.timing.median_s:.3f} s" if r.timing else "-",
        f"{r.samples_per_s:.2f}" if r.timing else "-",
        _speedup(r, bs1_rows.get((r.test, r.strategy))),
        f"{r.samples_per_s * SECONDS_PER_DAY:,.0f}" if r.timing else "-",
    ] for r in ordered]
    columns = (("test",) if len(tests) > 1 else ()) + COLUMNS
    widths = _widths(columns, body)
    lines = [title, _row(columns, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(cells, widths) for cells in body]
    searches = {r.strategy: r.batch_size_search["summary"] for r in ordered if r.batch_size_search}
    lines += [f"{strategy} bs=max: {summary}" for strategy, summary in searches.items()]
    return "\n".join(lines)


def _speedup(result: RunResult, bs1_row: RunResult | None) -> str:
    """The result's own speedup (what its JSON says); when its bs=1 ran only after it, from the bs=1
    row of the same test, so the column is filled whatever order the batch sizes ran in."""
    value = result.speedup_vs_bs1 if result.batch_size > 1 else speedup(result, result)
    if value is None and result.batch_size > 1:
        value = speedup(result, bs1_row)
    return "-" if value is None else f"{value:.2f}x"


def _row(cells, widths) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"


# -- against a stored earlier run ------------------------------------------------------------------

COMPARISON_COLUMNS = ("case", "metric", "baseline", "now", "change", "CI", "verdict")
GITHUB_SUMMARY_LIMIT = 1_000_000  # GitHub refuses a step summary above 1 MiB


def render_comparisons(comparisons: list) -> str:
    """The comparison table (one row per case and metric, plus one for outputs), then what differs in
    the environment and, for drifted outputs, the likely causes."""
    if not comparisons:
        return ""
    latest = {}
    for comparison in comparisons:  # a case checked by several tests (timing, outputs) keeps every row once
        latest.setdefault(comparison.test_id, []).append(comparison)
    body = []
    for test_id, group in latest.items():
        for comparison in group:
            name = _case_name(test_id)
            if comparison.status != "compared":
                body.append([name, "-", "-", "-", "-", "-", f"{comparison.status}: {comparison.reason}"])
                continue
            for check in comparison.metrics:
                change = check.change
                raw = check.now / check.baseline
                ratio = change.ratio if change else raw
                shown = f"{ratio - 1:+.1%}" + (f"* (raw {raw - 1:+.1%})" if check.speed_adjusted else "")
                body.append([name, check.metric.label, f"{check.baseline:.4g}", f"{check.now:.4g}", shown,
                             f"{change.ci[0]:.3f}-{change.ci[1]:.3f}" if change else "-",
                             check.verdict + (" (low power)" if change and change.low_power else "")])
            if comparison.drift is not None:
                drift = comparison.drift
                body.append([name, "outputs", f"{drift.total} samples", f"{drift.identical} identical",
                             f"{drift.total - drift.identical} differ", "-", drift.verdict])
    first = comparisons[0].baseline
    title = f"llmperf vs baseline {first.label}" if first is not None else "llmperf vs baseline"
    lines = [title, _row(COMPARISON_COLUMNS, widths := _widths(COMPARISON_COLUMNS, body)),
             "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(_row(cells, widths) for cells in body)]
    if any(check.speed_adjusted for c in comparisons for check in c.metrics):
        lines.append("* at equal machine speed: each run's rounds scaled by the speed probe measured beside them "
                     "(raw: the medians as measured)")
    compared = [c for c in comparisons if c.status == "compared"]
    if compared:
        hardware = compared[0].hardware_differences
        software = compared[0].software_differences
        lines.append("")
        lines.append("environment: hardware " + ("differs: " + "; ".join(hardware) +
                                                 " (timing not comparable)" if hardware else "identical"))
        lines.append("environment: software " + ("differs: " + "; ".join(software) if software else "identical"))
    causes = sorted({cause for c in compared if c.drift is not None and not c.drift.passed for cause in c.causes})
    if causes:
        lines.append("likely causes of the drift: " + "; ".join(causes))
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
            out.append(f"**{lines[0]}**\n")
            lines = lines[1:]
        out.append("\n".join(line if line.startswith("|") else f"{line}  " for line in lines))
    return "\n\n".join(out)
