"""Measurement hygiene: a round measures inference and nothing else.

* the garbage collector is collected and frozen before the rounds, and every collection that still
  runs inside a measured round is counted, with its pause;
* torch's threads are recorded, and ``--llmperf-threads`` sets them;
* a case whose rounds are not steady gets a warning and its CV in ``extra_info``;
* pytest-benchmark's own ``--benchmark-disable-gc`` and ``--benchmark-timer`` apply; its calibration
  options, which cannot, are said to not apply.
"""

import gc
import json
import subprocess
import sys

import pytest

from pytest_llmperf.measure.stats import cv, first_round_ratio, steadiness

MANUAL_BS2 = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=2")


def extra_info(pytester, name="bench.json") -> list[dict]:
    return [bench["extra_info"] for bench in json.loads((pytester.path / name).read_text())["benchmarks"]]


# -- the garbage collector -------------------------------------------------------------------------

def freeze_count_of_a_fresh_interpreter() -> int:
    """``gc.get_freeze_count()`` after a full collection in a fresh interpreter of this Python: what it
    reads with nothing frozen. 0 on 3.11 and 3.13; on 3.12 a full collection moves every immortal object
    it meets into the permanent generation (375 on 3.12.1 and 3.12.3), where ``gc.unfreeze()`` leaves
    them only until the next full collection."""
    result = subprocess.run([sys.executable, "-c", "import gc; gc.collect(); print(gc.get_freeze_count())"],
                            capture_output=True, text=True, timeout=60, check=True)
    return int(result.stdout)


@pytest.fixture
def a_project_without_a_frozen_heap():
    """This suite's own heap is frozen (``conftest.py``, as a project that freezes its heap does): for a
    test of what the plugin does in a project that froze nothing, it is unfrozen, and frozen again after
    (asked for first, so that it is torn down last, once the test's own sessions are gone)."""
    gc.unfreeze()
    yield
    gc.collect()
    gc.freeze()


def test_by_default_the_heap_is_frozen_and_collections_in_rounds_are_recorded(a_project_without_a_frozen_heap,
                                                                              run_suite, pytester):
    run_suite(*MANUAL_BS2, "--llmperf-rounds=3", "--benchmark-json=bench.json").assert_outcomes(passed=1)
    [info] = extra_info(pytester)
    assert info["gc_mode"] == "freeze" and info["gc_enabled_in_rounds"] is True
    assert info["gc_frozen_objects"] > 10_000  # the model, torch, transformers, pytest
    assert set(info["gc_collections_in_measured_rounds"]) == {"gen0", "gen1", "gen2"}
    assert info["gc_pause_s_in_measured_rounds"] >= 0
    gc.collect()  # as in the fresh interpreter: on 3.12 it puts the immortal objects back where they were
    assert gc.get_freeze_count() == freeze_count_of_a_fresh_interpreter(), \
        "the heap must be unfrozen once the rounds are over"


def test_a_heap_the_project_froze_stays_frozen_and_only_what_is_newer_is_collected(run_suite, pytester):
    """This suite froze its heap as it started (``conftest.py``), as vLLM and SGLang advise after loading a
    model: the rounds keep that freeze and the plugin freezes nothing more; after them the project's
    frozen objects are still frozen (a count that only falls as some of them are freed)."""
    from pytest_llmperf.measure.instruments import PROJECT_FREEZE

    gc.collect()
    frozen = gc.get_freeze_count()
    assert frozen > PROJECT_FREEZE, "tests/conftest.py freezes the suite's heap"
    run_suite(*MANUAL_BS2, "--llmperf-rounds=2", "--benchmark-json=bench.json").assert_outcomes(passed=1)
    [info] = extra_info(pytester)
    assert info["gc_mode"] == "freeze" and frozen >= info["gc_frozen_objects"] > 0.9 * frozen
    assert frozen >= gc.get_freeze_count() > 0.9 * frozen, "the project's frozen heap must stay frozen"


def test_gc_none_leaves_the_collector_alone_and_disable_gc_is_honoured(run_suite, pytester):
    run_suite(*MANUAL_BS2, "--llmperf-gc=none", "--benchmark-disable-gc", "--benchmark-json=bench.json"
              ).assert_outcomes(passed=1)
    [info] = extra_info(pytester)
    assert info["gc_mode"] == "none" and info["gc_frozen_objects"] is None
    assert info["gc_enabled_in_rounds"] is False  # pytest-benchmark switches it off inside each round


EXPLICIT_COLLECT_CONFTEST = '''
import gc

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("collects")
class Collects(ManualStrategy):
    """Runs a full collection in every round, as transformers' generate_batch does."""

    def generate(self, ctx):
        gc.collect()
        return super().generate(ctx)
'''


def test_a_collection_inside_a_round_is_counted_with_its_pause(run_suite):
    suite = '''
def test_collects(llmperf):
    result = llmperf.benchmark("collects", 2)
    per_round = result.timing.readings["gc"]
    assert len(per_round) == 3 and all(r.by_generation[2] >= 1 and r.pause_s > 0 for r in per_round)
    info = result.extra_info()
    assert info["gc_collections_in_measured_rounds"]["gen2"] >= 3
    assert info["gc_pause_s_in_measured_rounds"] == sum(r.pause_s for r in per_round)
'''
    run_suite("--llmperf-warmup=1", "--llmperf-rounds=3", suite=suite,
              conftest=EXPLICIT_COLLECT_CONFTEST).assert_outcomes(passed=1)


