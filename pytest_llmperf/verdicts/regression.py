"""One case against a stored earlier run: is it the same work, on the same hardware, did a metric
regress beyond noise, did the outputs drift, and what most likely changed.

``compare_case`` returns a ``BaselineComparison``: the rows of the end-of-session comparison table,
and the ``GateResult``s the test fails on. Nothing here fails a test by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from statistics import median

from ..measure.environment import machine_name
from ..measure.metrics import (
    METRICS,
    Metric,
    rounds_at_equal_speed,
    shortfall_without_cpu_wait,
    speed_change,
)
from ..measure.stats import INCONCLUSIVE, REGRESSED, Change, compare
from ..model import identity as identity_module
from .baseline import Baseline, BaselineCase
from .diagnose import CHANGED_INPUT, Divergence, diagnose
from .gates import GateResult

NO_BASELINE, NOT_COMPARABLE, COMPARED = "no baseline", "not comparable", "compared"
NO_BASELINE_FOR_HARDWARE = "no baseline for this hardware"
HARDWARE_KEYS = ("device_type", "cpu_model", "cpu_count", "cpus_available", "torch_num_threads",
                 "torch_num_interop_threads", "gpu_count", "gpus")


@dataclass(frozen=True)
class MetricCheck:
    metric: Metric
    baseline: float  # median of the baseline's per-round samples
    now: float
    tolerance: float
    change: Change | None  # None: not compared (see note)
    note: str = ""
    speed_adjusted: bool = False  # compared at the baseline's machine speed (both runs carry probe readings)
    speed_changed: str = ""  # not adjusted, and the probe shows the machine ran at another speed: inconclusive
    cpu_waited: str = ""  # a regression that does not hold with the time spent waiting for a CPU credited: inconclusive

    @property
    def verdict(self) -> str:
        return self.change.verdict if self.change else self.note


@dataclass(frozen=True)
class DriftCheck:
    total: int
    divergences: tuple[Divergence, ...]  # one per sample that differs from the baseline
    min_match: float
    tolerate_near_ties: bool

    @property
    def identical(self) -> int:
        return self.total - len(self.divergences)

    @property
    def near_ties(self) -> int:
        return sum(d.tolerable for d in self.divergences)

    @property
    def changed_inputs(self) -> int:
        return sum(d.kind == CHANGED_INPUT for d in self.divergences)

    @property
    def matching(self) -> int:
        return self.identical + (self.near_ties if self.tolerate_near_ties else 0)

    @property
    def match_rate(self) -> float:
        return self.matching / self.total

    @property
    def passed(self) -> bool:
        return self.match_rate >= self.min_match

    @property
    def verdict(self) -> str:
        if self.identical == self.total:
            return "identical"
        confident = len(self.divergences) - self.near_ties - self.changed_inputs
        kinds = ", ".join(f"{count} {kind}" for count, kind in ((self.changed_inputs, "changed input"),
                                                               (self.near_ties, "near-tie"), (confident, "confident"))
                          if count)
        return f"{'drifted' if not self.passed else 'tolerated'} ({kinds})"


@dataclass(frozen=True)
class BaselineComparison:
    test_id: str
    baseline: Baseline | None
    status: str  # NO_BASELINE, NOT_COMPARABLE, COMPARED
    reason: str = ""
    hardware_differences: tuple[str, ...] = ()
    software_differences: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()  # changed causes, most likely first
    metrics: tuple[MetricCheck, ...] = ()
    drift: DriftCheck | None = None
    gates: tuple[GateResult, ...] = field(default_factory=tuple)
    stored_outputs: tuple = ()  # the baseline's token ids per sample, when its outputs were compared
    other_hardware: str = ""  # the timing was not judged: the baseline has this case on other machines only (why)


def environment_differences(before: dict, machine: dict) -> tuple[list[str], list[str]]:
    """(hardware, software) differences between the environment a baseline case was measured in
    (``{"hardware", "software"}``, the fingerprint of the run that measured it) and this run's
    ``machine``, as ``name: before -> after``."""
    now_hardware, now_software = machine.get("hardware") or {}, machine.get("software") or {}
    before_hardware, before_software = before.get("hardware") or {}, before.get("software") or {}
    if not before_hardware:
        return ["the baseline has no pytest-llmperf environment fingerprint"], []
    hardware = [f"{key}: {before_hardware.get(key)} -> {now_hardware.get(key)}" for key in HARDWARE_KEYS
                if before_hardware.get(key) != now_hardware.get(key)]
    software = [f"{key} {before_software.get(key)} -> {now_software.get(key)}"
                for key in sorted(set(before_software) | set(now_software))
                if before_software.get(key) != now_software.get(key)]
    return hardware, software


def identity_differences(before: dict, after: dict) -> list[str]:
    return [f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)]


def compare_case(result, test_id: str, baseline: Baseline | None, machine: dict, thresholds, settings, *,
                 timing: bool, outputs: bool, target=None, prompt_ids=()) -> BaselineComparison | None:
    """``result``: a ``RunResult``; ``machine``: this run's ``environment.machine_info``;
    ``target``/``prompt_ids``: the loaded model and the prompts' token ids, for the drift diagnosis."""
    if baseline is None:
        if settings.require_baseline:
            reason = "no baseline run: save one with --benchmark-autosave or --benchmark-json"
            return BaselineComparison(test_id, None, NO_BASELINE, reason,
                                      gates=(_fail("baseline", reason),))
        return None
    here = machine_name(machine.get("hardware"))
    case = _find(baseline, test_id, here, result.identity, outputs_only=outputs and not timing)
    other_hardware = ""
    others = baseline.elsewhere(test_id) if case is None else []  # a merged baseline without this machine, or
    if others:  # another machine's run
        case = next((other for other in others if other.outputs is not None), others[0])  # its outputs still compare
        if timing and result.timing is not None:
            other_hardware = (f"{NO_BASELINE_FOR_HARDWARE}: this machine is {here}; the baseline has this case on "
                              + "; ".join(dict.fromkeys(str(other.machine) for other in others)))
    if case is None:
        reason = f"no case {test_id} in the baseline"
        if baseline.holds_no_cases:  # a run --benchmark-compare selected, saved by plain benchmarks only
            reason += f": {baseline.holds_no_cases}"
        gates = (_fail("baseline", reason),) if settings.require_baseline else (_note("baseline", reason),)
        return BaselineComparison(test_id, baseline, NO_BASELINE, reason, gates=gates)
    moved = _moved_model(case, result)
    if case.identity != result.identity and not moved:
        differences = identity_differences(case.identity or {}, result.identity)
        reason = "the work differs: " + "; ".join(differences) if case.identity else \
            "the baseline case carries no identity (saved by an older pytest-llmperf)"
        causes = identity_module.changed_causes(case.causes, result.causes) if _only_the_model_differs(
            case.identity, result.identity) else []
        if causes:  # another model, or the same one changed: the causes say which
            reason += "; and " + "; ".join(causes)
        return BaselineComparison(test_id, baseline, NOT_COMPARABLE, reason,
                                  gates=(_note("baseline", f"not comparable: {reason}"),))
    hardware, software = environment_differences(case.environment, machine)
    causes = [*identity_module.changed_causes(case.causes, result.causes), *moved]
    gates, checks, drift = [], [], None
    if other_hardware:  # timing is judged against this machine's own cases only
        fails = settings.strict_env or settings.require_baseline
        gates.append((_fail if fails else _note)("baseline", f"timing not judged: {other_hardware}"))
    elif timing and result.timing is not None:
        checks = _metric_checks(result, case, thresholds, settings, hardware)
        gates += [_metric_gate(check, baseline, settings) for check in checks]
    if outputs and case.outputs is not None:
        if case.machine not in (here, None):  # another machine's outputs: near-ties are expected, not a change
            thresholds = replace(thresholds, tolerate_near_ties=True)
        drift = _drift(result, case, thresholds, settings, target, prompt_ids, moved)
        gates.append(_drift_gate(drift, causes, baseline))
    return BaselineComparison(test_id, baseline, COMPARED, "", tuple(hardware), tuple(software),
                              tuple(causes), tuple(checks), drift, tuple(gates),
                              case.outputs if drift is not None else (), other_hardware)


