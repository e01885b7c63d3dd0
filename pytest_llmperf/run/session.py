"""Per-session state: the resident model, formatted workloads, bs=1 baselines and every result.

One model is resident at a time; tests are grouped by model configuration (session-scoped
parametrization), so each configuration loads once. Load and dataset errors are remembered, so a
bad model id fails every test that needs it with the same one-line message, without retrying.
"""

from __future__ import annotations

from ..measure import environment
from ..measure.instruments import resident_bytes
from ..measure.memory import OutOfMemory
from ..measure.results import RunResult
from ..model import identity
from ..model.loading import LoadedModel, LoadError, load, with_speculation
from ..model.workload import (
    Rows,
    Workload,
    WorkloadError,
    check_context,
    format_workload,
    load_rows,
    synthetic_workload,
)
from ..output.journal import Journal
from ..output.tables import comparison_record
from ..settings.config import ModelSpec, Settings, WorkloadSpec
from ..settings.options import SYNTHETIC
from ..strategies.base import Generations
from ..verdicts.baseline import Baseline, BaselineError
from ..verdicts.baseline import load as load_baseline
from ..verdicts.regression import compare_case


class PerfSession:
    def __init__(self, settings: Settings, benchmark_compare_path=lambda: None, journal: Journal | None = None,
                 progress=None, sweep=None):
        """``benchmark_compare_path``: returns the run pytest-benchmark loaded for --benchmark-compare, if any.
        ``journal``: the results file each finished case is appended to. ``progress``: where progress
        lines go and how often, ``(write, interval_s)`` (None: no progress); ``sweep``: the session's
        perf tests (``progress.Sweep``)."""
        self.settings = settings
        self.progress, self.sweep = progress, sweep
        self.journal = journal or Journal(None)
        # What the end-of-session tables are made of (report.render, report.render_comparisons): this
        # process's results and comparisons, and under xdist on the controller, its workers'.
        self.records: list[dict] = []  # RunResult.record()
        self.comparison_records: list[dict] = []  # report.comparison_record()
        self._benchmark_compare_path = benchmark_compare_path
        self._earlier_run: Baseline | BaselineError | None | bool = False  # False: not looked for yet
        self._machine_info: dict | None = None
        self.results: list[RunResult] = []
        self._resident: LoadedModel | None = None
        self._load_errors: dict[ModelSpec, LoadError] = {}
        self._rows: dict[WorkloadSpec, Rows | WorkloadError] = {}
        self._workloads: dict[tuple[str, WorkloadSpec], Workload | WorkloadError] = {}
        self._baselines: dict[tuple[ModelSpec, WorkloadSpec], Generations] = {}
        self._causes: dict[tuple[ModelSpec, WorkloadSpec], dict] = {}
        self._out_of_memory: dict[tuple[ModelSpec, WorkloadSpec, str], OutOfMemory] = {}
        self.batch_searches: dict[tuple[ModelSpec, WorkloadSpec, str], object] = {}  # max_batch.BatchSearch
        self._telemetry: dict[str, object] = {}  # device -> telemetry.Source

    def target(self, spec: ModelSpec) -> LoadedModel:
        """The loaded model of ``spec``, the one resident at a time. A configuration that differs from
        the resident one only in speculative decoding shares its main model (``with_speculation``)."""
        if self._resident is not None and self._resident.spec == spec:
            return self._resident
        if spec in self._load_errors:
            raise self._load_errors[spec]
        try:
            if self._resident is not None and self._resident.spec.plain == spec.plain:
                self._resident = with_speculation(self._resident, spec)  # a draft it no longer holds is freed
            else:
                self._release_model()
                self._resident = load(spec)
        except LoadError as exc:
            self._load_errors[spec] = exc.with_traceback(None)  # its frames (and a half-loaded model) go
            raise
        return self._resident

    def workload(self, target: LoadedModel) -> Workload:
        spec = self.settings.workload
        key = (target.spec.model, spec)
        if key not in self._workloads and spec.dataset == SYNTHETIC:  # no rows: token ids for this tokenizer
            try:
                self._workloads[key] = synthetic_workload(spec, target.tokenizer)
                check_context(self._workloads[key], target.model.config)
            except WorkloadError as exc:
                self._workloads[key] = exc
        if key not in self._workloads:
            if spec not in self._rows:
                try:
                    self._rows[spec] = load_rows(spec)
                except WorkloadError as exc:
                    self._rows[spec] = exc
            rows = self._rows[spec]
            if isinstance(rows, WorkloadError):
                raise rows
            try:
                workload = format_workload(spec, rows, target.tokenizer)
                check_context(workload, target.model.config)
            except WorkloadError as exc:
                self._workloads[key] = exc
            else:
                self._workloads[key] = workload
        if isinstance(self._workloads[key], WorkloadError):
            raise self._workloads[key]
        target.ready(resident_bytes)  # its resident baseline, once per load, now that the workload is loaded too
        return self._workloads[key]

    def earlier_run(self) -> Baseline | None:
        """The stored run to compare with (--llmperf-baseline, else --benchmark-compare's), loaded once."""
        if self._earlier_run is False:
            path = self.settings.baseline or self._benchmark_compare_path()
            try:
                self._earlier_run = None if path is None else load_baseline(path)
            except BaselineError as exc:
                self._earlier_run = exc
        if isinstance(self._earlier_run, BaselineError):
            raise self._earlier_run
        return self._earlier_run

    def machine_info(self) -> dict:
        if self._machine_info is None:
            self._machine_info = environment.machine_info(self.settings.device)
        return self._machine_info

    def against_baseline(self, result: RunResult, test_id: str, thresholds, *, timing: bool, outputs: bool,
                         target: LoadedModel, workload: Workload):
        """This case against the stored run (``regression.compare_case``); remembered for the report."""
        comparison = compare_case(result, test_id, self.earlier_run(), self.machine_info(), thresholds,
                                  self.settings, timing=timing, outputs=outputs, target=target,
                                  prompt_ids=workload.input_ids)
        if comparison is not None:
            self.comparison_records.append(comparison_record(comparison))
        return comparison

    def causes(self, target: LoadedModel, workload: Workload) -> dict:
        key = (target.spec, workload.spec)
        if key not in self._causes:
            self._causes[key] = identity.causes(target, workload)
        return self._causes[key]

    def outputs(self) -> dict[str, list[list[int]]]:
        """Every timed case's generated token ids, once per distinct set (``extra_info["outputs"]``): this
        process's, and on an xdist controller its workers'."""
        return {record["extra_info"]["outputs"]: record["output_ids"] for record in self.records if record["timed"]}

    def memory_bandwidth(self, target: LoadedModel, again: bool = False):
        """The device's memory bandwidth as this process knows it now (``roofline.Bandwidth``): the copy
        probe is run on first use, again when it is due (``roofline.Probe``) or ``again``, and the best
        reading kept. A probe whose buffers do not fit beside what the cases hold is skipped (no
        roofline until one fits)."""
        from ..measure.memory import free, is_out_of_memory
        from ..measure.roofline import Probe

        probe = Probe.of(target.device)
        if again or probe.due():
            try:  # the probe's buffers leave torch's cache, not to count in later cases
                probe.run(free if target.device.startswith("cuda") else lambda device: None)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
        return probe.reading()

    def baseline(self, target: LoadedModel, workload: Workload) -> Generations | None:
        """The non-speculative bs=1 outputs of this model configuration (with or without speculative
        decoding: a speculative one must reproduce them)."""
        return self.baseline_of(target.spec.plain, workload.spec)

    def baseline_of(self, spec: ModelSpec, workload: WorkloadSpec) -> Generations | None:
        """The bs=1 outputs of a configuration, if this session has them (loaded or not now)."""
        return self._baselines.get((spec, workload))

    def set_baseline(self, target: LoadedModel, workload: Workload, generations: Generations) -> None:
        """``generations``: the configuration's manual bs=1 outputs without speculative decoding."""
        self._baselines.setdefault((target.spec.plain, workload.spec), generations)

    def out_of_memory(self, spec: ModelSpec, workload: WorkloadSpec, strategy: str,
                      batch_size: int) -> OutOfMemory | None:
        """The out-of-memory case of this strategy and configuration at or below ``batch_size``, if any."""
        known = self._out_of_memory.get((spec, workload, strategy))
        return known if known is not None and batch_size >= known.batch_size else None

    def record_out_of_memory(self, spec: ModelSpec, workload: WorkloadSpec, oom: OutOfMemory) -> None:
        known = self._out_of_memory.get((spec, workload, oom.strategy))
        if known is None or oom.batch_size < known.batch_size:
            self._out_of_memory[(spec, workload, oom.strategy)] = oom

    def record(self, result: RunResult) -> None:
        self.results.append(result)
        self.add_records([result.record()], [])

    def add_records(self, records: list[dict], comparison_records: list[dict]) -> None:
        """Results and comparisons for the tables and the results file: this process's, or (on an
        xdist controller) a worker's, as its test report brought them."""
        for record in records:
            self.records.append(record)
            self.journal.append(record)
        self.comparison_records += comparison_records

    def find(self, spec: ModelSpec, workload: WorkloadSpec, strategy: str, batch_size: int,
             timed: bool = False) -> RunResult | None:
        """The latest result recorded for this key (with ``timed``, the latest timed one)."""
        for result in reversed(self.results):
            if (result.spec, result.workload, result.strategy, result.batch_size) == (
                    spec, workload, strategy, batch_size) and (result.timing or not timed):
                return result
        return None

    def telemetry(self, target: LoadedModel):
        """The device's telemetry for the session (``telemetry.Source``), started on first use."""
        if target.device not in self._telemetry:
            from ..measure.telemetry import open_source

            self._telemetry[target.device] = open_source(target.device)
        return self._telemetry[target.device]

    def close(self) -> None:
        self.journal.close()
        for source in self._telemetry.values():
            source.close()
        self._release_model()

    def _release_model(self) -> None:
        if self._resident is not None:
            self._resident.close()
            self._resident = None