def test_gc_mode_is_validated(run_suite):
    result = run_suite("--llmperf-gc=off")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-gc: invalid value 'off'; valid values: freeze, none*"])


# -- threads ----------------------------------------------------------------------------------------

def test_threads_option_sets_torch_threads_and_is_recorded(pytester, monkeypatch):
    """In a fresh process, as a user runs it: inter-op threads can only be set before torch works. Its
    torch would start with two intra-op threads (not the one an xdist worker of this suite passes on)."""
    from conftest import FAST, SUITE

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    pytester.makepyfile(test_perf=SUITE)
    result = pytester.runpytest_subprocess(*FAST, *MANUAL_BS2, "--llmperf-threads=1", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    [info] = extra_info(pytester)
    assert info["torch_num_threads"] == 1 and info["torch_num_interop_threads"] == 1
    assert info["cpus_available"] >= 1
    machine = json.loads((pytester.path / "bench.json").read_text())["machine_info"]["llmperf"]["hardware"]
    assert machine["torch_num_threads"] == 1 and machine["torch_num_interop_threads"] == 1


def test_without_the_option_torch_threads_are_recorded_as_they_are(run_suite, pytester):
    import torch

    run_suite(*MANUAL_BS2, "--benchmark-json=bench.json").assert_outcomes(passed=1)
    [info] = extra_info(pytester)
    assert info["torch_num_threads"] == torch.get_num_threads()
    assert info["torch_num_interop_threads"] == torch.get_num_interop_threads()
    assert "load_avg_1m" in info and info["timer"] == "time.perf_counter"


def test_threads_must_be_a_positive_integer(run_suite):
    result = run_suite("--llmperf-threads=0")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-threads: invalid value '0'; expected an integer >= 1*"])


# -- a busy machine, said at the start ---------------------------------------------------------------

BUSY_SUITE = '''
def test_unit():
    pass


def test_perf(llmperf):
    pass
'''


def test_more_threads_than_cpus_is_said_as_the_perf_tests_start_and_warned_on_the_first(pytester):
    from pytest_llmperf.measure.environment import cpus_available

    cpus = cpus_available()
    pytester.makepyfile(test_perf=BUSY_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "default", f"--llmperf-threads={cpus + 1}")
    result.assert_outcomes(passed=2)
    line = (f"llmperf: torch runs {cpus + 1} threads on {cpus} available CPU(s): rounds will be slow and erratic; "
            f"set --llmperf-threads {cpus}")
    result.stdout.fnmatch_lines(["collected 2 items", line, "test_perf.py ..*",
                                 f"*test_perf.py:*: NoisyMeasurementWarning: {line}"])
    without_perf_tests = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--llmperf-threads={cpus + 1}",
                                                       "-k", "unit")
    without_perf_tests.assert_outcomes(passed=1, deselected=1)
    assert "llmperf:" not in without_perf_tests.stdout.str()


def test_threads_times_xdist_workers_above_the_cpus_is_a_warning(pytester):
    from pytest_llmperf.measure.environment import cpus_available

    cpus = cpus_available()
    pytester.makepyfile(test_perf=BUSY_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "default", "-n", "2",
                                           f"--llmperf-threads={cpus}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*NoisyMeasurementWarning: llmperf: torch runs {cpus} threads in each of 2 "
                                 f"processes on {cpus} available CPU(s): rounds will be slow and erratic; set "
                                 f"--llmperf-threads {max(1, cpus // 2)}"])


def test_a_load_above_the_cpu_count_is_said_as_the_perf_tests_start(pytester, monkeypatch):
    """The load average is the OS's reading, set here: a machine busier than its CPU count cannot be
    made on demand without loading it for a minute (this suite's own 2-core machine often is)."""
    import os

    cpus = os.cpu_count()
    monkeypatch.setattr(os, "getloadavg", lambda: (cpus + 1.5, 0.0, 0.0))
    pytester.makepyfile(test_perf=BUSY_SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "default")
    result.assert_outcomes(passed=2)
    line = (f"llmperf: the machine is busy (load average {cpus + 1.5:g} on {cpus} CPUs): rounds will be slower and "
            "noisier, and verdicts the noise cannot support are inconclusive rather than wrong")
    result.stdout.fnmatch_lines(["collected 2 items", line, "test_perf.py ..*",
                                 f"*test_perf.py:*: NoisyMeasurementWarning: {line}"])
    without_perf_tests = pytester.runpytest("-p", "no:cacheprovider", "-k", "unit")
    without_perf_tests.assert_outcomes(passed=1, deselected=1)
    assert "llmperf:" not in without_perf_tests.stdout.str()


# -- steady state -----------------------------------------------------------------------------------

