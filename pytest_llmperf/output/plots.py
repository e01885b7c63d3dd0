"""The report's figures, drawn with matplotlib (the ``report`` extra) on the Agg backend, from records.

* **The tutorial's figure**, per configuration and strategy: total time by batch size (lower is
  better) beside samples/s by batch size (higher is better), values on the bars, the best speedup
  over bs=1 annotated. A batch size whose outputs differ from bs=1 is drawn red and says how many
  samples differ, so a speed-up that changed the outputs shows in the same picture.
* **Strategies side by side** (when several ran): the same two panels, a bar per strategy.
* **Quality**: similarity and exact match to bs=1 by batch size, per strategy.
* **Latency against throughput**: tokens/s over p95 end-to-end latency, a point per batch size, a
  line per strategy.
* **Memory**: peak memory by batch size, per strategy.
* **Machines side by side** (a merged run, ``draw_machines``): per model configuration and strategy,
  samples/s by batch size, a bar per machine.

Every figure's title names the model, the device, dtype, attention, compile mode and quantization. A bar of a
timed figure carries the spread of the measured rounds as an error bar (the slowest and the fastest
round), and a case whose rounds were not steady has its value marked ``~`` (as in the tables), said
under the figure.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from statistics import median

from ..settings.options import NO_QUANTIZATION
from .machines import workload_title
from .saved import config_id
from .tables import UNSTEADY, batch_size_label, unsteady

MATPLOTLIB_MISSING = "plots need matplotlib: pip install pytest-llmperf[report]"
COLORS = ("#3b75af", "#ef8636", "#519e3e", "#8d69b8", "#84584e", "#d57dbf", "#7f7f7f")
CHANGED = "#c0392b"
FOOTNOTE = "llmperf-footnote"  # the gid of the line under a figure


def available() -> bool:
    try:
        return importlib.import_module("matplotlib") is not None
    except ImportError:
        return False


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def title(info: dict, what: str) -> str:
    quantization = f", {info['quantization']}" if info.get("quantization") not in (None, NO_QUANTIZATION) else ""
    return (f"{what}\n{info['model']} on {info['device']} | {info['dtype']}, attn {info['attn_implementation']}, "
            f"compile {info['compile_mode']}{quantization} | {info['num_samples']} samples, max_new_tokens "
            f"{info['max_new_tokens']}")


def _differ(info: dict) -> int:
    return info["num_samples"] - round(info["exact_match_to_bs1"] * info["num_samples"])


def draw_all(records: list[dict], folder: Path) -> list[Path]:
    """Every figure for these records into ``folder``; the files written."""
    plt = _pyplot()
    written: list[Path] = []
    for config, rows in _by_config([r for r in records if r["timed"]]).items():
        strategies: dict[str, list[dict]] = {}
        for row in sorted(rows, key=lambda r: (r["extra_info"].get("batch_size_search") is not None,
                                               r["extra_info"]["batch_size"])):
            strategies.setdefault(row["extra_info"]["strategy"], []).append(row["extra_info"])
        for strategy, infos in strategies.items():
            written.append(_tutorial(plt, infos, folder / f"{config}-{slug(strategy)}.png"))
        if len(strategies) > 1:
            written.append(_side_by_side(plt, strategies, folder / f"{config}-strategies.png"))
        written.append(_quality(plt, strategies, folder / f"{config}-quality.png"))
        if any(info.get("e2e_ms_p95") is not None for infos in strategies.values() for info in infos):
            written.append(_latency_throughput(plt, strategies, folder / f"{config}-latency-throughput.png"))
        if any(info.get("peak_memory_mb") is not None for infos in strategies.values() for info in infos):
            written.append(_memory(plt, strategies, folder / f"{config}-memory.png"))
    return written


def _by_config(records: list[dict]) -> dict[str, list[dict]]:
    """Rows per model configuration (the latest of each case: one test's timing of it)."""
    groups: dict[str, dict[tuple, dict]] = {}
    for record in records:
        info = record["extra_info"]
        key = f"{slug(info['model'].rsplit('/', 1)[-1])}-{config_id(info)}"
        groups.setdefault(key, {})[(info["strategy"], info["batch_size"], bool(info.get("batch_size_search")))] = record
    return {key: list(rows.values()) for key, rows in groups.items()}


def round_time_spread(info: dict) -> tuple[float, float]:
    """The fastest and slowest measured round, seconds."""
    return min(info["round_s"]), max(info["round_s"])


def round_rate_spread(info: dict) -> tuple[float, float]:
    """samples/s of the slowest and of the fastest measured round."""
    return info["num_samples"] / max(info["round_s"]), info["num_samples"] / min(info["round_s"])


def peak_memory_spread(info: dict) -> tuple[float, float] | None:
    rounds = (info.get("metric_samples") or {}).get("peak_memory_mb")
    return (min(rounds), max(rounds)) if rounds else None


def _error_bars(values, spreads) -> list[list[float]] | None:
    """matplotlib's asymmetric ``yerr`` from each value's (low, high); None when nothing has a spread."""
    if not any(spreads):
        return None
    return [[max(0.0, v - s[0]) if s else 0.0 for v, s in zip(values, spreads)],
            [max(0.0, s[1] - v) if s else 0.0 for v, s in zip(values, spreads)]]


def _top(values, spreads) -> float:
    return max([*values, *(s[1] for s in spreads if s)])


def _footnote(fig, infos, bars: str = "the slowest and the fastest measured round", marked: bool = True) -> None:
    """Under the figure: what the error bars are, and (``marked``) which cases were not steady."""
    shaky = [info for info in infos if unsteady(info)] if marked else []
    text = f"Error bars: {bars}."
    if shaky:
        text += (f"  {UNSTEADY}: rounds not steady, figures uncertain: "
                 + ", ".join(f"{info['strategy']} bs={batch_size_label(info)}"
                             + (f" (CV {info['round_cv']:.0%})" if info.get("round_cv") is not None else "")
                             for info in shaky))
    fig.text(0.01, 0.005, text, fontsize=8, ha="left", va="bottom", color="#444", gid=FOOTNOTE)


def _tutorial(plt, infos: list[dict], path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.6))
    labels = [batch_size_label(info) for info in infos]
    times = [median(info["round_s"]) for info in infos]
    rates = [info["samples_per_s"] for info in infos]
    colors = [CHANGED if _differ(info) else COLORS[0] for info in infos]
    marks = [UNSTEADY if unsteady(info) else "" for info in infos]
    for axis, values, spreads, unit, what in (
            (left, times, [round_time_spread(i) for i in infos], "s", "Total inference time (lower is better)"),
            (right, rates, [round_rate_spread(i) for i in infos], "", "Samples per second (higher is better)")):
        bars = axis.bar(labels, values, color=colors, yerr=_error_bars(values, spreads), capsize=4,
                        error_kw={"elinewidth": 1, "ecolor": "#333"})
        axis.bar_label(bars, labels=[f"{mark}{v:.3g} {unit}".strip() for mark, v in zip(marks, values)], padding=3)
        axis.set_title(what)
        axis.set_xlabel("batch size")
        axis.set_ylim(0, _top(values, spreads) * 1.32)
        axis.spines[["top", "right"]].set_visible(False)
    left.set_ylabel("seconds per round (median of the measured rounds)")
    right.set_ylabel("samples / s")
    ticks = [f"{label}\n" + (f"{_differ(info)} of {info['num_samples']} outputs differ from bs=1" if _differ(info)
                              else "same outputs as bs=1") for label, info in zip(labels, infos)]
    for axis in (left, right):
        axis.set_xticks(range(len(labels)), ticks, fontsize=8)
    base = next((i for i, info in enumerate(infos) if info["batch_size"] == 1), None)
    if base is not None and len(infos) > 1:
        best = max((i for i in range(len(infos)) if i != base), key=lambda i: rates[i])
        speedup = rates[best] / rates[base]
        changed = " (outputs changed)" if _differ(infos[best]) else ""
        mark = UNSTEADY if marks[best] or marks[base] else ""
        less_time = times[base] / times[best]
        for axis, values, text in ((right, rates, f"{mark}{speedup:.2f}x the samples/s of bs=1{changed}"),
                                   (left, times, f"{mark}{less_time:.2f}x less time than bs=1{changed}")):
            axis.annotate(text, xy=(best, values[best] + 0.08 * max(values)), xytext=(base, max(values) * 1.2),
                          arrowprops={"arrowstyle": "->", "color": "#333"}, ha="left", fontsize=10, fontweight="bold")
    fig.suptitle(title(infos[0], f"Batched inference: {infos[0]['strategy']}"), fontsize=11)
    _footnote(fig, infos)
    return _save(plt, fig, path)


