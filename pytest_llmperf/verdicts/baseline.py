"""The stored earlier run a session compares with: loading it and finding a case in it.

The baseline is a pytest-benchmark JSON file: the one named by ``--llmperf-baseline PATH``, or the
run pytest-benchmark itself selected with ``--benchmark-compare[=NUM|ID]`` and
``--benchmark-storage``. pytest-llmperf's part of each case is in its ``extra_info`` (identity,
causes, per-round metric samples, a digest of its outputs), and the outputs themselves are stored
once per distinct set under the file's top-level ``llmperf`` key.

A merged run (``pytest-llmperf merge``) holds the cases of several machines: a case is found by its
test id **and** the machine it ran on (``environment.machine_name``, the hardware fingerprint), so one
baseline file serves a whole CI matrix, each machine compared with its own cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..measure.environment import machine_name
from ..measure.results import holds_no_cases, is_llmperf_case, run_index, runs_of


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
    machine: str | None = None  # environment.machine_name of the run that measured it; None: no fingerprint
    environment: dict = field(default_factory=dict)  # that run's fingerprint: {"hardware", "software"}


@dataclass(frozen=True)
class Baseline:
    path: Path
    commit: dict  # pytest-benchmark's commit_info: id, time, dirty, branch...
    datetime: str | None
    machine_info: dict
    cases: dict[tuple[str, str | None], BaselineCase] = field(default_factory=dict)  # (test id, machine)
    holds_no_cases: str = ""  # when no benchmark in it is a pytest-llmperf case: what it holds, in one line

    @property
    def label(self) -> str:
        """How a failure names the baseline run: file, commit and date."""
        commit = (self.commit.get("id") or "unknown commit")[:12]
        dirty = " (uncommitted changes)" if self.commit.get("dirty") else ""
        return f"{self.path.name} @ {commit}{dirty}, {self.datetime or self.commit.get('time') or 'unknown date'}"

    def by_test(self, test_id: str, machine: str | None) -> BaselineCase | None:
        """The case of this test measured on ``machine`` (a case saved without a fingerprint stands for
        any machine)."""
        return self.cases.get((test_id, machine)) or self.cases.get((test_id, None))

    def elsewhere(self, test_id: str) -> list[BaselineCase]:
        """The cases of this test, on whichever machine (asked when none is this machine's)."""
        return [case for (test, _), case in self.cases.items() if test == test_id]

    def by_identity(self, identity: dict, machine: str | None) -> BaselineCase | None:
        """A case of the same work, whichever test produced it (an outputs-only test matches the
        benchmark that saved the outputs), measured on ``machine`` where there is one."""
        found = [case for case in self.cases.values() if case.identity == identity and case.outputs is not None]
        return next((case for case in found if case.machine in (machine, None)), found[0] if found else None)


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
    runs = runs_of(data, str(path))
    environments = [(run.get("machine_info") or {}).get("llmperf") or {} for run in runs]
    cases = {}
    for bench in data["benchmarks"]:
        info = bench.get("extra_info") or {}
        ids = outputs.get(info.get("outputs"))
        try:
            environment = environments[run_index(bench, runs)]
        except ValueError as exc:
            raise BaselineError(f"baseline {str(path)!r}: {exc}") from None
        case = BaselineCase(
            test_id=bench.get("fullname", bench.get("name")),
            identity=info.get("identity"),
            causes=info.get("causes") or {},
            outputs=tuple(tuple(sample) for sample in ids) if ids is not None else None,
            metric_samples=info.get("metric_samples") or {},
            extra_info=info,
            machine=machine_name(environment.get("hardware")),
            environment=environment,
        )
        cases.setdefault((case.test_id, case.machine), case)  # as merging does: the first of a machine's repeats
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
