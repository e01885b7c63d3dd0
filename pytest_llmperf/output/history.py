"""The history of a Hub dataset: every row pushed so far (``--llmperf-push-to-hub``, ``hub.py``), read
back and set out across commits (``pytest-llmperf report hub:ORG/NAME --out DIR``, or a local folder
of the dataset's files).

* **Reading.** The dataset's files are read through ``datasets``, as lines of text
  (``load_dataset("text", ...)``), each parsed here as the JSON row it is. Rows pushed by different
  versions of the plugin have different columns, and a column null in one run (energy on a CPU) holds
  numbers in another: ``load_dataset("json", ...)`` fails on both (it casts every file to the first
  file's columns and types) and, with every column declared, spends most of its time casting 150
  columns file by file. ``hub:ORG/NAME`` first brings the dataset's files into the local Hugging Face
  cache (``huggingface_hub.snapshot_download``: only the files not already there).
* **Per case** (its pytest id, model and workload), one figure: the metric across commits, a line per
  machine, each point the median of its measured rounds with the slowest and the fastest round as its
  interval (as the report's bars have them).
* **Regressions**: each point against the previous point of its line, by the gate's own test
  (``regression.metric_checks``: the change beyond the tolerance, and significant by the
  Mann-Whitney U test or, with few rounds, the bootstrap interval; at equal machine speed where both
  carry speed-probe readings). Two points of one line measured with other threads or CPUs are not
  judged, as the gate would not.

A commit is pytest-benchmark's ``commit_info`` of the run (its id; the row's run id where the run had
none), placed by its commit time, else by when its rows were pushed. A case measured twice at one
commit on one machine shows its latest row.
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from ..measure.environment import machine_name
from ..measure.metrics import METRICS_BY_NAME, Metric
from ..measure.stats import IMPROVED, REGRESSED
from ..verdicts.regression import MetricCheck, environment_differences, metric_checks
from . import hub, plots
from .machines import short_names
from .saved import UNKNOWN_MACHINE

HUB = "hub:"
PLAIN, NESTED = "plain", "nested"
# The columns the history keeps, and which of them the rows hold as JSON strings (every other is dropped).
COLUMNS = {
    **dict.fromkeys(("run_id", "timestamp", "case", "test", "machine", "model", "config", "strategy", "device",
                     "dtype", "attn_implementation", "compile_mode", "dataset", "split", "workload_hash", "batch_size",
                     "num_samples", "max_new_tokens", "prompt_tokens", *METRICS_BY_NAME, "round_cv", "steady"), PLAIN),
    **dict.fromkeys(("commit", "environment", "metric_samples", "probe_s", "batch_size_search"), NESTED),
}


class HistoryError(Exception):
    """One line: why the history cannot be read."""


def is_history(source: str) -> bool:
    """Whether ``pytest-llmperf report SOURCE`` means a history: ``hub:ORG/NAME``, a folder (the
    dataset's files), or one rows file of a push (``.llmperf/hub/<run id>.jsonl``)."""
    path = Path(source)
    return source.startswith(HUB) or path.is_dir() or (path.suffix == ".jsonl" and hub.is_rows_file(path))


def read_rows(source: str) -> list[dict]:
    """Every row of ``source`` (``is_history``), the columns the history uses decoded."""
    folder = _download(source[len(HUB):]) if source.startswith(HUB) else Path(source)
    files = [folder] if folder.is_file() else sorted(path for path in folder.rglob("*.jsonl") if hub.is_rows_file(path))
    if not files:
        raise HistoryError(f"{source} holds no Hub rows: no *.jsonl file of rows written by --llmperf-push-to-hub "
                           "(runs/<date>/<run id>.jsonl in the dataset, .llmperf/hub/ locally)")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="llmperf-history-") as cache:
        try:
            lines = datasets.load_dataset("text", data_files=[str(path) for path in files], split="train",
                                          cache_dir=cache)["text"]
        except Exception as exc:  # an unreadable file...
            raise HistoryError(f"cannot read the rows of {source} through datasets: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HistoryError(f"{source}: row {number} is not JSON ({exc.msg}): a torn or foreign file") from None
            rows.append({name: _decode(kind, row.get(name)) for name, kind in COLUMNS.items()})
    return rows


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=["*.jsonl", "**/*.jsonl"]))
    except Exception as exc:  # offline, no such dataset, no access
        raise HistoryError(f"cannot read the Hub dataset {repo_id}: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def _decode(kind: str, value):
    """A row's value as the history uses it: the nested ones are JSON strings in the dataset."""
    return json.loads(value) if kind == NESTED and isinstance(value, str) else value


@dataclass(frozen=True)
class Point:
    commit: str  # its label: a short commit id (or the run id of a run without one)
    row: dict
    value: float  # the median of its rounds' figures (its summary figure where it has none)
    low: float  # the slowest and the fastest round's figures
    high: float
    check: MetricCheck | None = None  # against the previous point of its line

    @property
    def verdict(self) -> str:
        return self.check.verdict if self.check else ""


@dataclass(frozen=True)
class Case:
    """One case across commits: a line per machine."""

    case: str
    model: str
    commits: tuple[str, ...]  # the commits any of its lines has, in order
    lines: dict[str, tuple[Point, ...]]  # machine -> its points, in commit order
    labels: dict[str, str]  # machine -> its short name in the figure (machines.short_names)


def history(rows: list[dict], metric: Metric, thresholds, alpha: float) -> list[Case]:
    """Per case, ``metric`` across commits per machine, each point judged against the previous one."""
    order = _commit_order(rows)
    latest: dict[tuple, dict] = {}
    for row in sorted(rows, key=lambda row: row.get("timestamp") or ""):
        if _value(row, metric) is not None:
            key = (row.get("model"), row.get("case"), row.get("workload_hash"), _machine(row), _commit(row))
            latest[key] = row  # a case measured again at one commit on one machine: its latest row
    cases: dict[tuple, dict[str, list[dict]]] = {}
    for (model, case, workload, machine, _), row in latest.items():
        cases.setdefault((model, case, workload), {}).setdefault(machine, []).append(row)
    labels = short_names({_machine(row): (row.get("environment") or {}).get("hardware") or {} for row in rows})
    found = []
    for (model, case, _), machines in cases.items():
        lines = {machine: _line(sorted(points, key=lambda row: order[_commit(row)]), metric, thresholds, alpha)
                 for machine, points in machines.items()}
        commits = tuple(sorted({point.commit for points in lines.values() for point in points},
                               key=lambda label: order[label]))
        found.append(Case(case, model, commits, lines, labels))
    return found


def _machine(row: dict) -> str:
    if row.get("machine"):
        return row["machine"]
    return machine_name((row.get("environment") or {}).get("hardware")) or UNKNOWN_MACHINE


def _commit(row: dict) -> str:
    commit = row.get("commit") or {}
    if commit.get("id") and commit["id"] != "unversioned":
        return commit["id"][:10] + ("+dirty" if commit.get("dirty") else "")
    return f"run {row.get('run_id')}"


def _commit_order(rows: list[dict]) -> dict[str, tuple]:
    """Each commit's place: its commit time where the run knew it, else its first row's push time."""
    first: dict[str, tuple] = {}
    for row in rows:
        label = _commit(row)
        when = ((row.get("commit") or {}).get("time") or row.get("timestamp") or "", row.get("timestamp") or "")
        first[label] = min(first.get(label, when), when)
    return first


def _value(row: dict, metric: Metric) -> tuple[float, float, float] | None:
    samples = (row.get("metric_samples") or {}).get(metric.name)
    if samples:
        return median(samples), min(samples), max(samples)
    value = row.get(metric.name)
    return None if value is None else (value, value, value)


def _line(rows: list[dict], metric: Metric, thresholds, alpha: float) -> tuple[Point, ...]:
    points: list[Point] = []
    for row in rows:
        value, low, high = _value(row, metric)
        check = None
        if points:
            before = points[-1].row
            other = environment_differences(before.get("environment") or {}, row.get("environment") or {})[0]
            checks = metric_checks(before, row, thresholds, alpha, not_comparable=(
                "not comparable (other hardware: " + "; ".join(other) + ")") if other else "", metrics=(metric,),
                intervals=False)
            check = checks[0] if checks else None
        points.append(Point(_commit(row), row, value, low, high, check))
    return tuple(points)


def write(source: str, folder: str | Path, metric_name: str = "tokens_per_s", thresholds=None,
          alpha: float = 0.01) -> tuple[list[Path], str, dict]:
    """The history report folder: ``history.md``, ``history.csv`` and a figure per case; ``(files
    written, a note, counts)``."""
    from ..settings.config import Thresholds

    metric = METRICS_BY_NAME[metric_name]
    rows = read_rows(source)
    cases = history(rows, metric, thresholds or Thresholds(), alpha)
    if not cases:
        raise HistoryError(f"{source}: none of its {len(rows)} rows has {metric_name}: nothing to draw")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "history.csv"
    _csv(cases, table)
    figures, note = [], ""
    if plots.available():
        figures = plots.draw_history(cases, metric, folder)
    else:
        note = plots.MATPLOTLIB_MISSING
    markdown = folder / "history.md"
    markdown.write_text(_markdown(source, rows, cases, metric, figures, note), encoding="utf-8")
    regressed = sum(point.verdict == REGRESSED for case in cases for points in case.lines.values()
                    for point in points)
    counts = {"rows": len(rows), "cases": len(cases), "regressions": regressed,
              "commits": len({point.commit for case in cases for points in case.lines.values() for point in points}),
              "machines": len({machine for case in cases for machine in case.lines})}
    return [markdown, table, *figures], note, counts


def _changes(cases: list[Case], verdict: str) -> list[tuple[Case, str, Point, Point]]:
    return [(case, machine, points[index - 1], point) for case in cases for machine, points in case.lines.items()
            for index, point in enumerate(points) if point.verdict == verdict]


def _change_row(case: Case, machine: str, before: Point, point: Point) -> str:
    change = point.check.change
    p_value = "-" if change.p_value is None else f"{change.p_value:.3g}"
    return (f"| {case.case} @ {case.model} | {machine} | {before.commit} | {point.commit} | {before.value:.4g} "
            f"| {point.value:.4g} | {change.ratio - 1:+.1%} | {change.ci[0]:.3f}-{change.ci[1]:.3f} | {p_value}"
            f"{' (low power)' if change.low_power else ''} |")


def _markdown(source: str, rows: list[dict], cases: list[Case], metric: Metric, figures: list[Path],
              note: str) -> str:
    commits = {point.commit for case in cases for points in case.lines.values() for point in points}
    machines = dict.fromkeys(machine for case in cases for machine in case.lines)
    lines = ["# pytest-llmperf history", "",
             f"- **source**: {source}: {len(rows)} rows, {len(commits)} commits, {len(machines)} machines, "
             f"{len(cases)} cases",
             f"- **metric**: {metric.label} ({metric.unit}, {'higher' if metric.higher_is_better else 'lower'} is "
             "better); a point is the median of its measured rounds, its interval the slowest and the fastest round",
             "- **judged** as the cross-commit gate judges: each point against the previous point of its machine's "
             "line, the change beyond the tolerance and significant (docs/ci.md)", "",
             "| machine | in the figures |", "|---|---|",
             *(f"| {machine} | {cases[0].labels.get(machine, machine)} |" for machine in machines), ""]
    header = ["| case | machine | from | to | before | after | change | CI | p |", "|---|---|---|---|---|---|---|---|---|"]
    regressions, improvements = _changes(cases, REGRESSED), _changes(cases, IMPROVED)
    lines += [f"## Regressions ({len(regressions)})", ""]
    lines += [*header, *(_change_row(*change) for change in regressions), ""] if regressions else ["None.", ""]
    if improvements:
        lines += [f"## Improvements ({len(improvements)})", "", *header,
                  *(_change_row(*change) for change in improvements), ""]
    if figures:
        lines += ["## Figures", "", "Regressed points are marked with a red triangle, improved ones with a green one.",
                  ""]
        lines += [f"![{figure.stem}]({figure.name})\n" for figure in figures]
    elif note:
        lines += [f"*No figures: {note}.*", ""]
    lines += ["## Data", "", "One row per point: [history.csv](history.csv).", ""]
    return "\n".join(lines)


def _csv(cases: list[Case], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "model", "machine", "commit", "value", "low", "high", "verdict", "ratio", "ci_low",
                         "ci_high", "p_value"])
        for case in cases:
            for machine, points in case.lines.items():
                for point in points:
                    change = point.check.change if point.check else None
                    figures = (change.ratio, *change.ci, change.p_value) if change else ()
                    writer.writerow([case.case, case.model, machine, point.commit, point.value, point.low, point.high,
                                     point.verdict, *("" if value is None or value != value else value  # nan: none
                                                      for value in (*figures, *[None] * (4 - len(figures))))])
