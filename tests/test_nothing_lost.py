"""What an interrupt, a kill or a detected regression leaves the user: every completed case in the
table, the JSON, the autosave and the results file; the interrupted case nowhere; no traceback."""

import json
import signal

import pytest

from conftest import FAST

# A user's strategy that is interrupted (Ctrl-C, or SIGKILL) in the first round at batch size 4.
STOPPING_CONFTEST = '''
import os
import signal

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("stops")
class Stops(ManualStrategy):
    rounds_at_4 = 0

    def generate(self, ctx):
        if ctx.batch_size == 4:
            Stops.rounds_at_4 += 1
            if Stops.rounds_at_4 > int(os.environ.get("ROUNDS_BEFORE_STOP", "0")):
                if os.environ.get("STOP_WITH") == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a round
        return super().generate(ctx)
'''

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''


def cases(path) -> list[tuple[str, int]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["kind"] == "session"
    return [(line["extra_info"]["strategy"], line["extra_info"]["batch_size"]) for line in lines[1:]]


@pytest.mark.parametrize("rounds_before_stop", [0, 2], ids=["in-its-first-round", "in-its-third-round"])
def test_ctrl_c_mid_sweep_keeps_every_completed_case_in_table_json_autosave_and_results_file(
        pytester, monkeypatch, rounds_before_stop):
    """Interrupted in its first round, a benchmark has no data (pytest-benchmark's JSON then fails);
    in a later one, some rounds and none of our figures: either way it is left out, and named."""
    pytester.makeconftest(STOPPING_CONFTEST)
    pytester.makepyfile(test_perf=SUITE)
    monkeypatch.setenv("ROUNDS_BEFORE_STOP", str(rounds_before_stop))
    result = pytester.runpytest_subprocess(*FAST, "--llmperf-rounds=3", "--llmperf-strategies=stops",
                                           "--llmperf-batch-sizes=1,2,4,8", "--llmperf-num-samples=8",
                                "--benchmark-json=bench.json", "--benchmark-autosave", "--benchmark-storage=runs")
    assert result.ret == 2  # interrupted
    result.stdout.fnmatch_lines([
        "*= llmperf results =*",
        "| 1 * | stops *",
        "| 2 * | stops *",
        "llmperf: left out of the saved run, interrupted before a round ended: "
        "test_perf.py::test_throughput[[]sdpa-nocompile-float32-stops-bs4]",
        "llmperf: results file *results.jsonl",
        "*! KeyboardInterrupt !*",
        "*= 2 passed* in *",
    ])
    assert "| 4 " not in result.stdout.str() and "| 8 " not in result.stdout.str()
    assert "ValueError" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()
    for saved in [pytester.path / "bench.json", *(pytester.path / "runs").rglob("*.json")]:
        sizes = [bench["extra_info"]["batch_size"] for bench in json.loads(saved.read_text())["benchmarks"]]
        assert sizes == [1, 2], saved
    assert cases(pytester.path / ".llmperf" / "results.jsonl") == [("stops", 1), ("stops", 2)]


def test_a_hard_kill_keeps_the_results_file_of_every_finished_case(pytester, monkeypatch):
    pytester.makeconftest(STOPPING_CONFTEST)
    pytester.makepyfile(test_perf=SUITE)
    monkeypatch.setenv("STOP_WITH", "kill")
    result = pytester.runpytest_subprocess(*FAST, "--llmperf-strategies=stops", "--llmperf-batch-sizes=1,2,4",
                                           "--llmperf-results-file=out/killed.jsonl", "--benchmark-json=bench.json")
    assert result.ret == -signal.SIGKILL
    assert not (pytester.path / "bench.json").exists()  # pytest-benchmark writes at the end, which never came
    assert cases(pytester.path / "out" / "killed.jsonl") == [("stops", 1), ("stops", 2)]


def test_the_results_file_is_rewritten_by_the_next_session_that_runs_perf_tests_and_can_be_off(run_suite, pytester):
    path = pytester.path / ".llmperf" / "results.jsonl"
    run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2").assert_outcomes(passed=2)
    assert cases(path) == [("manual", 1), ("manual", 2)]
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.runpytest("test_plain.py").assert_outcomes(passed=1)
    (pytester.path / "test_plain.py").unlink()
    assert cases(path) == [("manual", 1), ("manual", 2)]  # a session without perf tests leaves it alone
    run_suite("--llmperf-strategies=pipeline", "--llmperf-batch-sizes=1").assert_outcomes(passed=1)
    assert cases(path) == [("pipeline", 1)]
    path.unlink()
    run_suite("--llmperf-strategies=pipeline", "--llmperf-batch-sizes=1", "--llmperf-results-file=off")
    assert not path.exists()


def test_a_results_file_that_cannot_be_written_is_a_warning_and_the_tests_carry_on(run_suite, pytester):
    (pytester.path / "blocker").write_text("a file where the results file's directory should be")
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", "-W", "default",
                       "--llmperf-results-file=blocker/results.jsonl")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*llmperf: cannot write the results file *blocker/results.jsonl (*); it is off for "
                                 "this session*", "*= llmperf results =*"])
    result.stdout.no_fnmatch_line("llmperf: results file *")


SLOWER_ON_REQUEST = '''
import os
import time

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("regresses")
class Regresses(ManualStrategy):
    def generate(self, ctx):
        time.sleep(float(os.environ.get("EXTRA_SECONDS", "0")))
        return super().generate(ctx)
'''


def test_benchmark_compare_fail_reads_as_a_failing_summary_with_our_table_and_no_traceback(pytester, monkeypatch):
    pytester.makeconftest(SLOWER_ON_REQUEST)
    pytester.makepyfile(test_perf=SUITE)
    args = (*FAST, "--llmperf-strategies=regresses", "--llmperf-batch-sizes=1", "--benchmark-storage=runs")
    pytester.runpytest(*args, "--benchmark-autosave").assert_outcomes(passed=1)
    monkeypatch.setenv("EXTRA_SECONDS", "1.0")
    result = pytester.runpytest(*args, "--benchmark-compare", "--benchmark-compare-fail=min:50%")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*= llmperf results =*",
        "| 1 * | regresses *",
        "llmperf: pytest-benchmark found a performance regression (--benchmark-compare-fail): failing the run",
        "  test_throughput[[]sdpa-nocompile-float32-regresses-bs1] (0001_*) - Field 'min' has failed *",
        "*= 1 passed* in *",
    ])
    assert "Traceback" not in result.stdout.str() and "PerformanceRegression" not in result.stdout.str()
