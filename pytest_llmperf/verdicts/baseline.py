"""The stored earlier run a session compares with: loading it and finding a case in it.

The baseline is a pytest-benchmark JSON file: the one named by ``--llmperf-baseline PATH``, or the
run pytest-benchmark itself selected with ``--benchmark-compare[=NUM|ID]`` and
``--benchmark-storage``. pytest-llmperf's part of each case is in its ``extra_info`` (identity,
causes, per-round metric samples, a digest of its outputs), and the outputs themselves are stored
once per distinct set under the file's top-level ``llmperf`` key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..measure.results import holds_no_cases, is_llmperf_case


class BaselineError(Exception):
    """A one-line reason the baseline cannot be used."""


@dataclass(frozen=True)
class BaselineCase:
    test_id: str  # pytest-benchmark's fullname: the node id
    identity: dict | None  # None: saved by a pytest-llmperf without identities
    causes: dict
    outputs: tuple[tuple[int, ...], ...] | None
    metric_samples: dict[str, list[float]]
    extra_info: dict


@dataclass(frozen=True)
class Baseline:
    path: Path
    commit: dict  # pytest-benchmark's commit_info: id, time, dirty, branch...
    datetime: str | None
    machine_info: dict
    cases: dict[str, BaselineCase] = field(default_factory=dict)
    holds_no_cases: str = ""  # when no benchmark in it is a pytest-llmperf case: what it holds, in one line

    @property
    def label(self) -> str:
        """How a failure names the baseline run: file, commit and date."""
        commit = (self.commit.get("id") or "unknown commit")[:12]
        dirty = " (uncommitted changes)" if self.commit.get("dirty") else ""
        return f"{self.path.name} @ {commit}{dirty}, {self.datetime or self.commit.get('time') or 'unknown date'}"

    def by_test(self, test_id: str) -> BaselineCase | None:
        return self.cases.get(test_id)

    def by_identity(self, identity: dict) -> BaselineCase | None:
        """A case of the same work, whichever test produced it (an outputs-only test matches the
        benchmark that saved the outputs)."""
        for case in self.cases.values():
            if case.identity == identity and case.outputs is not None:
                return case
        return None

    @property
    def hardware(self) -> dict:
        return (self.machine_info.get("llmperf") or {}).get("hardware") or {}

    @property
    def software(self) -> dict:
        return (self.machine_info.get("llmperf") or {}).get("software") or {}


def load(path: str | Path, require_cases: bool = False) -> Baseline:
    """``require_cases``: a run without a pytest-llmperf case (a plain pytest-benchmark JSON) is an
    error, not a baseline in which every case is missing."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"baseline {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {str(path)!r} is not a pytest-benchmark JSON file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BaselineError(f"baseline {str(path)!r} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    outputs = (data.get("llmperf") or {}).get("outputs") or {}
    cases = {}
    for bench in data["benchmarks"]:
        info = bench.get("extra_info") or {}
        ids = outputs.get(info.get("outputs"))
        cases[bench.get("fullname", bench.get("name"))] = BaselineCase(
            test_id=bench.get("fullname", bench.get("name")),
            identity=info.get("identity"),
            causes=info.get("causes") or {},
            outputs=tuple(tuple(sample) for sample in ids) if ids is not None else None,
            metric_samples=info.get("metric_samples") or {},
            extra_info=info,
        )
    empty = "" if any(map(is_llmperf_case, data["benchmarks"])) else holds_no_cases(path, data["benchmarks"])
    if empty and require_cases:
        raise BaselineError(f"baseline {empty}")
    return Baseline(path, data.get("commit_info") or {}, data.get("datetime"), data.get("machine_info") or {}, cases,
                    empty)


def from_benchmark_compare(config) -> Path | None:
    """The newest run pytest-benchmark loaded for ``--benchmark-compare``, if any."""
    benchmark_session = getattr(config, "_benchmarksession", None)  # pytest-benchmark keeps no public handle
    compared = getattr(benchmark_session, "compared_mapping", None) or {}
    paths = list(compared)
    if not paths:
        return None
    path = Path(paths[-1])  # relative to the storage folder when it was found there
    storage = getattr(getattr(benchmark_session, "storage", None), "path", None)
    return path if path.is_absolute() or storage is None else Path(storage) / path
