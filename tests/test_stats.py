"""The statistics of the cross-commit gate, on synthetic samples: a change must be both larger than
the tolerance and significant; too few rounds is "low power"; one round is never enough."""

from dataclasses import dataclass, replace
from statistics import median

import pytest

from pytest_llmperf.measure.metrics import METRICS_BY_NAME
from pytest_llmperf.measure.stats import (
    IMPROVED,
    INCONCLUSIVE,
    REGRESSED,
    UNCHANGED,
    compare,
    min_attainable_p,
)

BASE6 = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]


def test_a_clear_drop_with_enough_rounds_regresses_on_the_test():
    change = compare(BASE6, [80.0, 81.0, 79.0, 80.5, 79.5, 80.2], higher_is_better=True, tolerance=0.10)
    assert change.verdict == REGRESSED and not change.low_power
    assert change.ratio == pytest.approx(0.80, abs=0.01)
    assert change.p_value < 0.01 and change.ci[1] < 0.9


def test_a_change_within_the_tolerance_is_unchanged_however_significant():
    change = compare(BASE6, [95.0, 95.1, 94.9, 95.0, 95.1, 94.9], higher_is_better=True, tolerance=0.10)
    assert change.verdict == UNCHANGED and change.p_value is None


def test_a_large_but_noisy_change_is_inconclusive_not_a_failure():
    change = compare(BASE6, [50.0, 125.0, 60.0, 120.0, 55.0, 115.0], higher_is_better=True, tolerance=0.10)
    assert change.verdict == INCONCLUSIVE and "p = " in change.reason


def test_three_rounds_a_side_are_low_power_and_the_interval_decides():
    assert min_attainable_p(3, 3) == pytest.approx(0.05)
    separated = compare([100.0, 101.0, 99.0], [50.0, 51.0, 49.0], higher_is_better=True, tolerance=0.10)
    assert separated.verdict == REGRESSED and separated.low_power and separated.ci[1] < 1
    overlapping = compare([100.0, 120.0, 80.0], [70.0, 105.0, 85.0], higher_is_better=True, tolerance=0.10)
    assert overlapping.verdict == INCONCLUSIVE and overlapping.low_power
    # separated, but the interval reaches into the tolerance: not enough for a low-power verdict
    barely = compare([100.0, 101.0, 99.0], [85.0, 88.0, 92.0], higher_is_better=True, tolerance=0.10)
    assert barely.verdict == INCONCLUSIVE and barely.ci[1] < 1 and barely.ci[1] > 0.9


def test_one_round_a_side_is_never_a_verdict():
    change = compare([100.0], [50.0], higher_is_better=True, tolerance=0.10)
    assert change.verdict == INCONCLUSIVE and "one round" in change.reason


def test_direction_lower_is_better_and_improvements():
    slower_latency = compare([1.0, 1.01, 0.99, 1.0, 1.02, 0.98], [1.5, 1.51, 1.49, 1.5, 1.52, 1.48],
                             higher_is_better=False, tolerance=0.10)
    assert slower_latency.verdict == REGRESSED
    faster = compare(BASE6, [130.0, 131.0, 129.0, 130.5, 129.5, 130.2], higher_is_better=True, tolerance=0.10)
    assert faster.verdict == IMPROVED


def test_the_interval_is_reproducible():
    now = [80.0, 95.0, 70.0, 90.0, 85.0, 75.0]
    assert compare(BASE6, now, higher_is_better=True, tolerance=0.1).ci == \
        compare(BASE6, now, higher_is_better=True, tolerance=0.1).ci


def test_rates_and_times_are_brought_to_the_reference_machine_speed():
    rate = METRICS_BY_NAME["tokens_per_s"]
    # this case's probe took twice the reference's (median of its rounds): the machine was twice as slow
    assert rate.at_reference_speed([50.0, 60.0, 40.0], [2.0, 1.9, 2.2], reference_s=1.0) == [100.0, 120.0, 80.0]


def checks(before_rates, before_probe, now_rates, now_probe):
    """The cross-commit gate on tokens/s alone, from two cases' rounds and speed-probe readings (s)."""
    from pytest_llmperf.settings.config import Thresholds
    from pytest_llmperf.verdicts.regression import metric_checks

    [check] = metric_checks({"metric_samples": {"tokens_per_s": before_rates}, "probe_s": before_probe},
                            {"metric_samples": {"tokens_per_s": now_rates}, "probe_s": now_probe}, Thresholds(), 0.01)
    return check


