"""A finished run as records, whether it is this session's or one saved earlier: what the report
folder and the exports are made of, so both work the same from a live session and, later, from its
files alone (no model, no GPU).

A record is ``RunResult.record()``: ``{"test", "timed", "extra_info", "output_ids"}``. A saved run is
pytest-benchmark's JSON (``--benchmark-json`` or an autosaved run), whose benchmarks carry the same
``extra_info``, or the results file (``.llmperf/results.jsonl``), which holds the records themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..measure.results import holds_no_cases, is_llmperf_case


class SavedRunError(Exception):
    """The file is not a run pytest-llmperf can read: one line."""


@dataclass(frozen=True)
class Run:
    records: list[dict]
    machine_info: dict = field(default_factory=dict)  # pytest-benchmark's, with our "llmperf" entry
    commit_info: dict = field(default_factory=dict)
    datetime: str | None = None
    source: str = ""  # where it came from: a path, or "this session"


def load(path: str | Path) -> Run:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SavedRunError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix == ".jsonl":
        from .journal import read

        header, cases = read(path)
        records = [{key: case.get(key) for key in ("test", "timed", "extra_info", "output_ids")} for case in cases]
        return _checked(Run(records, header.get("machine_info") or {}, header.get("commit_info") or {},
                            header.get("started"), str(path)), path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SavedRunError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise SavedRunError(f"{path} is not a pytest-benchmark run (--benchmark-json or autosave): no 'benchmarks'")
    records = [_record(bench) for bench in data["benchmarks"] if is_llmperf_case(bench)]
    if not records:
        raise SavedRunError(holds_no_cases(path, data["benchmarks"]))
    return Run(records, data.get("machine_info") or {}, data.get("commit_info") or {}, data.get("datetime"), str(path))


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
    """Each case once (per test and model), the last run of it: a dashboard series or a data row per case."""
    kept: dict[tuple, dict] = {}
    for record in records:
        kept[(record["extra_info"]["model"], case_name(record))] = record
    return list(kept.values())