def _moved_model(case: BaselineCase, result) -> tuple[str, ...]:
    """``("model path changed: 'a' -> 'b' (...)",)`` when the two cases differ only in the model's path
    and the model there has the same config and weight files (a copied or moved folder): the same
    question, compared, with the path among the causes, since equal file sizes do not prove equal
    weights; else ``()``."""
    if not _only_the_model_differs(case.identity, result.identity):
        return ()
    before, now = case.identity, result.identity
    revision = case.causes.get("model_revision")
    if not revision or revision != result.causes.get("model_revision"):
        return ()
    return (f"model path changed: {before.get('model')!r} -> {now.get('model')!r} (the same config and weight file "
            "sizes)",)


def _only_the_model_differs(before: dict | None, now: dict) -> bool:
    return bool(before) and before != now and {**before, "model": now.get("model")} == now


def _find(baseline: Baseline, test_id: str, machine: str | None, work: dict, outputs_only: bool) -> BaselineCase | None:
    case = baseline.by_test(test_id, machine)
    if case is None and outputs_only:  # an outputs-only test: the benchmark that saved the same work
        case = baseline.by_identity(work, machine)
    return case


def _metric_checks(result, case: BaselineCase, thresholds, settings, hardware: list[str]) -> list[MetricCheck]:
    return metric_checks(case.extra_info, result.extra_info(), thresholds, settings.alpha,
                         not_comparable="not comparable (other hardware)" if hardware else "")


