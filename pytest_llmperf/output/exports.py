"""Results in the formats dashboards read, from a run's records (``saved.Run``).

* **github-action-benchmark** reads a JSON array of ``{name, value, unit, range?, extra?}`` per
  action step, and a step's ``tool`` sets the direction: ``customBiggerIsBetter`` or
  ``customSmallerIsBetter``. One direction per file, so the export is a folder holding
  ``customBiggerIsBetter.json`` (tokens/s, samples/s) and ``customSmallerIsBetter.json`` (latency,
  memory, energy), one action step each.
* **Bencher** reads the Bencher Metric Format: ``{benchmark: {measure: {value, lower_value?,
  upper_value?}}}``; the measures are named by slug (``tokens-per-second``, ``ttft-p95-ms``...).

Each case (named by its pytest id and the model) exports the metrics of the cross-commit gate
(``metrics.METRICS``) that it measured, from one statistic: its per-round figures (the samples the
gate compares), whose median is the value and whose lowest and highest are the bounds (Bencher's
``lower_value``/``upper_value``, github-action-benchmark's ``range``), so the value always lies
within them. For p95 latency that is the median round's p95, not the tables' p95 over every
request, which can lie above every round's own (one slow request per round is 1 in 8 of a round,
but 3 in 24 of three pooled). A case measured without per-round figures exports its summary value,
without bounds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import median

from ..measure.metrics import METRICS
from ..settings.options import EXPORT_FORMATS as FORMATS
from .saved import case_name, latest


def _measured(record: dict):
    """``(metric, value, per-round samples)`` for every gate metric this case measured: the value is
    the samples' median where there are samples, else the case's summary value."""
    info = record["extra_info"]
    for metric in METRICS:
        samples = [float(sample) for sample in (info.get("metric_samples") or {}).get(metric.name) or []]
        if samples:
            yield metric, median(samples), samples
        elif info.get(metric.name) is not None:
            yield metric, float(info[metric.name]), []


def github_action_benchmark(records: list[dict]) -> dict[str, list[dict]]:
    """``{"customBiggerIsBetter": [...], "customSmallerIsBetter": [...]}``."""
    files: dict[str, list[dict]] = {"customBiggerIsBetter": [], "customSmallerIsBetter": []}
    machines = _machines(records)
    for record in latest(records):
        info = record["extra_info"]
        for metric, value, samples in _measured(record):
            entry = {"name": f"{series(record, machines)} {metric.label}", "value": value, "unit": metric.unit}
            if samples:
                entry["range"] = f"{_rounded(min(samples), up=False)} to {_rounded(max(samples), up=True)} over " \
                                 f"{len(samples)} rounds"
            entry["extra"] = (f"model: {info['model']}\ndevice: {info['device']}\ndtype: {info['dtype']}\n"
                              f"samples: {info['num_samples']}, max_new_tokens: {info['max_new_tokens']}"
                              + (f"\nvalue: the median of {len(samples)} rounds' figures" if samples else "")
                              + ("\nrounds unsteady" + (f" (CV {info['round_cv']:.0%})" if info.get("round_cv")
                                                         is not None else "") if info.get("steady") is False else ""))
            files["customBiggerIsBetter" if metric.higher_is_better else "customSmallerIsBetter"].append(entry)
    return files


def _rounded(value: float, up: bool) -> str:
    """``value`` to 4 significant digits, rounded outward (a range's ends), so the range printed still
    holds every value within it: 499.80859 is "499.8" as a lower end, "499.9" as an upper one."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.4g}"
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 3)
    return f"{(math.ceil if up else math.floor)(value / step) * step:.4g}"


def measure_slug(metric) -> str:
    return {"tokens_per_s": "tokens-per-second", "samples_per_s": "samples-per-second"}.get(
        metric.name, metric.name.replace("_", "-"))


def bencher(records: list[dict]) -> dict[str, dict]:
    """The Bencher Metric Format, one benchmark per case."""
    document: dict[str, dict] = {}
    machines = _machines(records)
    for record in latest(records):
        measures = {}
        for metric, value, samples in _measured(record):
            measure = {"value": value}
            if samples:
                measure.update(lower_value=float(min(samples)), upper_value=float(max(samples)))
            measures[measure_slug(metric)] = measure
        if measures:
            document[series(record, machines)] = measures
    return document


def series(record: dict, machines: int = 1) -> str:
    """A dashboard's name for a case: its pytest id and the model, so another model starts another series;
    among ``machines`` > 1 (a merged run), the machine too, so each machine is a series of its own."""
    name = f"{case_name(record)} @ {record['extra_info']['model']}"
    return f"{name} on {record['machine']}" if machines > 1 else name


def _machines(records: list[dict]) -> int:
    return len({record.get("machine") for record in records})


def write(fmt: str, records: list[dict], path: str | Path) -> list[Path]:
    """Write ``fmt`` for ``records`` at ``path``; the files written. A file with nothing in it is not
    written (github-action-benchmark fails its step on an empty one): no file means nothing measured."""
    path = Path(path)
    if fmt == "github-action-benchmark":
        written = []
        for tool, entries in github_action_benchmark(records).items():
            if entries:
                path.mkdir(parents=True, exist_ok=True)
                target = path / f"{tool}.json"
                target.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
                written.append(target)
        return written
    if fmt == "bencher":
        document = bencher(records)
        if not document:
            return []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        return [path]
    raise ValueError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
