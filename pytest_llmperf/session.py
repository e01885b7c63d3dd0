"""Per-session state: the resident model, formatted workloads, bs=1 baselines and every result.

One model is resident at a time; tests are grouped by model configuration (session-scoped
parametrization), so each configuration loads once. Load and dataset errors are remembered, so a
bad model id fails every test that needs it with the same one-line message, without retrying.
"""

from __future__ import annotations

import warnings

from .config import ModelSpec, Settings, WorkloadSpec
from .environment import oversubscription_warning
from .loading import LoadedModel, LoadError, load
from .results import RunResult
from .strategies.base import Generations
from .workload import Rows, Workload, WorkloadError, format_workload, load_rows


class PerfSession:
    def __init__(self, settings: Settings):
        self.settings = settings
        warning = oversubscription_warning()  # once per session, on the first perf test
        if warning:
            warnings.warn(UserWarning(warning), stacklevel=2)
        self.results: list[RunResult] = []
        self._resident: LoadedModel | None = None
        self._load_errors: dict[ModelSpec, LoadError] = {}
        self._rows: dict[WorkloadSpec, Rows | WorkloadError] = {}
        self._workloads: dict[tuple[str, WorkloadSpec], Workload] = {}
        self._baselines: dict[tuple[ModelSpec, WorkloadSpec], Generations] = {}

    def target(self, spec: ModelSpec) -> LoadedModel:
        if self._resident is not None and self._resident.spec == spec:
            return self._resident
        if spec in self._load_errors:
            raise self._load_errors[spec]
        self.close()
        try:
            self._resident = load(spec)
        except LoadError as exc:
            self._load_errors[spec] = exc
            raise
        return self._resident

    def workload(self, target: LoadedModel) -> Workload:
        spec = self.settings.workload
        key = (target.spec.model, spec)
        if key not in self._workloads:
            if spec not in self._rows:
                try:
                    self._rows[spec] = load_rows(spec)
                except WorkloadError as exc:
                    self._rows[spec] = exc
            rows = self._rows[spec]
            if isinstance(rows, WorkloadError):
                raise rows
            self._workloads[key] = format_workload(spec, rows, target.tokenizer)
        return self._workloads[key]

    def baseline(self, target: LoadedModel, workload: Workload) -> Generations | None:
        return self._baselines.get((target.spec, workload.spec))

    def set_baseline(self, target: LoadedModel, workload: Workload, generations: Generations) -> None:
        self._baselines.setdefault((target.spec, workload.spec), generations)

    def record(self, result: RunResult) -> None:
        self.results.append(result)

    def find(self, spec: ModelSpec, workload: WorkloadSpec, strategy: str, batch_size: int,
             timed: bool = False) -> RunResult | None:
        """The latest result recorded for this key (with ``timed``, the latest timed one)."""
        for result in reversed(self.results):
            if (result.spec, result.workload, result.strategy, result.batch_size) == (
                    spec, workload, strategy, batch_size) and (result.timing or not timed):
                return result
        return None

    def close(self) -> None:
        if self._resident is not None:
            self._resident.close()
            self._resident = None
