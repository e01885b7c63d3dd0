"""The table of metrics the cross-commit gate compares: each with its direction, its default
tolerance and its per-round samples.

A metric is one row: a new one (energy, say) plugs in by adding a ``Metric`` whose
``per_round`` reads it from a ``Timing``. The samples are saved with every case
(``extra_info["metric_samples"]``) so that a later run can test its own rounds against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import inf
from statistics import median
from typing import Callable

from ..settings.options import METRIC_NAMES
from . import latency
from .instruments import MiB
from .stats import cv
from .timing import Timing


@dataclass(frozen=True)
class Metric:
    name: str  # the extra_info key of its summary value, and of its samples in metric_samples
    label: str
    unit: str
    higher_is_better: bool
    tolerance: float  # default: a change worse than this fraction may fail, if the evidence is significant
    per_round: Callable[[Timing, int], list[float]]  # (timing, samples per round) -> one value per measured round
    machine_bound: bool = True  # scales with the machine's speed (a time or a rate), so the speed probe applies
    from_latency: bool = False  # read from the latency recorder, whose rounds may be extra ones (latency_source)

    def at_reference_speed(self, values, probe_s, reference_s: float) -> list[float]:
        """``values`` as if they had been measured on a machine whose probe takes ``reference_s``: a
        machine twice as slow (probe twice as long) halves a rate and doubles a time. One factor
        per case, from the median of its probe readings: a single 10 ms probe is a noisy reading of
        the machine's speed, the median over the rounds a steady one."""
        if not self.machine_bound:
            return list(values)
        factor = median(probe_s) / reference_s
        return [v * factor if self.higher_is_better else v / factor for v in values]


def _latency_per_round(name: str, stat: str) -> Callable[[Timing, int], list[float]]:
    def per_round(timing: Timing, _) -> list[float]:
        values = (latency.per_round_percentile(r, name, stat) for r in timing.readings.get("latency", ()))
        return [value for value in values if value is not None]

    return per_round


METRICS: tuple[Metric, ...] = (
    Metric("tokens_per_s", "tokens/s", "tokens/s", True, 0.10,
           lambda timing, _: [tokens / s for tokens, s in zip(timing.tokens_per_round, timing.round_s)]),
    Metric("samples_per_s", "samples/s", "samples/s", True, 0.10,
           lambda timing, samples: [samples / s for s in timing.round_s]),
    Metric("peak_memory_mb", "peak memory", "MB", False, 0.10,
           lambda timing, _: [r.peak_bytes / MiB for r in timing.readings.get("peak_memory", ()) if r is not None],
           machine_bound=False),
    Metric("energy_per_token_j", "energy/token", "J", False, 0.10,
           lambda timing, _: [j / tokens for j, tokens in zip(timing.instrument_info.get("energy_j_rounds") or (),
                                                              timing.tokens_per_round)],
           machine_bound=False),
    # Tail latencies, one p95 per recorded round (latency.py). A round's tail rests on a few requests,
    # so TTFT and ITL get a wider default tolerance than whole-round figures.
    *(Metric(f"{name}_p95", f"{label} p95", "ms", False, tolerance, _latency_per_round(name, "p95"),
             from_latency=True)
      for name, label, tolerance in (("ttft_ms", "TTFT", 0.20), ("itl_ms", "ITL", 0.20), ("e2e_ms", "e2e", 0.10))),
)
METRICS_BY_NAME = {metric.name: metric for metric in METRICS}
if tuple(METRICS_BY_NAME) != METRIC_NAMES:  # the option table validates --llmperf-tolerance against these
    raise ImportError(f"settings.options.METRIC_NAMES {METRIC_NAMES} != the metric table {tuple(METRICS_BY_NAME)}")


def samples(timing: Timing | None, num_samples: int) -> dict[str, list[float]] | None:
    """Every metric's per-round samples, for ``extra_info["metric_samples"]``."""
    if timing is None:
        return None
    return {metric.name: metric.per_round(timing, num_samples) for metric in METRICS}


