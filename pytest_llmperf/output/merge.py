"""Saved runs from several machines or shards joined into one (``pytest-llmperf merge RUN... --out FILE``).

The merged file is pytest-benchmark's JSON, so every reader of a saved run reads it: ``pytest-llmperf
report``, ``export`` and ``push-to-hub``, ``--llmperf-baseline`` and pytest-benchmark itself. The
machine is a dimension, not an overwrite: the top-level ``llmperf.runs`` lists every run merged, each
with its own ``machine_info`` (the environment fingerprint), ``commit_info``, ``datetime`` and source
file, and each benchmark names its run in ``llmperf_run`` (``measure.results.runs_of``). A merged file
merged again is flattened: its runs join the list.

A case is one benchmark on one machine (``environment.machine_name``). Shards of one machine's suite
hold different cases and join; the same case twice on the same machine (a job run twice, a file given
twice) is kept once, from the first file given, and the others are counted in one line.

The top-level ``machine_info``, ``commit_info`` and ``version`` are the first run's (what a reader that
knows nothing of merged runs sees), ``datetime`` the latest run's. The files are read one at a time
and the benchmarks written as they are read, so memory holds one input, not the merged whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..measure.results import (
    MERGED_RUNS,
    RUN_OF_BENCHMARK,
    holds_no_cases,
    is_llmperf_case,
)
from .saved import SavedRunError, part_index, parts_of, read_json


@dataclass(frozen=True)
class Merged:
    path: Path
    runs: int
    cases: int  # pytest-llmperf cases written
    machines: tuple[str, ...]
    repeated: dict[str, int]  # source -> cases left out, already merged from an earlier file for the same machine


def merge(paths: list[str | Path], out: str | Path) -> Merged:
    """Join the saved runs at ``paths`` into ``out`` (written whole or not at all). A path that is not a
    pytest-benchmark run, or holds no pytest-llmperf case, is a ``SavedRunError``."""
    out = Path(out)
    if not paths:
        raise SavedRunError("nothing to merge: give the saved runs (--benchmark-json or autosave files)")
    runs: list[dict] = []
    outputs: dict[str, list] = {}
    seen: set[tuple[str, str]] = set()
    repeated: dict[str, int] = {}
    head: dict = {}
    latest: str | None = None
    cases = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            first_bench = True
            for path in map(Path, paths):
                data = _saved_run(path)
                parts = parts_of(data, path)
                placed: dict[int, int] = {}  # its part -> the merged run's; a part none of whose cases is kept is left out
                if not head:
                    head = {"machine_info": data.get("machine_info") or {}, "commit_info": data.get("commit_info") or {},
                            "version": data.get("version")}
                    handle.write("{" + f'"machine_info": {json.dumps(head["machine_info"])}, '
                                 f'"commit_info": {json.dumps(head["commit_info"])}, "benchmarks": [\n')
                for bench in data["benchmarks"]:
                    index = part_index(bench, parts, path)
                    key = (parts[index].machine, str(bench.get("fullname", bench.get("name"))))
                    if key in seen:
                        repeated[str(path)] = repeated.get(str(path), 0) + 1
                        continue
                    seen.add(key)
                    if index not in placed:
                        placed[index] = len(runs)
                        item = parts[index]
                        runs.append({"source": item.source, "machine": item.machine, "datetime": item.datetime,
                                     "commit_info": item.commit_info, "machine_info": item.machine_info})
                        if item.datetime and (latest is None or str(item.datetime) > latest):
                            latest = str(item.datetime)
                    cases += is_llmperf_case(bench)
                    handle.write(("" if first_bench else ",\n") + json.dumps({**bench, RUN_OF_BENCHMARK: placed[index]}))
                    first_bench = False
                outputs.update((data.get("llmperf") or {}).get("outputs") or {})
                del data
            handle.write(f'\n], "datetime": {json.dumps(latest)}, "version": {json.dumps(head.get("version"))}, '
                         f'"llmperf": {json.dumps({"outputs": outputs, MERGED_RUNS: runs})}}}\n')
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return Merged(out, len(runs), cases, tuple(dict.fromkeys(run["machine"] for run in runs)), repeated)


def _saved_run(path: Path) -> dict:
    if path.suffix == ".jsonl":
        raise SavedRunError(f"{path} is a results file (.jsonl); merge takes pytest-benchmark JSON: the "
                            "--benchmark-json file or the autosaved run of each job")
    if path.is_dir():
        raise SavedRunError(f"{path} is a folder; merge takes pytest-benchmark JSON files (--benchmark-json or "
                            "autosave), e.g. runs/*.json")
    data = read_json(path)
    if not any(map(is_llmperf_case, data["benchmarks"])):
        raise SavedRunError(holds_no_cases(path, data["benchmarks"]))
    return data