def test_a_machine_speed_change_the_probe_cannot_correct_for_is_inconclusive_never_a_verdict():
    steady = [0.010, 0.0101, 0.0099]
    # steady probes: the rounds are scaled, and a machine twice as slow is not slower code
    slower_machine = checks([100, 101, 99], steady, [50, 50.5, 49.5], [0.020, 0.0202, 0.0198])
    assert slower_machine.speed_adjusted and slower_machine.verdict == UNCHANGED
    # the probe's readings scatter (CV above 25%) around a median 3x the baseline's: no scaling, no verdict
    scattered = checks([100, 101, 99], steady, [30, 31, 29], [0.015, 0.030, 0.060])
    assert not scattered.speed_adjusted and scattered.verdict == INCONCLUSIVE
    assert scattered.speed_changed == scattered.change.reason == "the machine's speed changed (probe 10.0 ms -> 30.0 ms)"
    unchanged_code = checks([100, 101, 99], steady, [100, 101, 99], [0.015, 0.030, 0.060])
    assert unchanged_code.verdict == INCONCLUSIVE and unchanged_code.speed_changed
    # scattered readings around the same median: the machine held its speed, and the raw rounds are judged
    held = checks([100, 101, 99], steady, [30, 31, 29], [0.005, 0.010, 0.020])
    assert held.verdict == REGRESSED and not held.speed_changed
    # one reading cannot show that it is steady: not scaled by, but it can show a change of speed
    one = checks([100.0], [0.010], [100.0], [0.030])
    assert not one.speed_adjusted and one.verdict == INCONCLUSIVE and one.speed_changed


def test_rounds_that_measured_nothing_are_not_compared_and_a_zero_baseline_never_crashes():
    """A GPU run saved energy/token rounds of 0 J (its energy counter did not advance over rounds
    shorter than its update period), and the next run's comparison with it failed its test on a
    ZeroDivisionError. Every metric is a positive quantity: a median of 0 measured nothing, and is
    not compared, as a metric a run does not carry; a single round of 0 bounds nothing, quietly."""
    import warnings

    from pytest_llmperf.measure.metrics import rounds_at_equal_speed
    from pytest_llmperf.settings.config import Thresholds
    from pytest_llmperf.verdicts.regression import metric_checks

    energy = METRICS_BY_NAME["energy_per_token_j"]
    nothing, measured = {"metric_samples": {energy.name: [0.0, 0.0]}}, {"metric_samples": {energy.name: [1.6, 1.5]}}
    assert rounds_at_equal_speed(energy, nothing, measured) is None is rounds_at_equal_speed(energy, measured, nothing)
    assert metric_checks(nothing, measured, Thresholds(), 0.01, metrics=(energy,)) == []
    assert metric_checks(measured, nothing, Thresholds(), 0.01, metrics=(energy,)) == []
    assert compare([0.0, 0.0], [1.6, 1.5], higher_is_better=False, tolerance=0.1).verdict == INCONCLUSIVE
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's divide-by-zero warnings would reach the user's summary
        one_zero = compare([1.5, 0.0, 1.6], [3.0, 3.1, 3.2], higher_is_better=False, tolerance=0.1)
        assert one_zero.verdict in (REGRESSED, INCONCLUSIVE) and one_zero.ratio == pytest.approx(3.1 / 1.5)
        assert compare([1.5, 0.0], [3.0], higher_is_better=False, tolerance=0.1).ci[1] == float("inf")


@dataclass(frozen=True)
class Case:
    """What the speedup gate reads of a timed case: its per-round samples/s and speed-probe readings."""

    batch_size: int
    rounds: list[float]
    probe_ms: list[float]
    strategy: str = "manual"
    timing: bool = True
    cpu_wait: list[float] | None = None  # per round, the share of it the working threads waited for a CPU

    @property
    def samples_per_s(self) -> float:
        return median(self.rounds)

    def extra_info(self) -> dict:
        return {"metric_samples": {"samples_per_s": self.rounds}, "probe_s": [ms / 1e3 for ms in self.probe_ms],
                "cpu_wait_share": self.cpu_wait}