def measured_differently(metric: Metric, before: dict, now: dict) -> str:
    """"not comparable (...)" when two cases measured ``metric`` by different means, else '': energy from a
    GPU's energy counter in one and from integrated power samples in the other (``energy_measure``). A
    counter that updates less often than the rounds last reads whole steps, more than the rounds drew,
    in the rounds that catch one, so the two means differ by more than any tolerance."""
    if not metric.name.startswith("energy"):
        return ""
    old, new = before.get("energy_measure"), now.get("energy_measure")
    if not old or not new or old == new:
        return ""
    return f"not comparable (energy measured by {old} in the baseline, by {new} now)"


def metric_checks(baseline_info: dict, now_info: dict, thresholds, alpha: float,
                  not_comparable: str = "", metrics: tuple[Metric, ...] = METRICS,
                  intervals: bool = True) -> list[MetricCheck]:
    """Every metric both runs carry, compared round by round (from two cases' ``extra_info``), at
    equal machine speed when both carry speed-probe readings: a slower runner is not slower code.
    When the rounds cannot be scaled (the probe's readings varied too much) and the probe shows that
    the machine ran at another speed, the verdict is inconclusive, never regressed or unchanged. A
    regression that does not hold with this run's rounds credited with the time its threads waited
    for a CPU (``shortfall_without_cpu_wait``) is inconclusive too: other processes held the cores.
    With ``not_comparable`` (the reason), the values are shown and nothing is judged. ``metrics``: the
    ones to compare; ``intervals=False``: no interval for a change within the tolerance (the history
    report, which shows only the changes beyond it)."""
    checks = []
    for metric in metrics:
        rounds = rounds_at_equal_speed(metric, baseline_info, now_info)
        if rounds is None:
            continue
        before, now, adjusted = rounds
        raw_before, raw_now = baseline_info["metric_samples"][metric.name], now_info["metric_samples"][metric.name]
        tolerance = thresholds.tolerance_for(metric)
        unlike = not_comparable or measured_differently(metric, baseline_info, now_info)
        change = None if unlike else compare(before, now, higher_is_better=metric.higher_is_better,
                                             tolerance=tolerance, alpha=alpha, interval=intervals)
        changed = "" if adjusted or change is None else speed_change(metric, baseline_info, now_info)
        waited = ""
        if changed:
            change = replace(change, verdict=INCONCLUSIVE, reason=changed)
        elif change is not None and change.verdict == REGRESSED:
            holds, why = shortfall_without_cpu_wait(
                metric, baseline_info, now_info, lambda old, new: compare(
                    old, new, higher_is_better=metric.higher_is_better, tolerance=tolerance, alpha=alpha).verdict
                == REGRESSED)
            if not holds:
                change, waited = replace(change, verdict=INCONCLUSIVE, reason=why), why
        checks.append(MetricCheck(metric, median(raw_before), median(raw_now), tolerance, change, unlike,
                                  speed_adjusted=adjusted, speed_changed=changed, cpu_waited=waited))
    return checks