def _grouped(axis, strategies: dict[str, list[dict]], value, fmt=lambda v: f"{v:.3g}", spread=None,
             marked: bool = False, labelled: bool = True) -> None:
    """A bar per strategy (or machine) and batch size; ``spread(info)``: the rounds' (low, high), drawn
    as error bars; ``marked``: the value of an unsteady case is marked (a timed figure); ``labelled``:
    each bar carries its value."""
    sizes = sorted({batch_size_label(info) for infos in strategies.values() for info in infos}, key=_size_order)
    width = 0.8 / len(strategies)
    for k, (strategy, infos) in enumerate(strategies.items()):
        by_size = {batch_size_label(info): info for info in infos}
        shown = [by_size[size] for size in sizes if size in by_size]
        xs = [i + (k - (len(strategies) - 1) / 2) * width for i, size in enumerate(sizes) if size in by_size]
        values = [value(info) for info in shown]
        errors = _error_bars(values, [spread(info) for info in shown]) if spread else None
        bars = axis.bar(xs, values, width, label=strategy, color=COLORS[k % len(COLORS)], yerr=errors, capsize=3,
                        error_kw={"elinewidth": 1, "ecolor": "#333"})
        marks = [UNSTEADY if marked and unsteady(info) else "" for info in shown]
        if labelled:
            axis.bar_label(bars, labels=[mark + fmt(v) for mark, v in zip(marks, values)], fontsize=7, padding=2)
    axis.set_xticks(range(len(sizes)), sizes)
    axis.set_xlabel("batch size")
    axis.spines[["top", "right"]].set_visible(False)


