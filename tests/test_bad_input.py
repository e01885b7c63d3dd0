"""What bad or unusual input gets: a skip with its reason or a one-line error, never a number that was
not measured. (Issue 9 collects the rest of this table.)"""

import json

WRONG_COUNT_CONFTEST = '''
from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy

CALLS = []


@register_strategy("dropsone")
class DropsOne(ManualStrategy):
    """A user's strategy with a bug: it loses the last prompt's output."""

    def generate(self, ctx):
        CALLS.append(1)
        generations = super().generate(ctx)
        return ctx.finish([sample.token_ids for sample in generations.samples[:-1]])
'''


def test_a_batch_size_larger_than_the_workload_is_skipped_never_reported(run_suite, pytester):
    result = run_suite("-rs", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1,1000",
                       "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*batch size 1000 is larger than the workload (8 prompts): it would run as one "
                                 "batch of 8; raise --llmperf-num-samples or drop this batch size"])
    assert "| 1000 " not in result.stdout.str()  # no table row for what did not run
    sizes = [b["extra_info"]["batch_size"] for b in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]]
    assert sizes == [1]


def test_a_strategy_that_returns_the_wrong_count_fails_in_one_line_after_its_first_round(run_suite):
    suite = '''
import conftest

def test_throughput(llmperf):
    try:
        llmperf.benchmark("dropsone", 2)
    finally:
        print("CALLS", len(conftest.CALLS))
'''
    result = run_suite("-s", "--llmperf-warmup=1", "--llmperf-rounds=3", suite=suite, conftest=WRONG_COUNT_CONFTEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CALLS 1", "*strategy 'dropsone' returned 7 outputs for 8 prompts (batch size 2)"])
    assert "Traceback" not in result.stdout.str() and "RuntimeError" not in result.stdout.str()


def test_help_states_each_default_once(pytester):
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert "dataset column holding reference outputs [default: the built-in set's own, else none; ini:" in text
    assert "[default: torch's own, one per core; ini: llmperf_threads]" in text
