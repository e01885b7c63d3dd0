"""The ``llmperf`` fixture object: what a perf test calls.

    def test_throughput(llmperf, strategy, batch_size):
        llmperf.benchmark(strategy, batch_size)     # timed; gated on floors and on drift from bs=1

    def test_consistency(llmperf, strategy, batch_size):
        llmperf.generate(strategy, batch_size)      # untimed (reuses this session's outputs); drift gates

Each call records a ``GateReport`` (and its failure text) on the test item; once the test body has returned, the
plugin fails the test with every failed gate's readable message (``pytest_pyfunc_call``).
"""

from __future__ import annotations

import pytest

from .measure.latency import LatencyError
from .measure.results import RunResult
from .model.loading import LoadError, UnsupportedCombination
from .model.workload import WorkloadError
from .output.tables import junit_properties
from .run import runner
from .run.parametrize import case_id
from .run.session import PerfSession
from .settings.config import ModelSpec, TestSettings
from .settings.options import MAX_BATCH, MAX_BATCH_ALIASES
from .settings.warning_types import LLMPerfConfigWarning, NoisyMeasurementWarning, warn
from .verdicts.baseline import BaselineError
from .verdicts.gates import GateReport, check, speedup_gate

GATE_REPORTS = pytest.StashKey[list]()