def _legend_outside(axis, title: str = "strategy") -> None:
    axis.legend(title=title, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _size_order(label: str):
    return (label.endswith("(max)"), int(label.split()[0]))


def _side_by_side(plt, strategies: dict[str, list[dict]], path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.6))
    _grouped(left, strategies, lambda info: median(info["round_s"]), lambda v: f"{v:.3g} s", round_time_spread,
             marked=True)
    left.set_title("Total inference time (lower is better)")
    left.set_ylabel("seconds per round (median)")
    _grouped(right, strategies, lambda info: info["samples_per_s"], spread=round_rate_spread, marked=True)
    right.set_title("Samples per second (higher is better)")
    right.set_ylabel("samples / s")
    _legend_outside(right)
    fig.suptitle(title(next(iter(strategies.values()))[0], "Batching strategies side by side"), fontsize=11)
    _footnote(fig, [info for infos in strategies.values() for info in infos])
    return _save(plt, fig, path)


def _quality(plt, strategies: dict[str, list[dict]], path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    _grouped(left, strategies, lambda info: info["similarity_to_bs1"], lambda v: f"{v:.2f}")
    left.set_title("Mean similarity to the bs=1 outputs (1 = same words)")
    _grouped(right, strategies, lambda info: info["exact_match_to_bs1"], lambda v: f"{v:.2f}")
    right.set_title("Samples whose token ids equal bs=1 (fraction)")
    for axis in (left, right):
        axis.set_ylim(0, 1.15)
        axis.axhline(1.0, color="#999", linewidth=0.8, linestyle=":")
    _legend_outside(right)
    fig.suptitle(title(next(iter(strategies.values()))[0], "Do batched outputs match batch size 1?"), fontsize=11)
    return _save(plt, fig, path)


def _latency_throughput(plt, strategies: dict[str, list[dict]], path: Path) -> Path:
    fig, axis = plt.subplots(figsize=(9, 6))
    for k, (strategy, infos) in enumerate(strategies.items()):
        points = [(info["e2e_ms_p95"], info["tokens_per_s"], batch_size_label(info)) for info in infos
                  if info.get("e2e_ms_p95") is not None]
        if not points:
            continue
        axis.plot([p[0] for p in points], [p[1] for p in points], "o-", label=strategy, color=COLORS[k % len(COLORS)])
        for x, y, size in points:
            axis.annotate(f"bs={size}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axis.set_xlabel("p95 end-to-end latency per request (ms, round start to last token)")
    axis.set_ylabel("generated tokens / s")
    axis.set_title(title(next(iter(strategies.values()))[0], "Throughput against latency"), fontsize=11)
    axis.legend(title="strategy", frameon=False)
    axis.grid(alpha=0.3)
    return _save(plt, fig, path)


def _memory(plt, strategies: dict[str, list[dict]], path: Path) -> Path:
    shown = {strategy: [info for info in infos if info.get("peak_memory_mb") is not None]
             for strategy, infos in strategies.items()}
    shown = {strategy: infos for strategy, infos in shown.items() if infos}
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.4))
    _grouped(left, shown, lambda info: info["peak_memory_mb"], lambda v: f"{v:,.0f}", peak_memory_spread)
    left.set_title("Peak memory of the process (MB)")
    _grouped(right, shown, lambda info: info.get("peak_memory_above_model_mb") or 0.0, lambda v: f"{v:,.0f}")
    right.set_title("Above the loaded model: activations, KV cache, buffers (MB)")
    for axis in (left, right):
        axis.set_ylabel("MB (2**20 bytes)")
    _legend_outside(right)
    measure = next((info.get("memory_measure") for infos in shown.values() for info in infos
                    if info.get("memory_measure")), "")
    fig.suptitle(title(next(iter(shown.values()))[0], f"Memory during the measured rounds ({measure})"), fontsize=11)
    _footnote(fig, [info for infos in shown.values() for info in infos], "the lowest and the highest round's peak "
              "(left)", marked=False)
    return _save(plt, fig, path)


