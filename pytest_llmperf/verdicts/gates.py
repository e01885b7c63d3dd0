"""Gates: thresholds checked against a ``RunResult``. Each check returns a small ``GateResult``;
``GateReport.failure_text`` is the readable failure a test shows (measured vs required, and for
output drift the worst samples with the token where they first diverge)."""

from __future__ import annotations

from dataclasses import dataclass
from math import inf
from statistics import median
from typing import Any

from ..measure.compare import divergence_summary
from ..measure.metrics import (
    CPU_WAIT_MATERIAL,
    METRICS_BY_NAME,
    cpu_waited,
    latency_waited,
    rounds_at_equal_speed,
    rounds_at_probe_speeds,
    rounds_without_cpu_wait,
    shortfall_without_cpu_wait,
    speed_change,
)
from ..measure.results import RunResult, speedup
from ..measure.stats import REGRESSED, compare
from ..model.workload import prompt_text
from ..settings.config import Thresholds
from ..settings.options import CEILINGS
from .diagnose import diagnose

WORST_SAMPLES = 3
PREVIEW_CHARS = 160


@dataclass(frozen=True)
class GateResult:
    name: str  # the option, e.g. min_exact_match
    label: str
    measured: float | None
    required: float
    passed: bool
    note: str = ""
    text: str = ""  # a line of its own (the cross-commit gates), instead of "label: measured >= required"
    inconclusive: bool = False  # missed (or met) on its face, but the noise or the machine could explain it: a warning
    ceiling: bool = False  # measured must stay at or below required (a max_* option), not reach it

    def line(self) -> str:
        if self.text:
            return self.text
        if self.passed and self.measured is None:
            return f"{self.label}: not checked ({self.note})"
        measured = "not measured" if self.measured is None else f"{self.measured:.4g}"
        verdict = ("<=" if self.passed else ">") if self.ceiling else (">=" if self.passed else "<")
        text = f"{self.label}: {measured} {verdict} {'ceiling' if self.ceiling else 'required'} {self.required:g}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class GateReport:
    result: RunResult
    gates: tuple[GateResult, ...]
    against_baseline: Any = None  # regression.BaselineComparison, when a stored run was compared

    @property
    def failures(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def failure_text(self, bs1, workload, target, near_tie: float) -> str:
        """``bs1``: the bs=1 ``Generations`` of this configuration; ``workload``/``target``: what ran,
        for the prompts and the drift diagnosis."""
        result = self.result
        lines = [f"llmperf gate failed: {result.label} on {result.spec.model} ({result.device})"]
        lines += [f"  {gate.line()}" for gate in self.failures]
        if any(gate.name in OUTPUT_GATES for gate in self.failures):
            worst = result.consistency.worst(WORST_SAMPLES)
            divergences = [diagnose(target, diff.index, workload.input_ids[diff.index],
                                    bs1.samples[diff.index].token_ids,
                                    result.generations.samples[diff.index].token_ids, near_tie) for diff in worst]
            speculative = f" {result.spec.speculative}" if result.spec.speculating else ""
            baseline = "the non-speculative bs=1 baseline" if speculative else "the bs=1 baseline"
            lines += sample_lines(f"bs={result.batch_size} {result.strategy}{speculative} vs {baseline}", divergences,
                                  [bs1.samples[d.index].text for d in divergences], result, workload,
                                  target.tokenizer, reference_name="bs=1", similarities={d.index: d.similarity
                                                                                          for d in worst})
        unquantized = result.unquantized
        if unquantized is not None and any(gate.name == "min_match_unquantized" for gate in self.failures):
            shown = sorted(unquantized.divergences, key=lambda d: (d.tolerable, d.position, d.index))[:WORST_SAMPLES]
            lines += sample_lines(f"bs={result.batch_size} {result.strategy} vs the unquantized model at bs=1", shown,
                                  [unquantized.reference.samples[d.index].text for d in shown], result, workload,
                                  target.tokenizer, reference_name="unquantized",
                                  similarities={sample.index: sample.similarity
                                                for sample in unquantized.consistency.samples})
        drift = self.against_baseline.drift if self.against_baseline is not None else None
        if drift is not None and any(gate.name == "min_baseline_match" for gate in self.failures):
            shown = sorted(drift.divergences, key=lambda d: (d.tolerable, d.position, d.index))[:WORST_SAMPLES]
            lines += sample_lines("now vs the stored baseline run", shown,
                                  [target.tokenizer.decode(self.against_baseline.stored_outputs[d.index],
                                                           skip_special_tokens=True) for d in shown],
                                  result, workload, target.tokenizer, reference_name="baseline")
        return "\n".join(lines)


OUTPUT_GATES = ("min_exact_match", "min_similarity", "min_match_non_speculative")
NOT_TIMED = "timing is disabled: --benchmark-disable, or xdist -n without timing (--llmperf-xdist-timing)"


def check(result: RunResult, thresholds: Thresholds, *, outputs: bool, throughput: bool,
          alpha: float = 0.01) -> GateReport:
    gates: list[GateResult] = []
    consistency = result.consistency
    identical = f"{sum(sample.exact for sample in consistency.samples)}/{result.num_samples} samples identical"
    if outputs and thresholds.min_exact_match is not None:
        gates.append(_at_least("min_exact_match", "exact match to bs=1", consistency.exact_match,
                               thresholds.min_exact_match, identical))
    if outputs and thresholds.min_similarity is not None:
        gates.append(_at_least("min_similarity", "mean similarity to bs=1", consistency.similarity,
                               thresholds.min_similarity))
    unquantized = result.unquantized
    if outputs and thresholds.min_match_unquantized is not None and unquantized is not None:
        same = sum(sample.exact for sample in unquantized.consistency.samples)
        gates.append(_at_least("min_match_unquantized", "exact match to unquantized", unquantized.exact_match,
                               thresholds.min_match_unquantized,
                               f"{same}/{result.num_samples} samples identical to the unquantized model's bs=1 "
                               f"outputs; divergences: {divergence_summary(unquantized.kinds())}"))
    if outputs and thresholds.min_match_non_speculative is not None and result.spec.speculating:
        gates.append(_at_least("min_match_non_speculative", f"exact match of greedy {result.spec.speculative} "
                               "decoding to the non-speculative bs=1", consistency.exact_match,
                               thresholds.min_match_non_speculative, identical))
    floors = {"min_tokens_per_s": thresholds.min_tokens_per_s, "min_samples_per_s": thresholds.min_samples_per_s,
              "min_speedup": thresholds.min_speedup if result.batch_size > 1 else None,
              "min_roofline": thresholds.min_roofline,
              **{name: thresholds.ceiling_for(name, result.batch_size) for name in CEILINGS}}
    if throughput and result.timing is None:  # --benchmark-disable, or xdist without timing
        for name, required in floors.items():
            if required is not None:
                gates.append(GateResult(name, name.removeprefix("min_").replace("_", " "), None, required, True,
                                        NOT_TIMED))
    if throughput and result.timing is not None:
        if thresholds.min_tokens_per_s is not None:
            gates.append(throughput_floor(result, "tokens_per_s", result.tokens_per_s, thresholds.min_tokens_per_s))
        if thresholds.min_samples_per_s is not None:
            gates.append(throughput_floor(result, "samples_per_s", result.samples_per_s,
                                          thresholds.min_samples_per_s))
        if thresholds.min_speedup is not None and result.batch_size > 1:
            gates.append(speedup_gate(result, result.bs1, thresholds.min_speedup, alpha))
        if thresholds.min_roofline is not None:
            gates.append(roofline_gate(result, thresholds.min_roofline))
        gates += ceiling_gates(result, thresholds)
    return GateReport(result, tuple(gates))


def throughput_floor(result: RunResult, metric_name: str, measured: float | None, floor: float) -> GateResult:
    """An absolute floor (``min_tokens_per_s``, ``min_samples_per_s``). Missed, it still fails only if
    it stays missed with the rounds credited with the time their threads waited for a CPU
    (``metrics.rounds_without_cpu_wait``): a shared runner whose other processes held the cores says
    nothing about the code."""
    metric = METRICS_BY_NAME[metric_name]
    gate = _at_least(f"min_{metric_name}", metric.label, measured, floor)
    if gate.passed or measured is None:
        return gate
    info = result.extra_info()
    credited = rounds_without_cpu_wait(metric, info)
    if credited is None or median(credited) < floor:
        return gate
    bound = "no bound" if median(credited) == inf else f"{median(credited):.4g}"
    text = (f"{metric.label}: {measured:.4g} below required {floor:g}: inconclusive, {cpu_waited(info)}, which could "
            f"explain the shortfall (credited with that time: {bound}); not failed")
    return GateResult(gate.name, metric.label, measured, floor, True, "", text, inconclusive=True)


def ceiling_gates(result: RunResult, thresholds: Thresholds) -> list[GateResult]:
    """The ``max_*`` ceilings set for this batch size: peak memory, and latency at the chosen percentile.
    A latency above its ceiling whose rounds waited for a CPU ``CPU_WAIT_MATERIAL`` of the time or more
    is inconclusive: a wait lands whole on the tokens it delays, and nothing bounds what it added."""
    info, percentile = result.timing.instrument_info, thresholds.latency_percentile
    source = info.get("latency_source") or ""
    if info.get("latency_requests"):
        source = f"{info['latency_requests']} requests over {info['latency_rounds']} {source}"
    measures = {  # ceiling -> (label, extra_info key, how it was measured)
        "max_memory_mb": ("peak memory MB", "peak_memory_mb", info.get("memory_measure") or ""),
        "max_ttft_ms": (f"TTFT {percentile} ms", f"ttft_ms_{percentile}", source),
        "max_itl_ms": (f"ITL {percentile} ms", f"itl_ms_{percentile}", source),
        "max_e2e_ms": (f"e2e {percentile} ms", f"e2e_ms_{percentile}", source),
    }
    gates = []
    waited = latency_waited(info)
    for name in CEILINGS:
        ceiling = thresholds.ceiling_for(name, result.batch_size)
        if ceiling is not None:
            label, key, note = measures[name]
            gate = _at_most(name, label, info.get(key), ceiling, note)
            if not gate.passed and waited and name != "max_memory_mb":  # a wait lands whole on what it delays
                text = (f"{label}: {gate.measured:.4g} above ceiling {ceiling:g} ({note}): inconclusive, "
                        f"{cpu_waited(info)}, which could explain it; not failed")
                gate = GateResult(name, label, gate.measured, ceiling, True, note, text, inconclusive=True, ceiling=True)
            gates.append(gate)
    return gates


def roofline_gate(result: RunResult, floor: float) -> GateResult:
    """The fraction of the memory-bandwidth roofline decoding reached (``roofline.py``); a case
    without latency has none, and an impossible one (a disturbed probe) is not judged: neither is
    checked, with a warning."""
    info = result.efficiency or {}
    measured = info.get("roofline_fraction")
    if measured is None:
        why = info.get("roofline_note") or (
            "the copy-bandwidth probe did not fit in memory" if info.get("memory_bandwidth_gb_s") is None
            else "no decode latency recorded for this case")
        return GateResult("min_roofline", "roofline fraction", None, floor, True, why, inconclusive=True)
    note = (f"{info['decode_bytes_per_step'] / 1e6:.3g} MB per step in {info['decode_step_ms']:.3g} ms, "
            f"copy bandwidth {info['memory_bandwidth_gb_s']:.3g} GB/s")
    return _at_least("min_roofline", "roofline fraction", measured, floor, note)


def speedup_gate(result: RunResult, reference: RunResult | None, floor: float, alpha: float,
                 name: str = "min_speedup") -> GateResult:
    """samples/s of ``result`` over ``reference`` (its bs=1 run) against ``floor``, judged on the
    per-round samples at equal machine speed as the cross-commit gate judges them: it fails only when
    the rounds show the floor is missed (significant at ``alpha``); a shortfall the rounds cannot
    confirm is inconclusive, a warning.

    When the probe's readings scattered too much to scale the rounds by, and show that the machine ran
    at another speed during one case than during the other (on two busy cores a case can run 5x
    slower than the one before it), a shortfall is still a failure only if it holds with the rounds
    brought to one speed by those readings, either way (``rounds_at_probe_speeds``): a speed change
    that could explain it makes it inconclusive. And a shortfall fails only if it holds with this
    case's rounds credited with the time its threads waited for a CPU while other processes held
    the cores (``shortfall_without_cpu_wait``).

    A pass is held to the same standard the other way (``speedup_pass_explained``): a speedup that the
    reference's slower machine could explain (the probe read it slower, or its threads waited for a CPU)
    is inconclusive, a warning, not a pass that batching pays off."""
    label = "speedup vs bs=1" if reference is None or reference.batch_size == 1 else \
        f"speedup vs bs={reference.batch_size}"
    measured = speedup(result, reference) if reference is not None else None
    if measured is None:
        note = (f"no timed bs=1 run of {result.strategy} for this configuration before this test in this session; "
                "include batch size 1")
        return _at_least(name, label, None, floor, note)
    metric = METRICS_BY_NAME["samples_per_s"]
    before_info, now_info = reference.extra_info(), result.extra_info()
    if measured >= floor:
        # a bs=1 case's speedup is 1 by definition, whatever the reference
        why = speedup_pass_explained(metric, before_info, now_info, floor, reference.batch_size) \
            if result.batch_size != 1 else ""
        if not why:
            return _at_least(name, label, measured, floor)
        text = (f"{label}: {measured:.4g} at or above required {floor:g}: inconclusive, {why}, which could explain "
                "the speedup; not judged")
        return GateResult(name, label, measured, floor, True, why, text, inconclusive=True)
    equal = rounds_at_equal_speed(metric, before_info, now_info)
    if equal is None:  # no per-round samples (a run saved without them): judged as measured
        return _at_least(name, label, measured, floor, "no per-round samples to judge the rounds on")
    before, now, adjusted = equal

    def short_of_floor(reference_rounds, rounds):
        return compare([floor * value for value in reference_rounds], rounds, higher_is_better=True, tolerance=0.0,
                       alpha=alpha)

    change = short_of_floor(before, now)
    evidence = (f"{1 - alpha:.0%} CI {floor * change.ci[0]:.3f}-{floor * change.ci[1]:.3f}"
                + (f", p={change.p_value:.3g}" if change.p_value is not None else "")
                + (", low power" if change.low_power else "") + (", at equal machine speed" if adjusted else ""))
    changed = "" if adjusted else speed_change(metric, before_info, now_info)
    if change.verdict != REGRESSED:
        why = f"too noisy to judge ({change.reason})"
    elif changed and not all(short_of_floor(*rounds).verdict == REGRESSED
                             for rounds in rounds_at_probe_speeds(metric, before_info, now_info)):
        why = f"{changed}, which could explain the shortfall"
    else:
        holds, waited = shortfall_without_cpu_wait(metric, before_info, now_info,
                                                   lambda before, now: short_of_floor(before, now).verdict == REGRESSED)
        if holds:
            if changed:
                evidence += f"; {changed}, and the shortfall holds with the rounds brought to one speed by its readings"
            if waited:
                evidence += f"; {waited}, and the shortfall holds with that time credited"
            return GateResult(name, label, measured, floor, False, evidence)
        why = f"{waited}, which could explain the shortfall"
    text = f"{label}: {measured:.4g} below required {floor:g} ({evidence}): inconclusive, {why}; not failed"
    return GateResult(name, label, measured, floor, True, evidence, text, inconclusive=True)


def speedup_pass_explained(metric, before: dict, now: dict, floor: float, reference_batch_size: int) -> str:
    """Why a speedup at or above ``floor`` (``now``'s rate over ``before``'s, two cases' ``extra_info``)
    might be the machine's doing rather than batching's, or '': the reference ran on a slower machine,
    and the speedup, at or above the floor on the rounds as measured, falls below it once they are
    brought to one speed (by the probe's readings when they are steady, else either way
    ``rounds_at_probe_speeds`` allows, when the probe shows a speed change), or once the reference's
    rounds are credited with the time its threads waited for a CPU beyond what the batched case's
    waited (``CPU_WAIT_MATERIAL`` or more: a wait both cases shared slowed both). A planted strategy
    whose batching costs 7x its batch's generation passed at 1.29x on a 2-core machine whose load
    dropped between its bs=1 and its bs=4 rounds."""
    def below(before_rounds, now_rounds) -> bool:
        return median(now_rounds) < floor * median(before_rounds)

    equal = rounds_at_equal_speed(metric, before, now)
    if equal is None:
        return ""
    raw_before, raw_now = before["metric_samples"][metric.name], now["metric_samples"][metric.name]
    if below(raw_before, raw_now):  # the per-round rates' medians disagree with the round times' (even rounds)
        return ""
    before_rounds, now_rounds, adjusted = equal
    if adjusted and below(before_rounds, now_rounds):
        return (f"at equal machine speed (the speed probe read the bs={reference_batch_size} rounds' machine slower) "
                f"it is {median(now_rounds) / median(before_rounds):.4g}")
    changed = "" if adjusted else speed_change(metric, before, now)
    if changed and any(below(*rounds) for rounds in rounds_at_probe_speeds(metric, before, now)):
        return changed
    shared = median(now.get("cpu_wait_share") or [0.0])
    excess = [max(0.0, share - shared) for share in before.get("cpu_wait_share") or []]
    credited = rounds_without_cpu_wait(metric, {**before, "cpu_wait_share": excess}) if excess else None
    if credited is not None and median(excess) >= CPU_WAIT_MATERIAL and (inf in credited or below(credited, raw_now)):
        return (f"in the bs={reference_batch_size} rounds the threads doing the work waited for a CPU "
                f"{median(before['cpu_wait_share']):.0%} of the time (other processes held the cores), "
                f"against {shared:.0%} in these")
    return ""


def _at_least(name: str, label: str, measured: float | None, required: float, note: str = "") -> GateResult:
    return GateResult(name, label, measured, required, measured is not None and measured >= required, note)


def _at_most(name: str, label: str, measured: float | None, ceiling: float, note: str = "") -> GateResult:
    """A ceiling; not measured (no peak-memory reading on this platform, a strategy that reports no
    latency) is not checked, and says so in a warning."""
    if measured is None:
        return GateResult(name, label, None, ceiling, True, note or "not measured here", ceiling=True,
                          inconclusive=True)
    return GateResult(name, label, measured, ceiling, measured <= ceiling, note, ceiling=True)


def sample_lines(title: str, divergences, reference_texts, result: RunResult, workload, tokenizer, *,
                 reference_name: str, similarities: dict | None = None) -> list[str]:
    """Each differing sample: where it diverges, what kind of change it is, the prompt and both outputs."""
    if not divergences:
        return []
    lines = [f"  differing samples ({title}; near-tie = log-prob margin within --llmperf-near-tie):"]
    for divergence, reference_text in zip(divergences, reference_texts):
        similarity = f"similarity {similarities[divergence.index]:.2f}, " if similarities else ""
        lines.append(f"  - sample {divergence.index}: {similarity}{divergence.describe(tokenizer)}")
        lines.append(f"      prompt: {_preview(prompt_text(workload.prompts[divergence.index]))}")
        lines.append(f"      {reference_name}: {_preview(reference_text)}")
        lines.append(f"      now: {_preview(result.generations.samples[divergence.index].text)}")
    return lines


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "...")