def test_a_speedup_shortfall_a_machine_speed_change_could_explain_is_inconclusive_and_one_it_cannot_still_fails():
    """Rounds measured on the 2-core machine (2026-11-28): the shipped suite's manual case with a CPU
    hog on one core and a second pytest session on the other, as `pytest tests -n 2` runs the busy
    test, and the busy test's planted no-payoff strategy (every extra sample costs two batches' time)
    with the hog alone. The probe's readings scatter (CV above 25%) in both, so no round is scaled."""
    from pytest_llmperf.verdicts.gates import speedup_gate

    # batching that pays off 4x on a quiet machine read 0.149x: the bs=4 case ran at a probe 5x slower
    bs1 = Case(1, [1.443, 4.611, 5.182], [659.3, 135.4, 200.7])
    bs4 = Case(4, [0.688, 0.69, 0.687], [969.7, 965.0, 545.1])
    fooled = speedup_gate(bs4, bs1, 1.0, 0.01)
    assert fooled.passed and fooled.inconclusive
    assert fooled.text == ("speedup vs bs=1: 0.1492 below required 1 (99% CI 0.133-0.478, p=0.05, low power): "
                           "inconclusive, the machine's speed changed (probe 200.7 ms -> 965.0 ms), which could "
                           "explain the shortfall; not failed")
    # the planted no-payoff: the machine slowed 2.9x between the cases, but the shortfall holds at
    # either probe scaling (each case by its median reading, each round by its own)
    bs1 = Case(1, [7.829, 6.674, 8.16, 7.885, 7.119, 7.042, 6.953], [66.6, 72.5, 196.5, 178.3, 66.6, 212.5, 73.7])
    bs4 = Case(4, [0.794, 1.151, 0.748, 1.914, 1.991, 1.848, 1.355], [213.6, 228.4, 175.4, 167.5, 125.2, 223.0, 369.2])
    no_payoff = speedup_gate(bs4, bs1, 1.0, 0.01)
    assert not no_payoff.passed and not no_payoff.inconclusive
    assert no_payoff.note.endswith("the machine's speed changed (probe 73.7 ms -> 213.6 ms), and the shortfall holds "
                                   "with the rounds brought to one speed by its readings")
    # the same rounds with steady probes at one speed: scaled (a no-op) and judged as measured
    steady = speedup_gate(replace(bs4, probe_ms=[10.0] * 7), replace(bs1, probe_ms=[10.0] * 7), 1.0, 0.01)
    assert not steady.passed and steady.note == "99% CI 0.101-0.280, p=0.000291, at equal machine speed"


def test_a_shortfall_the_time_spent_waiting_for_a_cpu_could_explain_is_inconclusive_and_one_it_cannot_still_fails():
    """Rounds measured on the 2-core machine (2026-11-28), the shipped suite's manual case with a
    busy-looping process on each core: each of torch's two threads got half a core (waited for a CPU
    half of each round, 1.0 summed), and bs=4, which pays off 2x on a quiet machine, read 0.13x.
    The probe's readings are set steady here, so the rounds are compared at equal machine speed and
    the wait alone decides."""
    from pytest_llmperf.verdicts.gates import speedup_gate, throughput_floor

    bs1 = Case(1, [5.34, 5.4, 5.9], [80.0] * 3, cpu_wait=[0.997, 0.997, 0.996])
    bs4 = Case(4, [0.71, 0.72, 1.32], [80.0] * 3, cpu_wait=[1.0, 1.0, 0.999])
    waited = speedup_gate(bs4, bs1, 1.0, 0.01)
    assert waited.passed and waited.inconclusive
    assert waited.text == ("speedup vs bs=1: 0.1333 below required 1 (99% CI 0.120-0.247, p=0.05, low power, at equal "
                           "machine speed): inconclusive, the threads doing the work waited for a CPU 100% of the time "
                           "in these rounds (other processes held the cores), which could explain the shortfall; "
                           "not failed")
    # the same rounds where the kernel does not report the wait: judged as measured, and failed
    blind = speedup_gate(replace(bs4, cpu_wait=None), bs1, 1.0, 0.01)
    assert not blind.passed and blind.note == "99% CI 0.120-0.247, p=0.05, low power, at equal machine speed"
    # a real shortfall on a machine that took 5% of the rounds: it holds with that time credited
    slower = speedup_gate(replace(bs4, cpu_wait=[0.05, 0.04, 0.06]), bs1, 1.0, 0.01)
    assert not slower.passed and slower.note.endswith(
        "; the threads doing the work waited for a CPU 5% of the time in these rounds (other processes held the "
        "cores), and the shortfall holds with that time credited")
    # an absolute floor: 0.72 samples/s, 3.6x that with the 72% of each round spent waiting credited
    floor = throughput_floor(replace(bs4, cpu_wait=[0.72, 0.72, 0.72]), "samples_per_s", 0.72, 2.0)
    assert floor.passed and floor.inconclusive and floor.line().startswith("samples/s: 0.72 below required 2: "
                                                                           "inconclusive, the threads doing the work")
    assert "(credited with that time: 2.571)" in floor.line()
    assert not throughput_floor(replace(bs4, cpu_wait=[0.1, 0.1, 0.1]), "samples_per_s", 0.72, 2.0).passed
    unbounded = throughput_floor(bs4, "samples_per_s", 0.72, 2.0)  # each round waited as long as it ran
    assert unbounded.inconclusive and "(credited with that time: no bound)" in unbounded.line()