MACHINE_BARS_LABELLED = 6  # above this many machines a figure's bars carry no values (the table has them)


def draw_machines(records: list[dict], labels: dict[str, str], folder: Path) -> list[Path]:
    """Per model, workload, configuration and strategy: samples/s by batch size, a bar per machine
    (``labels``: machine -> its name in the legend); the files written."""
    plt = _pyplot()
    groups: dict[tuple, dict[str, dict]] = {}
    for record in records:
        if record["timed"]:
            info = record["extra_info"]
            key = (info["model"], info["workload_hash"], config_id(info), info["strategy"])
            size = (info["batch_size"], bool(info.get("batch_size_search")))
            groups.setdefault(key, {}).setdefault(record["machine"], {})[size] = info  # the latest of a case
    workloads_per_model: dict[str, set] = {}
    for model, workload, *_ in groups:
        workloads_per_model.setdefault(model, set()).add(workload)
    written = []
    for (model, workload, config, strategy), machines in groups.items():
        name = f"machines-{slug(model.rsplit('/', 1)[-1])}-{config}-{slug(strategy)}"
        if len(workloads_per_model[model]) > 1:
            name += f"-{workload[:8]}"
        bars = {labels[machine]: sorted(infos.values(), key=lambda info: (bool(info.get("batch_size_search")),
                                                                          info["batch_size"]))
                for machine, infos in machines.items()}
        written.append(_machines(plt, bars, folder / f"{name}.png"))
    return written


def _machines(plt, machines: dict[str, list[dict]], path: Path) -> Path:
    fig, axis = plt.subplots(figsize=(max(9.0, 1.2 + 0.28 * sum(map(len, machines.values()))), 5.6))
    _grouped(axis, machines, lambda info: info["samples_per_s"], spread=round_rate_spread, marked=True,
             labelled=len(machines) <= MACHINE_BARS_LABELLED)
    axis.set_ylabel("samples / s (higher is better)")
    _legend_outside(axis, "machine")
    info = next(iter(machines.values()))[0]
    axis.set_title(f"Machines side by side: {info['strategy']}, samples per second by batch size\n"
                   f"{workload_title(info)} | {info['dtype']}, attn {info['attn_implementation']}, "
                   f"compile {info['compile_mode']}", fontsize=11)
    shaky = sum(unsteady(info) for infos in machines.values() for info in infos)
    fig.text(0.01, 0.005, "Error bars: the slowest and the fastest measured round."
             + (f"  {UNSTEADY}: {shaky} bar(s) from rounds not steady, figures uncertain (the report's tables name "
                "them)." if shaky else ""), fontsize=8, ha="left", va="bottom", color="#444", gid=FOOTNOTE)
    return _save(plt, fig, path)