# A probe whose own readings vary more than this cannot say how fast the machine was: under heavy
# contention a 10 ms reading samples a burst, not the round (readings of 21 to 364 ms were seen
# with a competing process on 2 cores), and scaling by it would add noise, not remove it. A single
# reading cannot show that it is steady.
PROBE_MAX_CV = 0.25
# Two cases whose median probe readings differ by more than this (either way) ran at different
# machine speeds: when the rounds cannot be scaled to equal speed, no verdict can be drawn from them.
PROBE_SPEED_CHANGE = 0.10


def steady_probe(probe_s) -> bool:
    spread = cv(probe_s)
    return spread is not None and spread <= PROBE_MAX_CV


def speed_change(metric: Metric, before: dict, now: dict) -> str:
    """Why two cases' rounds of ``metric`` cannot be compared raw: "the machine's speed changed (probe
    10.2 ms -> 31.5 ms)" when their median probe readings differ by more than ``PROBE_SPEED_CHANGE``;
    '' when they do not, when either case has no probe readings, or for a metric the machine's speed
    does not scale. (Asked only where ``rounds_at_equal_speed`` could not scale the rounds.)"""
    before_probe, now_probe = before.get("probe_s"), now.get("probe_s")
    if not metric.machine_bound or not before_probe or not now_probe:
        return ""
    old, new = median(before_probe), median(now_probe)
    if old <= 0 or 1 / (1 + PROBE_SPEED_CHANGE) <= new / old <= 1 + PROBE_SPEED_CHANGE:
        return ""
    return f"the machine's speed changed (probe {1e3 * old:.1f} ms -> {1e3 * new:.1f} ms)"


def _rounds_and_probes(metric: Metric, before: dict, now: dict) -> tuple:
    """``(before values, now values, before probe, now probe)`` from two cases' ``extra_info``: the
    per-round samples of ``metric`` and the speed-probe readings (None where missing)."""
    return ((before.get("metric_samples") or {}).get(metric.name), (now.get("metric_samples") or {}).get(metric.name),
            before.get("probe_s"), now.get("probe_s"))


def _at_median_speeds(metric: Metric, before_values, now_values, before_probe, now_probe) -> tuple[list, list]:
    """Each case's rounds scaled by the median of its probe readings, to the first case's speed."""
    reference = median(before_probe)
    return (metric.at_reference_speed(before_values, before_probe, reference),
            metric.at_reference_speed(now_values, now_probe, reference))


def rounds_at_probe_speeds(metric: Metric, before: dict, now: dict) -> list[tuple[list[float], list[float]]]:
    """Two cases' per-round samples of ``metric`` brought to one machine speed in the two ways that
    probe readings too scattered to trust (``steady_probe``) still allow: each case by the median of
    its readings, and each round by its own reading (taken right after it). Neither is a correction to
    report; a verdict that holds on the raw rounds and on both of these is not the speed change's
    doing. Empty when either case lacks samples or readings."""
    rounds = _rounds_and_probes(metric, before, now)
    if not (metric.machine_bound and all(rounds)):
        return []
    before_values, now_values, before_probe, now_probe = rounds
    scaled = [_at_median_speeds(metric, *rounds)]
    if len(before_probe) == len(before_values) and len(now_probe) == len(now_values):
        reference = median(before_probe)
        scaled.append(tuple([metric.at_reference_speed([value], [probe], reference)[0]
                             for value, probe in zip(values, probes)]
                            for values, probes in ((before_values, before_probe), (now_values, now_probe))))
    return scaled


def rounds_without_cpu_wait(metric: Metric, info: dict) -> list[float] | None:
    """A case's per-round samples of ``metric`` credited with the time its threads waited for a CPU in
    each round (``cpu_wait_share``, ``instruments.CpuWait``): a rate divided by the share of the round
    not spent waiting, a time multiplied by it. The wait is at least what the round lost to it, so
    these are about as good as the rounds would have been with the cores to itself: a shortfall
    that does not hold on them could be the competing processes' doing. (For a tail latency this is
    a round-wide credit, not a bound on each token's delay: see ``CPU_WAIT_MATERIAL``.) None without
    one reading per round, for a metric the machine's speed does not scale, and for latency recorded
    in extra rounds, which the readings do not cover. A round that waited for as long as it ran gets
    no bound: ``inf`` for a rate. Measured (``benchmarks/cpu_wait_credit.py``,
    ``docs/benchmarks/cpu-2core-hygiene-and-gates.md``): with one busy-looping process on a 2-core
    machine the shipped manual cases' credited rates came out at 1.27x (bs=1) and 1.02x (bs=4) the
    quiet ones."""
    values = (info.get("metric_samples") or {}).get(metric.name)
    shares = info.get("cpu_wait_share")
    if (not metric.machine_bound or not values or not shares or len(shares) != len(values)
            or (metric.from_latency and info.get("latency_source") != latency.IN_MEASURED_ROUNDS)):
        return None
    kept = [max(0.0, 1.0 - share) for share in shares]
    if metric.higher_is_better:
        return [value / share if share > 0 else inf for value, share in zip(values, kept)]
    return [value * share for value, share in zip(values, kept)]


