"""Installing the plugin never breaks a project, strict ones included (``filterwarnings = error``):

* a session without perf tests hears nothing from pytest-llmperf, whatever ``--benchmark-*`` flags
  it sets; a session with perf tests hears of the flags that do not apply in one summary line;
* every warning the plugin raises has a class of its own under ``pytest_llmperf.LLMPerfWarning``,
  so a strict project can let through the machine's noise by class, and it points at the test;
* without pytest-benchmark (``-p no:benchmark``) a perf test says so in one line.
"""

from test_hygiene import SLOW_FIRST_ROUND_CONFTEST

from conftest import FAST, SUITE

STRICT_INI = "[pytest]\nfilterwarnings =\n    error\n{}\n"
BENCHMARK_TEST = '''
def test_b(benchmark):
    benchmark(sum, [1, 2])
'''


def test_a_strict_project_without_perf_tests_is_untouched_by_benchmark_flags(pytester):
    """The reproduction of issue 19: pytest-benchmark's own set-up, where the start-up warning
    "--benchmark-max-time does not apply to perf tests" stopped pytest with INTERNALERROR, exit 3."""
    pytester.makefile(".ini", pytest=STRICT_INI.format(""))
    pytester.makepyfile(test_b=BENCHMARK_TEST)
    result = pytester.runpytest("--benchmark-max-time=0.01", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert "llmperf:" not in result.stdout.str() + result.stderr.str()


def test_with_perf_tests_the_flags_that_do_not_apply_are_one_summary_line(pytester):
    pytester.makefile(".ini", pytest=STRICT_INI.format("    ignore::pytest_llmperf.NoisyMeasurementWarning"))  # a busy machine
    pytester.makepyfile(test_b=BENCHMARK_TEST, test_perf=SUITE)
    result = pytester.runpytest(*FAST, "--llmperf-strategies=manual", "--llmperf-batch-sizes=1",
                                "--benchmark-max-time=0.01", "--benchmark-min-rounds=2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["llmperf: --benchmark-max-time, --benchmark-min-rounds do not apply to perf tests, "
                                 "which run a fixed number of pedantic rounds: set --llmperf-warmup and "
                                 "--llmperf-rounds",
                                 "* 2 passed in *"])
    assert result.stdout.str().count("do not apply to perf tests") == 1


# A first measured round 4x slower than the others: not steady, a ``NoisyMeasurementWarning``.
NOISY = ("--llmperf-strategies=slowstart", "--llmperf-batch-sizes=2", "--llmperf-num-samples=2",
         "--llmperf-max-new-tokens=4", "--llmperf-warmup=0", "--llmperf-rounds=3")


def test_under_W_error_the_machines_noise_is_let_through_by_its_class(run_suite):
    failing = run_suite(*NOISY, "-W", "error", conftest=SLOW_FIRST_ROUND_CONFTEST)
    assert failing.ret == 1  # on a busy machine, the first perf test's set-up already says so
    failing.stdout.fnmatch_lines(["E*pytest_llmperf.NoisyMeasurementWarning: llmperf: *"])
    run_suite(*NOISY, "-W", "error", "-W", "ignore::pytest_llmperf.NoisyMeasurementWarning",
              conftest=SLOW_FIRST_ROUND_CONFTEST).assert_outcomes(passed=1)


def test_a_warning_points_at_the_test_line_that_raised_it(run_suite):
    result = run_suite(*NOISY, "-W", "default", conftest=SLOW_FIRST_ROUND_CONFTEST)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_perf.py:2: NoisyMeasurementWarning: llmperf: slowstart bs=2 * is not steady*",
                                 "    llmperf.benchmark(strategy, batch_size)"])
    assert "pytest_llmperf" not in result.stdout.str().split("warnings summary")[1].split("-- Docs")[0]


def test_every_warning_class_is_a_pytest_warning_under_one_base():
    import pytest

    import pytest_llmperf

    assert issubclass(pytest_llmperf.LLMPerfWarning, pytest.PytestWarning)
    for name in ("NoisyMeasurementWarning", "LLMPerfConfigWarning"):
        warning = getattr(pytest_llmperf, name)
        assert issubclass(warning, pytest_llmperf.LLMPerfWarning)
        assert f"{warning.__module__}.{warning.__qualname__}" == f"pytest_llmperf.{name}"  # as filters write it


def test_without_pytest_benchmark_a_perf_test_says_so_in_one_line(run_suite):
    suite = SUITE + '''

def test_unit():
    assert 1 + 1 == 2
'''
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "-p", "no:benchmark", suite=suite)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "_* ERROR at setup of test_throughput*",
        "pytest-llmperf times perf tests through pytest-benchmark, which -p no:benchmark switched off; to check "
        "outputs without timing, use --benchmark-disable instead",
        "=* short test summary info *="])
    assert "fixture 'benchmark' not found" not in result.stdout.str()