def draw_history(cases, metric, folder: Path) -> list[Path]:
    """Per case (``history.Case``), ``metric`` across commits, a line per machine, each point's interval
    (its slowest and fastest round) a band around it; a regressed point marked red, an improved one green.
    The files written."""
    plt = _pyplot()
    written, names = [], set()
    for case in cases:
        name = f"history-{slug(case.case.rsplit('::', 1)[-1])}-{slug(case.model.rsplit('/', 1)[-1])}"
        while name in names:  # two tests of one name in different files
            name += "-"
        names.add(name)
        written.append(_history(plt, case, metric, folder / f"{name}.png"))
    return written


HISTORY_TICKS = 30  # at most this many commits named under a history figure (every k-th beyond)


def _history(plt, case, metric, path: Path) -> Path:
    place = {commit: index for index, commit in enumerate(case.commits)}
    width = min(16.0, max(12.0, 6.0 + 0.2 * len(case.commits)))
    fig, axis = plt.subplots(figsize=(width, 5.4))
    fig.subplots_adjust(left=0.8 / width, right=1 - 3.4 / width, top=0.86, bottom=0.22)  # fixed: no layout pass
    marks = {"regressed": ("v", CHANGED), "improved": ("^", "#2e8b57")}
    for k, (machine, points) in enumerate(case.lines.items()):
        xs = [place[point.commit] for point in points]
        color = COLORS[k % len(COLORS)]
        axis.fill_between(xs, [point.low for point in points], [point.high for point in points], color=color,
                          alpha=0.2, linewidth=0)
        axis.plot(xs, [point.value for point in points], "o-", color=color, label=case.labels.get(machine, machine),
                  markersize=3.5, linewidth=1.2)
        for x, point in zip(xs, points):
            if point.verdict in marks:
                marker, mark = marks[point.verdict]
                axis.plot([x], [point.value], marker=marker, color=mark, markersize=13, linestyle="none", zorder=5)
                axis.annotate(f"{point.check.change.ratio - 1:+.0%}", (x, point.value), textcoords="offset points",
                              xytext=(8, -4 if point.verdict == "regressed" else 4), color=mark, fontsize=9,
                              fontweight="bold")
    step = -(-len(case.commits) // HISTORY_TICKS)
    axis.set_xticks(range(0, len(case.commits), step), case.commits[::step], rotation=45, ha="right", fontsize=8)
    axis.set_xlabel("commit" + (f" (one in {step} named)" if step > 1 else ""))
    axis.set_ylabel(f"{metric.label} ({metric.unit}; {'higher' if metric.higher_is_better else 'lower'} is better)")
    fig.suptitle(f"{metric.label} across commits, a line per machine\n{case.case} @ {case.model}", fontsize=11)
    axis.grid(alpha=0.3)
    axis.spines[["top", "right"]].set_visible(False)
    axis.legend(title="machine", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.text(0.01, 0.005, "Band: the slowest to the fastest measured round of each point. Red (green) triangle: "
             "regressed (improved) by the gate's test, beyond the tolerance and significant.", fontsize=8, ha="left",
             va="bottom", color="#444", gid=FOOTNOTE)
    return _save(plt, fig, path, layout=False)


def _save(plt, fig, path: Path, layout: bool = True) -> Path:
    """``layout``: fit the axes to their labels (a drawing pass of its own; a figure of many laid out by
    fixed margins does without)."""
    footnote = any(text.get_gid() == FOOTNOTE for text in fig.texts)
    if layout:
        fig.tight_layout(rect=(0, 0.035 if footnote else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