SLOW_FIRST_ROUND_CONFTEST = '''
import time

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("slowstart")
class SlowStart(ManualStrategy):
    """Its first call (the first measured round, with no warmup) sleeps three times its own length and
    0.6 s more: at least 3x the others even when noise makes one of them 1.5x the first's work (a CI
    run read 2.86x with 0.2 s: rounds 1.216, 0.328 and 0.521 s)."""

    def setup(self, ctx):
        ctx.state["calls"] = 0

    def generate(self, ctx):
        ctx.state["calls"] += 1
        start = time.perf_counter()
        generations = super().generate(ctx)
        if ctx.state["calls"] == 1:
            time.sleep(3 * (time.perf_counter() - start) + 0.6)
        return generations
'''


def test_a_slow_first_round_warns_and_records_the_cv(run_suite, pytester):
    result = run_suite("--llmperf-strategies=slowstart", "--llmperf-batch-sizes=2", "--llmperf-warmup=0",
                       "--llmperf-rounds=3", "--benchmark-json=bench.json", "-W", "default",
                       conftest=SLOW_FIRST_ROUND_CONFTEST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*llmperf: slowstart bs=2 * is not steady: round-to-round CV *% > 10%; the first measured round took "
        "*x the median of the others (rounds * s); raise --llmperf-warmup or --llmperf-rounds*"])
    [info] = extra_info(pytester)
    assert info["steady"] is False and info["round_cv"] > 0.10 and info["first_round_ratio"] > 3
    assert info["round_cv"] == pytest.approx(cv(info["round_s"]))


def test_a_warmup_round_absorbs_the_slow_start(run_suite, pytester):
    result = run_suite("--llmperf-strategies=slowstart", "--llmperf-batch-sizes=2", "--llmperf-warmup=1",
                       "--llmperf-rounds=3", "--llmperf-max-cv=1", "--benchmark-json=bench.json", "-W", "default",
                       conftest=SLOW_FIRST_ROUND_CONFTEST)
    result.assert_outcomes(passed=1)
    assert "is not steady" not in result.stdout.str()
    [info] = extra_info(pytester)
    assert info["steady"] is True and info["first_round_ratio"] < 3


def test_one_round_cannot_be_judged_and_off_switches_the_check_off(run_suite, pytester):
    run_suite(*MANUAL_BS2, "--llmperf-rounds=1", "--benchmark-json=one.json").assert_outcomes(passed=1)
    [info] = extra_info(pytester, "one.json")
    assert info["round_cv"] is None and info["steady"] is None
    run_suite(*MANUAL_BS2, "--llmperf-rounds=3", "--llmperf-max-cv=off", "--benchmark-json=off.json"
              ).assert_outcomes(passed=1)
    [info] = extra_info(pytester, "off.json")
    assert info["round_cv"] is not None and info["steady"] is None


# -- pytest-benchmark's own options -----------------------------------------------------------------

def test_benchmark_timer_is_used_and_recorded(run_suite, pytester):
    run_suite(*MANUAL_BS2, "--benchmark-timer=time.process_time", "--benchmark-json=bench.json"
              ).assert_outcomes(passed=1)
    [info] = extra_info(pytester)
    assert info["timer"] == "time.process_time"


def test_calibration_options_that_cannot_apply_are_said_once(run_suite):
    result = run_suite(*MANUAL_BS2, "--benchmark-min-rounds=9", "--benchmark-max-time=5", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*llmperf: --benchmark-max-time, --benchmark-min-rounds do not apply to perf tests, "
                                 "which run a fixed number of pedantic rounds: set --llmperf-warmup and "
                                 "--llmperf-rounds*"])
    assert result.stdout.str().count("do not apply to perf tests") == 1


# -- the statistics, on synthetic samples -----------------------------------------------------------

def test_cv_and_first_round_ratio():
    assert cv([1.0]) is None and first_round_ratio([1.0, 2.0]) is None
    assert cv([2.0, 2.0, 2.0]) == 0
    assert cv([1.0, 3.0]) == pytest.approx(2 ** 0.5 / 2)  # stdev sqrt(2), mean 2
    assert first_round_ratio([3.0, 1.0, 1.2, 0.8]) == pytest.approx(3.0)


@pytest.mark.parametrize("samples, max_cv, steady, problems", [
    ([1.00, 1.02, 0.99], 0.10, True, []),
    ([1.00, 1.30, 0.70], 0.10, False, ["round-to-round CV 30.0% > 10%"]),
    ([1.25, 1.00, 1.01, 0.99], 0.10, False, ["round-to-round CV 11.8% > 10%",
                                             "the first measured round took 1.25x the median of the others"]),
    ([1.15, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00], 0.10, True, []),  # 15% slower: within 2 x max_cv
    ([1.30, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00], 0.10, False,
     ["the first measured round took 1.30x the median of the others"]),  # CV 8.7%, but an outlier
    ([1.0, 5.0], None, None, []),  # the check is off
    ([1.0], 0.10, None, []),  # one round cannot be judged
])
def test_steadiness(samples, max_cv, steady, problems):
    result = steadiness(samples, max_cv)
    assert result.steady is steady
    assert result.problems() == problems
