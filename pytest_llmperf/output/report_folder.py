"""The report folder: what people look at and keep, written from a run's records (``saved.Run``).

    report/
      report.md          the session's tables, the figures embedded, the environment
      data.csv           one row per case: its name, then every extra_info field
      data.jsonl         the same rows as JSON objects (lists and dicts kept as they are)
      *.png              the figures (``plots.py``), when matplotlib is installed

The same folder comes from a live session (``--llmperf-report DIR``) and from a saved run
(``pytest-llmperf report results.json --out DIR``), with no model and no GPU.

A run of several machines (``pytest-llmperf merge``) gets their tables one machine after another, a
"Machines" section (``machines.py``: the fingerprints, the best configuration per machine and its
cost) and, for figures, the machines side by side (``plots.draw_machines``); one machine's own figures
are its own report's (``pytest-llmperf report merged.json --machine NAME``). With ``--llmperf-price``,
a run of one machine gets the Machines section too, for its cost.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from . import machines, plots
from .saved import Run, case_name, latest
from .tables import github_summary, render


def rows(run: Run) -> list[dict]:
    """One row per case: ``case`` (its pytest id), ``machine`` (``environment.machine_name``) and its
    ``extra_info`` fields as saved."""
    return [{"case": case_name(record), "machine": record["machine"], **record["extra_info"]}
            for record in latest(run.records)]


def write(run: Run, folder: str | Path, prices=None) -> tuple[list[Path], str]:
    """Write the report folder; ``(files written, a note)`` (the note says why there are no plots).
    ``prices``: ``--llmperf-price``'s (name, USD per hour) pairs, for the cost per million tokens."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [*_data(rows(run), folder)]
    note = ""
    figures: list[Path] = []
    several = len(run.machines) > 1
    if plots.available():
        figures = plots.draw_machines(run.records, machines.labels(run), folder) if several else \
            plots.draw_all(run.records, folder)
    else:
        note = plots.MATPLOTLIB_MISSING
    markdown = folder / "report.md"
    section = machines.markdown(run, prices) if several or prices else []
    markdown.write_text(_markdown(run, figures, note, section), encoding="utf-8")
    return [markdown, *written, *figures], note


def _data(table: list[dict], folder: Path) -> list[Path]:
    jsonl, table_csv = folder / "data.jsonl", folder / "data.csv"
    with jsonl.open("w", encoding="utf-8") as handle:
        for row in table:
            handle.write(json.dumps(row) + "\n")
    columns = list(dict.fromkeys(key for row in table for key in row))
    with table_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in table:  # lists and dicts as JSON; a missing or null field is an empty cell
            writer.writerow([json.dumps(value) if isinstance(value, (list, dict)) else value
                             for value in map(row.get, columns)])
    return [table_csv, jsonl]


def _markdown(run: Run, figures: list[Path], note: str, section: list[str]) -> str:
    tables = github_summary([render(run.records)]).removeprefix("## pytest-llmperf\n\n")
    lines = ["# pytest-llmperf report", "", *_environment(run), "", *section, "## Results", "", tables.rstrip(), ""]
    if figures:
        lines += ["## Figures", ""]
        if len(run.machines) > 1:
            lines += ["Samples per second by batch size, a bar per machine. Each machine's own figures (the "
                      "tutorial's figure per strategy, quality, latency, memory): `pytest-llmperf report "
                      f"{run.source} --machine NAME --out DIR`.", ""]
        lines += [f"![{figure.stem}]({figure.name})\n" for figure in figures]
    elif note:
        lines += [f"*No figures: {note}.*", ""]
    lines += ["## Data", "", "One row per case, every `extra_info` field (see pytest-llmperf's docs/saved.md): "
              "[data.csv](data.csv), [data.jsonl](data.jsonl).", ""]
    return "\n".join(lines)


def _environment(run: Run) -> list[str]:
    if len(run.machines) > 1:
        dates = sorted({str(part.datetime)[:19] for part in run.parts if part.datetime})
        return [f"- **run**: {len(run.parts)} runs merged ({run.source}), measured "
                + (" to ".join(dict.fromkeys((dates[0], dates[-1]))) if dates else "at unknown dates"),
                f"- **machines**: {len(run.machines)}, side by side under [Machines](#machines)"]
    first = run.records[0]["extra_info"]
    llmperf = (run.machine_info or {}).get("llmperf") or {}
    hardware, software = llmperf.get("hardware") or {}, llmperf.get("software") or {}
    commit = run.commit_info or {}
    gpus = ", ".join(gpu.get("name", "?") for gpu in hardware.get("gpus") or [])
    lines = [f"- **run**: {run.datetime or 'this session'} ({run.source or 'this session'})",
             f"- **device**: {first['device']}" + (f" ({gpus})" if gpus else "")
             + (f", CPU {hardware['cpu_model']}" if hardware.get("cpu_model") else "")
             + (f", {first.get('torch_num_threads')} torch threads" if first.get("torch_num_threads") else "")]
    if software:
        lines.append("- **software**: " + ", ".join(f"{name} {version}" for name, version in software.items() if version))
    if commit.get("id") and commit["id"] != "unversioned":
        lines.append(f"- **commit**: {commit['id'][:12]}" + (" (dirty)" if commit.get("dirty") else "")
                     + (f" on {commit['branch']}" if commit.get("branch") else ""))
    return lines
