"""The end-of-session tables: one per configuration, in the FoodExtract tutorial's terms.

"total time" is the median measured round (one round = the whole workload); samples/s, speedup
and the projection derive from it. Untimed runs (``--benchmark-disable``, or outputs-only tests)
show their consistency columns and '-' for time.
"""

from __future__ import annotations

from .results import SECONDS_PER_DAY, RunResult, speedup

COLUMNS = ("batch size", "strategy", "length match", "avg similarity to bs=1", "avg similarity to reference",
           "total time", "samples/s", "speedup vs bs=1", "projected samples per day")


def render(results: list[RunResult]) -> str:
    groups: dict[tuple, dict[tuple, RunResult]] = {}
    for result in results:
        rows = groups.setdefault((result.spec, result.workload), {})
        key = (result.strategy, result.batch_size)
        if key not in rows or result.timing or not rows[key].timing:  # latest, preferring timed
            rows[key] = result
    return "\n\n".join(_table(rows) for rows in groups.values())


def _table(rows: dict[tuple, RunResult]) -> str:
    ordered = [rows[key] for key in sorted(rows)]
    first = ordered[0]
    workload = first.workload
    rounds = {len(r.timing.round_s) for r in ordered if r.timing}
    timing_note = f"median of {'/'.join(map(str, sorted(rounds)))} measured round(s)" if rounds else "untimed"
    title = (f"llmperf: {first.spec.model} [{first.spec.id}] on {first.device} ({first.dtype}, "
             f"attn {first.attn_implementation}) | dataset {workload.dataset}:{workload.split}, "
             f"{first.num_samples} samples, max_new_tokens {workload.max_new_tokens} | total time = {timing_note}")
    body = [[
        str(r.batch_size),
        r.strategy,
        f"{r.consistency.length_matches}/{r.num_samples}",
        f"{r.consistency.similarity:.3f}",
        f"{r.reference.similarity:.3f}" if r.reference else "-",
        f"{r.timing.median_s:.3f} s" if r.timing else "-",
        f"{r.samples_per_s:.2f}" if r.timing else "-",
        _speedup(r, rows.get((r.strategy, 1))),
        f"{r.samples_per_s * SECONDS_PER_DAY:,.0f}" if r.timing else "-",
    ] for r in ordered]
    widths = [max(len(cell) for cell in column) for column in zip(COLUMNS, *body)]
    lines = [title, _row(COLUMNS, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_row(cells, widths) for cells in body]
    return "\n".join(lines)


def _speedup(result: RunResult, bs1: RunResult | None) -> str:
    """From the table's own bs=1 row, so the column is filled even when bs=1 ran after the batched run."""
    value = speedup(result, bs1)
    return "-" if value is None else f"{value:.2f}x"


def _row(cells, widths) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"