def cpu_waited(info: dict) -> str:
    """"the threads doing the work waited for a CPU 43% of the time in these rounds (other processes
    held the cores)" (the median round), or ''."""
    shares = info.get("cpu_wait_share")
    if not shares:
        return ""
    return (f"the threads doing the work waited for a CPU {median(shares):.0%} of the time in these rounds "
            "(other processes held the cores)")


# A median share of a round spent waiting for a CPU from which the wait is material (quiet rounds on
# the 2-core machine: a median of 1%, at most 1.5%; with one competing process 64%). Below it a
# verdict does not mention the wait. At or above it a tail latency (a p95) is not judged at all: a
# wait lands whole on the few tokens or requests it delays, so a round-wide credit does not bound
# their tail (a 2-core CI run read ITL p95 2.3x its own run a minute earlier while its rates fell 38%).
CPU_WAIT_MATERIAL = 0.05


def latency_waited(info: dict) -> bool:
    """Whether a case's latency was recorded in rounds whose threads waited for a CPU
    ``CPU_WAIT_MATERIAL`` of the time or more: its tails are then not judged."""
    return (info.get("latency_source") == latency.IN_MEASURED_ROUNDS
            and median(info.get("cpu_wait_share") or [0.0]) >= CPU_WAIT_MATERIAL)


def shortfall_without_cpu_wait(metric: Metric, before: dict, now: dict,
                               short: Callable[[list[float], list[float]], bool]) -> tuple[bool, str]:
    """Does a shortfall of ``now`` against ``before`` (two cases' ``extra_info``) hold once ``now``'s
    rounds are credited with the time its threads waited for a CPU (``rounds_without_cpu_wait``),
    against ``before``'s rounds as measured? ``short(before rounds, now rounds)`` judges it. Returns
    ``(holds, what the wait was)``: it holds, trivially, without readings; the text is '' when the
    wait was too small to mention. A tail latency whose rounds waited ``CPU_WAIT_MATERIAL`` or more
    does not hold: no credit bounds a tail."""
    credited = rounds_without_cpu_wait(metric, now)
    if credited is None:
        return True, ""
    if metric.from_latency and latency_waited(now):
        return False, cpu_waited(now)
    if inf in credited or not short(list(before["metric_samples"][metric.name]), credited):  # inf: no bound
        return False, cpu_waited(now)
    return True, cpu_waited(now) if median(now["cpu_wait_share"]) >= CPU_WAIT_MATERIAL else ""


def rounds_at_equal_speed(metric: Metric, before: dict, now: dict) -> tuple[list[float], list[float], bool] | None:
    """Two cases' per-round samples of ``metric`` (from their ``extra_info``), brought to the same
    machine speed (the first case's) when both carry speed-probe readings: ``(before, now,
    adjusted)``, or None when either has no samples, or samples whose median is not above 0: every
    metric is a positive quantity, so those measured nothing (a GPU's energy counter that did not
    advance over rounds shorter than its update period read 0 J), and a ratio to them is no change."""
    rounds = _rounds_and_probes(metric, before, now)
    before_values, now_values, before_probe, now_probe = rounds
    if not before_values or not now_values or median(before_values) <= 0 or median(now_values) <= 0:
        return None
    adjusted = (metric.machine_bound and bool(before_probe) and bool(now_probe)
                and len(before_probe) == len(before_values) and len(now_probe) == len(now_values)
                and steady_probe(before_probe) and steady_probe(now_probe))
    if not adjusted:
        return list(before_values), list(now_values), False
    return (*_at_median_speeds(metric, *rounds), True)
