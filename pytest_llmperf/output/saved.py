"""A finished run as records, whether it is this session's or one saved earlier: what the report
folder and the exports are made of, so both work the same from a live session and, later, from its
files alone (no model, no GPU).

A record is ``RunResult.record()``: ``{"test", "timed", "extra_info", "output_ids"}``, and, in a ``Run``,
``"machine"`` (the machine it ran on: ``environment.machine_name``) and ``"part"`` (which of the run's
parts measured it). A saved run is pytest-benchmark's JSON (``--benchmark-json`` or an autosaved run),
whose benchmarks carry the same ``extra_info``, or the results file (``.llmperf/results.jsonl``), which
holds the records themselves. A merged run (``pytest-llmperf merge``) is pytest-benchmark's JSON whose
benchmarks come from several runs, on several machines: each part keeps its own environment
fingerprint, commit and date (``measure.results.runs_of``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..measure.environment import machine_name
from ..measure.results import holds_no_cases, is_llmperf_case, run_index, runs_of

UNKNOWN_MACHINE = "unknown machine"  # a run saved without pytest-llmperf's environment fingerprint


class SavedRunError(Exception):
    """The file is not a run pytest-llmperf can read: one line."""


@dataclass(frozen=True)
class Part:
    """One run a saved run holds (a merged run holds several): where and when its cases were measured."""

    machine: str  # environment.machine_name of its fingerprint
    machine_info: dict  # pytest-benchmark's, with our "llmperf" entry (hardware, software)
    commit_info: dict
    datetime: str | None
    source: str  # the file it came from, or "this session"

    @property
    def environment(self) -> dict:
        """pytest-llmperf's fingerprint: ``{"hardware": ..., "software": ...}``."""
        return (self.machine_info or {}).get("llmperf") or {}


def part(machine_info: dict, commit_info: dict, datetime: str | None, source: str) -> Part:
    hardware = ((machine_info or {}).get("llmperf") or {}).get("hardware")
    return Part(machine_name(hardware) or UNKNOWN_MACHINE, machine_info or {}, commit_info or {}, datetime, source)


@dataclass(frozen=True)
class Run:
    records: list[dict]  # each with its "machine" and "part" (a session's get them here)
    machine_info: dict = field(default_factory=dict)  # pytest-benchmark's, with our "llmperf" entry (the first part's)
    commit_info: dict = field(default_factory=dict)
    datetime: str | None = None
    source: str = ""  # where it came from: a path, or "this session"
    parts: tuple[Part, ...] = ()  # empty: one part, made of the fields above

    def __post_init__(self):
        if not self.parts:
            object.__setattr__(self, "parts", (part(self.machine_info, self.commit_info, self.datetime, self.source),))
        if any("part" not in record for record in self.records):  # a session's records: the run's only part
            only = {"machine": self.parts[0].machine, "part": 0}
            object.__setattr__(self, "records", [record if "part" in record else {**record, **only}
                                                 for record in self.records])

    def part_of(self, record: dict) -> Part:
        return self.parts[record.get("part", 0)]

    @cached_property
    def machines(self) -> dict[str, Part]:
        """Each machine once, by name (its first part), in the order they come."""
        found: dict[str, Part] = {}
        for item in self.parts:
            found.setdefault(item.machine, item)
        return {name: found[name] for name in dict.fromkeys(record["machine"] for record in self.records)}


def load(path: str | Path) -> Run:
    path = Path(path)
    if path.suffix == ".jsonl":
        from .journal import read

        _readable(path)
        header, cases = read(path)
        records = [{key: case.get(key) for key in ("test", "timed", "extra_info", "output_ids")} for case in cases]
        return _checked(Run(records, header.get("machine_info") or {}, header.get("commit_info") or {},
                            header.get("started"), str(path)), path)
    data = read_json(path)
    parts = parts_of(data, path)
    records = []
    for bench in data["benchmarks"]:
        if is_llmperf_case(bench):
            index = part_index(bench, parts, path)
            records.append({**_record(bench), "machine": parts[index].machine, "part": index})
    if not records:
        raise SavedRunError(holds_no_cases(path, data["benchmarks"]))
    return Run(records, data.get("machine_info") or {}, data.get("commit_info") or {}, data.get("datetime"), str(path),
               parts)


def read_json(path: Path) -> dict:
    """A pytest-benchmark JSON file's data, or a ``SavedRunError`` saying in one line why it is not one."""
    text = _readable(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SavedRunError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise SavedRunError(f"{path} is not a pytest-benchmark run (--benchmark-json or autosave): no 'benchmarks'")
    return data


def _readable(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SavedRunError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def parts_of(data: dict, path: Path) -> tuple[Part, ...]:
    try:
        return tuple(part(run.get("machine_info"), run.get("commit_info"), run.get("datetime"),
                          str(run.get("source") or path)) for run in runs_of(data, str(path)))
    except AttributeError:  # a run that is not an object
        raise SavedRunError(f"{path}: its merged runs ('llmperf.runs') are not objects") from None


def part_index(bench: dict, parts: tuple[Part, ...], path: Path) -> int:
    try:
        return run_index(bench, list(parts))
    except ValueError as exc:
        raise SavedRunError(f"{path}: {exc}") from None


def _record(bench: dict) -> dict:
    info = bench["extra_info"]
    return {"test": bench.get("fullname", bench.get("name", "")).split("[")[0],  # the node id, as records have it
            "timed": info.get("tokens_per_s") is not None, "extra_info": info, "output_ids": None}


def _checked(run: Run, path: Path) -> Run:
    if not run.records:
        raise SavedRunError(f"{path} holds no pytest-llmperf cases")
    return run


def config_id(info: dict) -> str:
    """The configuration's id (``sdpa-nocompile-float32``), also for runs saved before it was stored."""
    from ..settings.config import compile_id

    return info.get("config") or f"{info['attn_implementation']}-{compile_id(info['compile_mode'])}-{info['dtype']}"


def case_name(record: dict) -> str:
    """A case's pytest node id: ``perf_tests/test_inference.py::test_throughput[sdpa-nocompile-float32-manual-bs16]``."""
    info = record["extra_info"]
    size = "max" if info.get("batch_size_search") else info["batch_size"]
    return f"{record['test']}[{config_id(info)}-{info['strategy']}-bs{size}]"


def latest(records: list[dict]) -> list[dict]:
    """Each case once (per machine, test and model), the last run of it: a dashboard series or a data row
    per case."""
    kept: dict[tuple, dict] = {}
    for record in records:
        kept[(record.get("machine"), record["extra_info"]["model"], case_name(record))] = record
    return list(kept.values())