def test_a_speedup_the_reference_cases_slower_machine_could_explain_is_inconclusive_not_a_pass():
    """The pass side of the speedup gate. Synthetic rounds shaped on a CI run of the busy test's planted
    no-payoff strategy (every extra sample costs two batches' time), which passed at 1.29x: its bs=1
    rounds ran while the machine was busy, its bs=4 rounds while it was not."""
    from pytest_llmperf.verdicts.gates import speedup_gate

    bs1 = Case(1, [1.55, 1.52, 1.6], [10.0] * 3, cpu_wait=[0.62, 0.6, 0.65])
    bs4 = Case(4, [2.0, 2.9, 1.99], [10.0] * 3, cpu_wait=[0.01, 0.01, 0.02])
    waited = speedup_gate(bs4, bs1, 1.0, 0.01)
    assert waited.passed and waited.inconclusive
    assert waited.text == ("speedup vs bs=1: 1.29 at or above required 1: inconclusive, in the bs=1 rounds the threads "
                           "doing the work waited for a CPU 62% of the time (other processes held the cores), against "
                           "1% in these, which could explain the speedup; not judged")
    # the same wait in both cases slowed both: the speedup stands
    shared = speedup_gate(replace(bs4, cpu_wait=[0.62, 0.6, 0.65]), bs1, 1.0, 0.01)
    assert shared.passed and not shared.inconclusive
    # the same speedup from quiet bs=1 rounds, or where the kernel does not report the wait: a pass
    for quiet in (replace(bs1, cpu_wait=[0.01, 0.02, 0.01]), replace(bs1, cpu_wait=None)):
        passed = speedup_gate(bs4, quiet, 1.0, 0.01)
        assert passed.passed and not passed.inconclusive and passed.line() == "speedup vs bs=1: 1.29 >= required 1"
    # batching that pays off 3x beside the same wait: it still holds with the wait credited
    assert not speedup_gate(replace(bs4, rounds=[4.8, 4.7, 4.9]), bs1, 1.0, 0.01).inconclusive
    # steady probes that read the bs=1 rounds' machine twice as slow: at equal speed 0.645x
    slower = speedup_gate(bs4, replace(bs1, probe_ms=[20.0] * 3, cpu_wait=None), 1.0, 0.01)
    assert slower.passed and slower.inconclusive and slower.text.startswith(
        "speedup vs bs=1: 1.29 at or above required 1: inconclusive, at equal machine speed (the speed probe read the "
        "bs=1 rounds' machine slower) it is 0.645")
    # scattered probes (CV above 25%) that read a speed change: below the floor at either probe scaling
    scattered = speedup_gate(replace(bs4, probe_ms=[10.0, 16.0, 9.0]),
                             replace(bs1, probe_ms=[30.0, 19.0, 40.0], cpu_wait=None), 1.0, 0.01)
    assert scattered.inconclusive and "the machine's speed changed (probe 30.0 ms -> 10.0 ms)" in scattered.text


def test_a_latency_regression_the_time_spent_waiting_for_a_cpu_could_explain_is_inconclusive():
    """The cross-commit gate on ITL p95, as a fleet test on two busy workers read it: 2.3x the
    baseline from the same machine, with the working threads waiting for a CPU 60% of each round. A
    tail takes a wait whole, so from 5% of waiting on a tail latency is not judged."""
    from pytest_llmperf.settings.config import Thresholds
    from pytest_llmperf.verdicts.regression import metric_checks

    def check(wait, source="measured rounds"):
        [itl] = metric_checks({"metric_samples": {"itl_ms_p95": [6.2, 6.37, 6.5]}, "cpu_wait_share": [0.0] * 3},
                              {"metric_samples": {"itl_ms_p95": [14.5, 14.8, 15.2]}, "cpu_wait_share": wait,
                               "latency_source": source}, Thresholds(), 0.01, metrics=(METRICS_BY_NAME["itl_ms_p95"],))
        return itl

    busy = check([0.6, 0.62, 0.58])
    assert busy.verdict == INCONCLUSIVE and busy.cpu_waited.startswith("the threads doing the work waited for a CPU 60%")
    # 10% waiting: a round-wide credit would leave 2.1x, but the waits land whole on single tokens
    assert check([0.1, 0.1, 0.1]).verdict == INCONCLUSIVE
    assert check([0.01, 0.02, 0.01]).verdict == REGRESSED  # as quiet rounds wait: judged, credited
    assert check(None).verdict == REGRESSED  # no readings (not Linux): judged as measured
    # latency recorded in extra rounds of its own: the readings cover other rounds, and credit nothing
    assert check([0.6, 0.62, 0.58], source="extra rounds").verdict == REGRESSED