def _metric_gate(check: MetricCheck, baseline: Baseline, settings) -> GateResult:
    metric, change = check.metric, check.change
    values = f"{check.now:.4g} {metric.unit} now vs {check.baseline:.4g} baseline"
    if change is None:
        text = f"{metric.label} vs baseline: {values}: {check.note}"
        return GateResult(f"baseline_{metric.name}", metric.label, None, 0, not settings.strict_env, "", text)
    ci = f"{change.ci[0]:.3f}-{change.ci[1]:.3f}"
    power = ", low power" if change.low_power else ""
    p_value = "" if change.p_value is None else f", p={change.p_value:.3g}"
    adjusted = " at equal machine speed" if check.speed_adjusted else ""
    text = (f"{metric.label} vs baseline: {values}, ratio{adjusted} {change.ratio:.3f} ({1 - settings.alpha:.0%} CI "
            f"{ci}{p_value}{power}): {change.verdict}")
    if check.speed_changed:
        text += f": {check.speed_changed}, and its readings varied too much to compare at equal speed"
    elif check.cpu_waited:
        text += f": {check.cpu_waited}, which could explain it"
    elif change.verdict == INCONCLUSIVE:
        text += f" (too noisy to judge: {change.reason})"
    if change.verdict == REGRESSED:
        text += f"; tolerance {check.tolerance:.0%}; baseline run {baseline.label}"
    return GateResult(f"baseline_{metric.name}", metric.label, change.ratio, 0, change.verdict != REGRESSED, "", text)


def _drift(result, case: BaselineCase, thresholds, settings, target, prompt_ids, moved=()) -> DriftCheck:
    """Each sample against the baseline's; one whose inputs changed is a changed input, never a near-tie."""
    divergences = []
    samples = result.generations.samples
    inputs = identity_module.changed_inputs(case.causes, result.causes, len(samples), moved)
    for index, (sample, reference) in enumerate(zip(samples, case.outputs)):
        if tuple(sample.token_ids) != tuple(reference):
            divergences.append(diagnose(target, index, prompt_ids[index], reference, sample.token_ids,
                                        settings.near_tie, inputs[index]))
    return DriftCheck(len(samples), tuple(divergences), thresholds.min_baseline_match,
                      thresholds.tolerate_near_ties)


def _drift_gate(drift: DriftCheck, causes: list[str], baseline: Baseline) -> GateResult:
    text = (f"outputs vs baseline: {drift.identical}/{drift.total} identical"
            + (f", {drift.near_ties} near-tie(s) tolerated" if drift.tolerate_near_ties and drift.near_ties else "")
            + f"; match {drift.match_rate:.3f} {'>=' if drift.passed else '<'} required {drift.min_match:g}")
    if not drift.passed:
        text += f"; baseline run {baseline.label}"
    if causes:
        text += "; likely cause: " + "; ".join(causes)
    return GateResult("min_baseline_match", "outputs vs baseline", drift.match_rate, drift.min_match, drift.passed,
                      "", text)


def _fail(name: str, text: str) -> GateResult:
    return GateResult(name, name, None, 0, False, "", text)


def _note(name: str, text: str) -> GateResult:
    return GateResult(name, name, None, 0, True, "", text)
