"""Measurement: warmup stays out of the measured rounds, each round's tokens pair with its time,
--benchmark-disable runs the workload once, and outputs-only checks reuse a benchmark's outputs."""

import pytest

from conftest import latency_rounds
from pytest_llmperf.strategies.base import generated_part

# Call n (1-based) keeps at most n tokens per sample, so each call generates a different, known
# number of tokens, and the tokens recorded for a round reveal which call produced it.
COUNTING_CONFTEST = '''
from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.base import Generations
from pytest_llmperf.strategies.manual import ManualStrategy

CALLS = []


@register_strategy("counting")
class Counting(ManualStrategy):
    def setup(self, ctx):
        CALLS.clear()

    def generate(self, ctx):
        CALLS.append(ctx.batch_size)
        full = super().generate(ctx)
        return ctx.finish([sample.token_ids[:len(CALLS)] for sample in full.samples])
'''

ROUNDS_SUITE = '''
import conftest


def tokens_of_call(llmperf, n):
    lengths = [len(s.token_ids) for s in llmperf.generate("manual", 1).generations.samples]
    return sum(min(length, n) for length in lengths)


def test_rounds(llmperf):
    result = llmperf.benchmark("counting", 2, check_outputs=False)
    calls = len(conftest.CALLS)
    timing = result.timing
    assert timing.warmup == 2 and len(timing.round_s) == 3
    # the measured rounds are calls 3, 4 and 5, whatever pytest-benchmark does after them
    assert timing.tokens_per_round == tuple(tokens_of_call(llmperf, n) for n in (3, 4, 5)), calls
    assert result.tokens_per_s == sorted(timing.tokens_per_round)[1] / sorted(timing.round_s)[1]
    print("CALLS", calls)
'''


@pytest.mark.parametrize("extra", [(), ("--benchmark-cprofile=tottime",)])
def test_warmup_is_excluded_and_tokens_pair_with_their_round(run_suite, extra):
    result = run_suite("--llmperf-warmup=2", "--llmperf-rounds=3", "-s", *extra, suite=ROUNDS_SUITE,
                       conftest=COUNTING_CONFTEST)
    result.assert_outcomes(passed=1)
    # 2 warmup + 3 measured calls, pytest-benchmark's profiling call, then the latency rounds (CUDA)
    calls = 2 + 3 + (1 if extra else 0) + latency_rounds(3)
    result.stdout.fnmatch_lines([f"*CALLS {calls}"])


def test_compilation_during_a_measured_round_is_counted_and_reported(run_suite):
    conftest = COUNTING_CONFTEST + '''

@register_strategy("compiles-late")
class CompilesLate(Counting):
    """Compiles a new graph in its fourth call: the second measured round after two warmup rounds."""

    def generate(self, ctx):
        if len(CALLS) == 3:
            import torch

            torch.compile(lambda x: x * 3 + 1, backend="eager")(torch.ones(2))
        return super().generate(ctx)
'''
    suite = '''
def test_late(llmperf):
    result = llmperf.benchmark("compiles-late", 2, check_outputs=False)
    assert result.timing.compilations == (0, 1, 0)
    assert result.extra_info()["compilations_in_measured_rounds"] == 1

def test_warm(llmperf):
    assert llmperf.benchmark("counting", 2, check_outputs=False).timing.compilations == (0, 0, 0)
'''
    result = run_suite("--llmperf-warmup=2", "--llmperf-rounds=3", "-W", "default", suite=suite, conftest=conftest)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*llmperf: torch.compile compiled 1 graph(s) during the measured rounds of "
                                 "compiles-late bs=2 * raise --llmperf-warmup"])


def test_compile_modes_warm_up_at_least_three_rounds():
    from pytest_llmperf.measure.timing import COMPILED_MIN_WARMUP, warmup_rounds

    assert COMPILED_MIN_WARMUP == 3
    assert warmup_rounds(1, compiled=True) == 3 and warmup_rounds(5, compiled=True) == 5
    assert warmup_rounds(0, compiled=False) == 0


def test_benchmark_disable_runs_the_workload_once(run_suite):
    suite = '''
import conftest

def test_once(llmperf):
    result = llmperf.benchmark("counting", 2, check_outputs=False)
    assert conftest.CALLS == [2] and result.timing is None and result.tokens_per_s is None
'''
    run_suite("--benchmark-disable", "--llmperf-warmup=2", "--llmperf-rounds=3", suite=suite,
              conftest=COUNTING_CONFTEST).assert_outcomes(passed=1)


def test_generate_reuses_the_outputs_of_an_earlier_benchmark(run_suite):
    suite = '''
import conftest

def test_benchmarked(llmperf):
    llmperf.benchmark("counting", 2, check_outputs=False)

def test_outputs_only(llmperf):
    before = len(conftest.CALLS)
    result = llmperf.generate("counting", 2)
    assert len(conftest.CALLS) == before == {calls} and result.timing is not None
'''.format(calls=1 + latency_rounds(1))  # the one measured round, and the latency round on CUDA
    # counting truncates outputs on purpose, so the drift gates are switched off here
    run_suite("--llmperf-min-exact-match=off", "--llmperf-min-similarity=off", suite=suite,
              conftest=COUNTING_CONFTEST).assert_outcomes(passed=2)


def test_generated_part_strips_left_padding_and_prompt():
    pad = 0
    assert generated_part([0, 0, 5, 6, 7, 8, 2, 0], [5, 6], pad) == [7, 8, 2, 0]
    assert generated_part([5, 6, 7], [5, 6], pad) == [7]
    assert generated_part([0, 0, 0, 9], [0, 9], pad) == []  # a prompt that itself starts with the pad id
    with pytest.raises(RuntimeError, match="could not locate the prompt"):
        generated_part([0, 4, 5, 6], [5, 6], pad)


def test_finish_cuts_after_the_first_eos_and_counts_it():
    from pytest_llmperf.model.loading import load
    from pytest_llmperf.model.workload import Rows, format_workload
    from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
    from pytest_llmperf.strategies.base import RunContext

    target = load(ModelSpec("builtin", "cpu", "float32", "sdpa", "none"))
    spec = WorkloadSpec("builtin", "test", "sequence", None, 2, 8)
    workload = format_workload(spec, Rows(("a soup", "a tea"), None, None), target.tokenizer)
    ctx = RunContext(target, workload, 2, None)
    eos, pad = target.tokenizer.eos_token_id, target.tokenizer.pad_token_id
    word = target.tokenizer("soup", add_special_tokens=False)["input_ids"]
    generations = ctx.finish([[*word, eos, pad, pad], [*word, *word]])
    assert [s.token_ids for s in generations.samples] == [(*word, eos), (*word, *word)]
    assert generations.generated_tokens == 3 * len(word) + 1
    assert [s.text.strip() for s in generations.samples] == ["soup", "soupsoup"]