class LLMPerf:
    def __init__(self, request, benchmark, session: PerfSession, settings: TestSettings, spec: ModelSpec):
        self._request = request
        self._benchmark = benchmark
        self._session = session
        self.settings = settings
        self.spec = spec

    # -- what the test runs against -------------------------------------------------------------
    @property
    def target(self):
        """The loaded model (``.model``, ``.tokenizer``, ``.device``...), loaded once per configuration. A
        quantized one loads after the unquantized model's bs=1 outputs, its reference, are known."""
        try:
            runner.unquantized_reference(self._session, self.spec)
            return self._session.target(self.spec)
        except (LoadError, WorkloadError) as exc:
            error = exc
        if isinstance(error, UnsupportedCombination):
            pytest.skip(str(error))
        pytest.fail(str(error), pytrace=False)  # outside `except`: one line, no chained traceback

    @property
    def workload(self):
        target = self.target
        try:
            return self._session.workload(target)
        except WorkloadError as exc:
            message = str(exc)
        pytest.fail(message, pytrace=False)

    # -- the two calls ------------------------------------------------------------------------------
    def benchmark(self, strategy: str | None = None, batch_size: int | None = None, *,
                  check_outputs: bool = True) -> RunResult:
        """Warmup + measured rounds through pytest-benchmark; gates: throughput floors and (unless
        ``check_outputs=False``) output consistency against bs=1."""
        if self._benchmark.group is None:  # one pytest-benchmark table per model configuration
            self._benchmark.group = f"{self.spec.model} {self.spec.id}"  # read when the stats are created
        self._benchmark.llmperf_started = True  # complete once its extra_info is set (plugin.pytest_sessionfinish)
        result = self._run(strategy, batch_size, self._benchmark)
        self._benchmark.extra_info.update(result.extra_info())
        timing = result.timing
        if timing is not None and any(timing.compilations):
            warn(LLMPerfConfigWarning(
                f"llmperf: torch.compile compiled {sum(timing.compilations)} graph(s) during the measured "
                f"rounds of {result.label}, so its time includes compilation; raise --llmperf-warmup"))
        throttled = timing.instrument_info.get("gpu_throttle_reasons") if timing is not None else None
        if throttled:
            warn(NoisyMeasurementWarning(
                f"llmperf: {result.label}: the GPU's clocks were held down during the measured rounds "
                f"({', '.join(throttled)}; SM clock {timing.instrument_info['gpu_sm_clock_mhz_min']:.0f} MHz at its "
                "lowest): a throttled measurement is not a clean one"))
        if timing is not None and timing.steadiness.steady is False:
            rounds = ", ".join(f"{s:.3f}" for s in timing.round_s)
            warn(NoisyMeasurementWarning(
                f"llmperf: {result.label} is not steady: {'; '.join(timing.steadiness.problems())} "
                f"(rounds {rounds} s); raise --llmperf-warmup or --llmperf-rounds, or quieten the machine"))
        self._gate(result, outputs=check_outputs, throughput=True)
        return result

    def generate(self, strategy: str | None = None, batch_size: int | None = None) -> RunResult:
        """Outputs at this strategy and batch size, gated on consistency with bs=1. Reuses the
        outputs a benchmark produced earlier in this session; otherwise runs once, untimed."""
        strategy, batch_size = self._resolve(strategy, batch_size)
        workload = self.workload
        size, _ = self._guarded(lambda: runner.resolve_batch_size(self._session, self.target, workload, strategy,
                                                                  batch_size, self._test))
        result = self._session.find(self.spec, workload.spec, strategy, size)
        if result is None:
            result = self._run(strategy, batch_size, None)
        self._gate(result, outputs=True, throughput=False)
        return result

    def results(self, strategy: str | None = None) -> list[RunResult]:
        """Timed results of this configuration recorded so far in this session (latest per batch size)."""
        latest = {}
        for result in self._session.results:
            if result.spec == self.spec and result.timing and strategy in (None, result.strategy):
                latest[(result.strategy, result.batch_size)] = result
        return sorted(latest.values(), key=lambda r: (r.strategy, r.batch_size))

    # -- internals ------------------------------------------------------------------------------------
    @property
    def _test(self) -> str:
        return case_id(self._request.node.nodeid).split("[")[0]

    def _resolve(self, strategy, batch_size) -> tuple[str, int | str]:
        params = getattr(self._request.node, "callspec", None)
        params = params.params if params else {}
        strategy = strategy if strategy is not None else params.get("strategy")
        batch_size = batch_size if batch_size is not None else params.get("batch_size")
        if strategy is None or batch_size is None:
            raise TypeError("llmperf needs a strategy and a batch size: request the `strategy` and `batch_size` "
                            "fixtures or pass them explicitly")
        if str(batch_size).lower() in MAX_BATCH_ALIASES:
            return strategy, MAX_BATCH
        return strategy, int(batch_size)

    def _run(self, strategy, batch_size, benchmark) -> RunResult:
        strategy, batch_size = self._resolve(strategy, batch_size)
        target, workload = self.target, self.workload
        return self._guarded(lambda: runner.run(self._session, target, workload, strategy, batch_size, benchmark,
                                                test=self._test))

    def _guarded(self, run):
        """``run()``, with the runner's one-line outcomes turned into a skip or a failure of this test."""
        skip_reason = failure = None
        try:
            return run()
        except runner.Unsupported as exc:
            skip_reason = str(exc)
        except (runner.StrategyError, LatencyError) as exc:
            failure = str(exc)
        except runner.OutOfMemoryCase as exc:
            if self._session.settings.on_oom == "skip":
                skip_reason = str(exc)
            else:
                failure = str(exc)
        if skip_reason is not None:
            pytest.skip(skip_reason)
        pytest.fail(failure, pytrace=False)  # outside `except`: one line, no chained traceback

    def _gate(self, result: RunResult, *, outputs: bool, throughput: bool) -> None:
        """Check the gates now; the plugin fails the test after its body returns if any failed."""
        thresholds = self.settings.thresholds
        report = check(result, thresholds, outputs=outputs, throughput=throughput, alpha=self._session.settings.alpha)
        target, workload, node = self.target, self.workload, self._request.node
        try:
            against = self._session.against_baseline(result, case_id(node.nodeid), thresholds, timing=throughput,
                                                     outputs=outputs, target=target, workload=workload)
        except BaselineError as exc:
            against, message = None, str(exc)
        else:
            message = None
        if message is not None:  # outside `except`: one line, no chained traceback
            pytest.fail(message, pytrace=False)
        if against is not None:
            report = GateReport(result, report.gates + against.gates, against)
        node.user_properties.extend(junit_properties(result, against))
        self._record(report)

    def check_speedup(self, result: RunResult, reference: RunResult, floor: float = 1.0) -> None:
        """Gate: ``result`` must be at least ``floor`` times as fast (samples/s) as ``reference``. Judged
        on the rounds: it fails when they show the floor is missed, and warns when they are too noisy
        to tell (``stats.compare``, at --llmperf-alpha, at equal machine speed)."""
        gate = speedup_gate(result, reference, floor, self._session.settings.alpha, name="speedup")
        self._record(GateReport(result, (gate,)))

    def _record(self, report: GateReport) -> None:
        """Keep a gate report on the test; the plugin fails the test with it once the body returns."""
        for gate in report.gates:  # too noisy to judge, or not measured here (a setting's doing)
            if gate.inconclusive:
                kind = NoisyMeasurementWarning if gate.measured is not None else LLMPerfConfigWarning
                warn(kind(f"llmperf: {report.result.label}: {gate.line()}"))
        text = None
        if not report.passed:
            target, workload = self.target, self.workload
            bs1 = runner.baseline(self._session, target, workload)
            text = report.failure_text(bs1, workload, target, self._session.settings.near_tie)
        self._request.node.stash.setdefault(GATE_REPORTS, []).append((report, text))


def gate_failures(item) -> str:
    """Every failed gate's text of a perf test, for its one failure (empty when none failed)."""
    return "\n\n".join(text for _, text in item.stash.get(GATE_REPORTS, []) if text)


def gate_sections(item) -> list[str]:
    """Per call of the test, every gate's measured-vs-required line and the rounds' steadiness: the
    test report's ``llmperf`` sections."""
    sections = []
    for gate_report, _ in item.stash.get(GATE_REPORTS, []):
        lines = [gate.line() for gate in gate_report.gates] or ["no gates"]
        timing = gate_report.result.timing
        if timing is not None:
            waited = timing.instrument_info.get("cpu_wait_share")
            shares = f"; waiting for a CPU: {', '.join(f'{share:.0%}' for share in waited)}" if waited else ""
            lines.append(timing.steadiness.line() + shares)
        sections.append("\n".join(lines))
    return sections