def test_energy_measured_by_other_means_than_the_baselines_is_not_comparable():
    """A GPU's energy counter that updates less often than the rounds last (an H200's, over 30-55 ms
    rounds) reads whole steps in the rounds that catch one; when a round reads 0 J the case integrates
    power instead. Two cases measured those two ways are not compared."""
    from pytest_llmperf.settings.config import Thresholds
    from pytest_llmperf.verdicts.regression import metric_checks

    def check(before_measure, now_measure):
        [energy] = metric_checks({"metric_samples": {"energy_per_token_j": [0.41, 0.42, 0.40]},
                                  "energy_measure": before_measure},
                                 {"metric_samples": {"energy_per_token_j": [0.75, 0.76, 0.74]},
                                  "energy_measure": now_measure},
                                 Thresholds(), 0.01, metrics=(METRICS_BY_NAME["energy_per_token_j"],))
        return energy

    unlike = check("integrated power (nvml energy counter did not advance over a round)", "nvml energy counter")
    assert unlike.change is None and unlike.verdict == (
        "not comparable (energy measured by integrated power (nvml energy counter did not advance over a round) in "
        "the baseline, by nvml energy counter now)")
    assert check("nvml energy counter", "nvml energy counter").verdict == REGRESSED  # the same means: judged
    assert check(None, "nvml energy counter").verdict == REGRESSED  # a run saved before the key: judged


def test_the_cpu_wait_of_a_thread_sharing_its_core_with_another_process_is_measured():
    """The instrument itself, on Linux: a thread spinning on a core that a busy-looping process
    shares waits for it at least a third of the time (about half, more if other work shares the core
    too); asleep, it hardly waits (only on waking)."""
    import os
    import subprocess
    import sys
    import time

    from pytest_llmperf.measure.instruments import CpuWait

    if CpuWait.schedstats() is None or not hasattr(os, "sched_setaffinity"):
        pytest.skip("the kernel does not report per-thread run-queue delay here (Linux /proc/self/task/*/schedstat)")

    def measured(work):
        instrument = CpuWait()
        instrument.before_round()
        work()
        return instrument.after_round()

    def spin(seconds=0.6):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    cpus = os.sched_getaffinity(0)
    core = min(cpus)
    os.sched_setaffinity(0, {core})
    try:
        hog = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
        try:
            time.sleep(0.2)
            shared, sleeping = measured(spin), measured(lambda: time.sleep(0.5))
        finally:
            hog.kill()
            hog.wait()
    finally:
        os.sched_setaffinity(0, cpus)
    assert shared > 0.3, shared
    assert sleeping < 0.1, sleeping  # asleep it does not wait; on waking it may, for one time slice


def test_a_latency_ceiling_missed_while_the_threads_waited_for_a_cpu_is_inconclusive():
    """An absolute latency ceiling is a tail too: above it with the rounds' threads waiting 5% of the
    time or more, it is inconclusive; with the 1% of quiet rounds it fails as measured."""
    from types import SimpleNamespace

    from pytest_llmperf.settings.config import Thresholds
    from pytest_llmperf.verdicts.gates import ceiling_gates

    def gate(wait, source="measured rounds"):
        info = {"latency_source": source, "latency_requests": 8, "latency_rounds": 3, "itl_ms_p95": 14.8,
                "cpu_wait_share": wait, "memory_measure": ""}
        result = SimpleNamespace(batch_size=1, timing=SimpleNamespace(instrument_info=info))
        [itl] = ceiling_gates(result, Thresholds(max_itl_ms={"*": 10.0}))
        return itl

    busy = gate([0.6, 0.62, 0.58])
    assert busy.passed and busy.inconclusive
    assert busy.line() == ("ITL p95 ms: 14.8 above ceiling 10 (8 requests over 3 measured rounds): inconclusive, the "
                           "threads doing the work waited for a CPU 60% of the time in these rounds (other processes "
                           "held the cores), which could explain it; not failed")
    assert not gate([0.01, 0.01, 0.02]).passed
    assert not gate(None).passed  # no readings: judged as measured
    assert not gate([0.6, 0.62, 0.58], source="extra rounds").passed  # the readings cover other rounds
