"""Per-request latency: TTFT, ITL, TPOT, e2e and queue time with one definition for every strategy
(``pytest_llmperf/measure/latency.py``), the ceilings that fail a test, and what a user sees of them."""

import json

import numpy
import pytest

from conftest import SUITE, latency_rounds
from pytest_llmperf.measure import latency
from pytest_llmperf.measure.latency import RequestLatency, round_latency
from pytest_llmperf.output import journal
from pytest_llmperf.strategies.latency_reporter import LatencyError, LatencyReporter

BUILTIN_STRATEGIES = ("manual", "pipeline", "keydataset", "continuous", "continuous_serving")
DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "queue_ms")


def saved(pytester) -> list[dict]:
    return [bench["extra_info"] for bench in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]]


# -- the definitions, on synthetic times --------------------------------------------------------------

def reported(round_start, requests) -> LatencyReporter:
    """A reporter that recorded ``requests``: (start, [token times]) per request, in seconds."""
    reporter = LatencyReporter(len(requests))
    reporter.begin(round_start)
    for index, (start, tokens) in enumerate(requests):
        reporter.request(index, start, tokens)
    return reporter


def test_each_request_is_measured_from_the_round_start_and_its_own_start():
    times = reported(10.0, [(10.0, [10.5, 10.6, 10.8]), (11.0, [11.2])]).end()
    first, second = round_latency(times, [3, 1], "planted")
    assert first.start == 0.0 and first.tokens == pytest.approx((0.5, 0.6, 0.8))
    assert (first.queue_s, first.ttft_s, first.e2e_s) == (0.0, 0.5, pytest.approx(0.8))
    assert first.itl_s == pytest.approx([0.1, 0.2])
    assert first.tpot_s == pytest.approx(0.15)  # (service 0.8 - TTFT 0.5) / (3 - 1)
    assert (second.queue_s, second.ttft_s, second.e2e_s, second.tpot_s) == pytest.approx((1.0, 0.2, 1.2, None))


def test_a_padded_row_keeps_only_the_times_of_the_tokens_it_generated():
    """A static batch steps every row until the longest is done; a row that hit EOS early gets pad
    tokens whose times are not its own."""
    times = reported(0.0, [(0.0, [1.0, 2.0, 3.0, 4.0]), (0.0, [1.0, 2.0, 3.0, 4.0])]).end()
    short, long = round_latency(times, [2, 4], "manual")
    assert short.tokens == (1.0, 2.0) and short.e2e_s == 2.0
    assert long.e2e_s == 4.0


def test_token_times_that_do_not_cover_the_outputs_are_a_one_line_error():
    times = reported(0.0, [(0.0, [1.0]), (0.0, [1.0, 2.0])]).end()
    with pytest.raises(LatencyError, match=r"reported 1 token time\(s\) for request 0, which generated 2 token"):
        round_latency(times, [2, 2], "mine")
    going_back = reported(0.0, [(0.0, [2.0, 1.0])]).end()
    with pytest.raises(LatencyError, match="go back in time"):
        round_latency(going_back, [2], "mine")


def test_a_strategy_that_reports_nothing_has_no_latency_and_says_so():
    reporter = LatencyReporter(2)
    reporter.begin(0.0)
    assert round_latency(reporter.end(), [3, 3], "silent") is None
    info = latency.summary([None, None], latency.IN_MEASURED_ROUNDS)
    assert info["latency_source"] == latency.NOT_REPORTED
    assert all(info[key] is None for key in latency.KEYS if key != "latency_source")


def test_a_disabled_reporter_records_nothing_and_gives_no_streamer():
    reporter = LatencyReporter(1)
    reporter.start([0])
    reporter.token([0])
    assert not reporter.enabled and reporter.streamer() is None and reporter.end() is None


def test_the_summary_pools_every_request_of_every_round():
    rounds = [[RequestLatency(0.0, (0.010, 0.012, 0.015)), RequestLatency(0.015, (0.030, 0.031))],
              [RequestLatency(0.0, (0.020, 0.021)), RequestLatency(0.021, (0.040,))]]
    info = latency.summary(rounds, latency.IN_MEASURED_ROUNDS)
    assert (info["latency_rounds"], info["latency_requests"]) == (2, 4)
    ttft = [10, 15, 20, 19]
    assert info["ttft_ms_mean"] == pytest.approx(numpy.mean(ttft))
    for q in latency.PERCENTILES:
        assert info[f"ttft_ms_p{q}"] == pytest.approx(numpy.percentile(ttft, q))
    assert info["itl_ms_p50"] == pytest.approx(numpy.percentile([2, 3, 1, 1], 50))
    assert info["e2e_ms_p99"] == pytest.approx(numpy.percentile([15, 31, 21, 40], 99))
    assert info["queue_ms_mean"] == pytest.approx(numpy.mean([0, 15, 0, 21]))
    # Per round: prefill = how long some request waited for its first token, decode = between a
    # request's first and last token (unions of intervals), aggregate decode tokens/s over the latter.
    # Round 1: prefill [0, 10] + [15, 30] = 25 ms; decode [10, 15] + [30, 31] = 6 ms, 3 tokens.
    # Round 2: prefill [0, 20] + [21, 40] = 39 ms; decode [20, 21] = 1 ms (the 1-token request has none), 1 token.
    assert info["prefill_s"] == pytest.approx(numpy.median([0.025, 0.039]))
    assert info["decode_s"] == pytest.approx(numpy.median([0.006, 0.001]))
    assert info["decode_tokens_per_s"] == pytest.approx(numpy.median([3 / 0.006, 1 / 0.001]))


# -- what a user sees ---------------------------------------------------------------------------------

PLANTED_CONFTEST = '''
import time

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.base import Strategy

FIRST_TOKEN_S, GAP_S, TOKENS = 0.050, 0.020, 4


@register_strategy("planted")
class Planted(Strategy):
    """Static batches on a known schedule: a batch starts, its first token comes FIRST_TOKEN_S later,
    then one every GAP_S, TOKENS in all, for every request of the batch."""

    def generate(self, ctx):
        """Each moment is reported as planned, on the perf_counter clock, once it has passed: a busy
        machine's late wake-ups (a 20 ms sleep can take 30) do not move what the definitions see."""
        token = next(i for i in range(10, 100) if i not in ctx.target.eos_token_ids)
        count = len(ctx.workload.texts)
        at = time.perf_counter()
        for first in range(0, count, ctx.batch_size):
            batch = range(first, min(first + ctx.batch_size, count))
            ctx.latency.start(batch, at=at)
            for gap in [FIRST_TOKEN_S] + [GAP_S] * (TOKENS - 1):
                at += gap
                time.sleep(max(0.0, at - time.perf_counter()))
                ctx.latency.token(batch, at=at)
        return ctx.finish([[token] * TOKENS] * count)
'''

UNCHECKED_SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size, check_outputs=False)
'''


def test_a_planted_schedule_comes_out_as_planted(run_suite, pytester):
    """Two batches of two: the first token 50 ms after a batch starts, then one every 20 ms, so a batch
    takes 110 ms. TTFT is 50 ms and ITL and TPOT 20 ms for everyone; the second batch queues for
    the first's 110 ms and ends at 220 ms."""
    result = run_suite("--llmperf-strategies=planted", "--llmperf-batch-sizes=2", "--llmperf-num-samples=4",
                       "--llmperf-rounds=3", "--llmperf-latency=rounds", "--benchmark-json=bench.json",
                       suite=UNCHECKED_SUITE, conftest=PLANTED_CONFTEST)
    result.assert_outcomes(passed=1)
    (info,) = saved(pytester)
    assert info["latency_source"] == "measured rounds"
    assert (info["latency_rounds"], info["latency_requests"]) == (3, 12)
    within = dict(rel=0.05)
    for stat in ("mean", "p50", "p95"):
        assert info[f"ttft_ms_{stat}"] == pytest.approx(50, **within)
        assert info[f"itl_ms_{stat}"] == pytest.approx(20, **within)
        assert info[f"tpot_ms_{stat}"] == pytest.approx(20, **within)
    assert info["e2e_ms_mean"] == pytest.approx((110 + 220) / 2, **within)
    assert info["e2e_ms_p99"] == pytest.approx(220, **within)
    assert info["queue_ms_mean"] == pytest.approx(110 / 2, **within)
    assert info["prefill_s"] == pytest.approx(2 * 0.050, **within)
    assert info["decode_s"] == pytest.approx(2 * 0.060, **within)
    assert info["decode_tokens_per_s"] == pytest.approx(4 * 3 / 0.120, **within)
    print("planted schedule:", {key: round(info[key], 2) for key in (
        "ttft_ms_p50", "ttft_ms_p95", "itl_ms_p50", "itl_ms_p95", "tpot_ms_mean", "e2e_ms_mean", "e2e_ms_p99",
        "queue_ms_mean")})


def test_every_builtin_strategy_reports_ordered_positive_percentiles(run_suite, pytester):
    """Latency in the measured rounds on every device: the default (auto) records it on CUDA in extra
    rounds, which pytest-benchmark does not time and which run slower than the measured ones (each
    token is copied to the host), so there a request's e2e has no timed round to lie inside. Extra
    rounds are tested in test_latency_can_come_from_extra_rounds_or_be_switched_off."""
    result = run_suite(f"--llmperf-strategies={','.join(BUILTIN_STRATEGIES)}", "--llmperf-batch-sizes=1,4",
                       "--llmperf-rounds=2", "--llmperf-latency=rounds", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=2 * len(BUILTIN_STRATEGIES))
    infos = saved(pytester)
    assert {info["strategy"] for info in infos} == set(BUILTIN_STRATEGIES)
    for info in infos:
        case = (info["strategy"], info["batch_size"])
        assert info["latency_requests"] == 2 * 4, case  # every request of both rounds
        for name in DISTRIBUTIONS:
            values = [info[f"{name}_p{q}"] for q in latency.PERCENTILES]
            assert values == sorted(values), (case, name, values)
            assert values[0] >= 0 if name == "queue_ms" else values[0] > 0, (case, name, values)
            assert values[0] <= info[f"{name}_mean"] * 10, (case, name)
        # every request finishes inside its round, and after its first token
        assert info["e2e_ms_p99"] <= 1e3 * max(info["round_s"]) + 1, case
        assert info["ttft_ms_p50"] <= info["e2e_ms_p50"], case
        for metric in ("ttft_ms_p95", "itl_ms_p95", "e2e_ms_p95"):
            assert len(info["metric_samples"][metric]) == 2, (case, metric)  # one per measured round
    result.stdout.fnmatch_lines([
        "latency and memory (latency: measured rounds, percentiles over every request; memory: *",
        "| batch size | strategy * | TTFT p50 *| TTFT p95 *| ITL p50 *| ITL p95 *| e2e p95 * | peak memory *| above the "
        "model *| roofline *|",
        "| 1 * | continuous * |* ms*|* ms*|* ms*|* ms*|* ms*|* MB*|* MB*|*%*|",
    ])


def test_latency_can_come_from_extra_rounds_or_be_switched_off(run_suite, pytester):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=2", "--llmperf-rounds=2",
                       "--llmperf-latency=extra", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    (info,) = saved(pytester)
    assert (info["latency_source"], info["latency_rounds"], info["latency_requests"]) == ("extra rounds", 2, 8)
    assert len(info["round_s"]) == 2  # the extra rounds are not timed rounds
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=2", "--llmperf-latency=off",
                       "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    (info,) = saved(pytester)
    assert info["latency_source"] == "off" and info["ttft_ms_p95"] is None and info["latency_rounds"] is None


SILENT_CONFTEST = '''
from dataclasses import replace

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("silent")
class Silent(ManualStrategy):
    """Reports no times: a user's strategy that knows nothing of latency (the manual strategy,
    handed a context whose reporter records nothing)."""

    def generate(self, ctx):
        return super().generate(replace(ctx, latency=None))


@register_strategy("halfway")
class Halfway(Silent):
    """Reports a start and one token per request, whatever it generated."""

    def generate(self, ctx):
        generations = super().generate(ctx)
        ctx.latency.start(range(len(ctx.workload.texts)))
        ctx.latency.token(range(len(ctx.workload.texts)))
        return generations
'''


def test_a_strategy_that_reports_no_times_runs_and_its_ceiling_is_a_warning(run_suite, pytester):
    result = run_suite("--llmperf-strategies=silent", "--llmperf-batch-sizes=2", "--llmperf-max-ttft-ms=1",
                       "--benchmark-json=bench.json", conftest=SILENT_CONFTEST, suite=UNCHECKED_SUITE)
    result.assert_outcomes(passed=1)
    (info,) = saved(pytester)
    assert info["latency_source"] == "not reported by the strategy" and info["ttft_ms_p95"] is None
    result.stdout.fnmatch_lines(["*llmperf: silent bs=2 *: TTFT p95 ms: not checked (not reported by the strategy)*",
                                 "| 2 * | silent * | - * | - * | - * | - * | - * | * MB *"])


def test_times_that_do_not_fit_the_outputs_fail_the_case_in_one_line(run_suite):
    result = run_suite("--llmperf-strategies=halfway", "--llmperf-batch-sizes=2", conftest=SILENT_CONFTEST,
                       suite=UNCHECKED_SUITE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*strategy 'halfway' reported 1 token time(s) for request 0, which generated * "
                                 "token(s): report a start and a time for every token (RunContext.latency), "
                                 "or none at all"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("ceiling, label", [("ttft", "TTFT"), ("itl", "ITL"), ("e2e", "e2e")])
def test_a_latency_ceiling_fails_at_an_impossible_value_and_passes_at_a_generous_one(run_suite, ceiling, label,
                                                                                     judged_as_measured):
    common = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    tight = run_suite(*common, f"--llmperf-max-{ceiling}-ms=0.001")
    tight.assert_outcomes(failed=1)
    # where the default (auto) records latency: the measured rounds on CPU, one extra round on CUDA
    source = "extra rounds" if latency_rounds(1) else "measured rounds"
    tight.stdout.fnmatch_lines(["llmperf gate failed: manual bs=1 *",
                                f"  {label} p95 ms: * > ceiling 0.001 (4 requests over 1 {source})"])
    run_suite(*common, f"--llmperf-max-{ceiling}-ms=100000").assert_outcomes(passed=1)


def test_the_ceiling_percentile_is_settable_and_the_marker_sets_ceilings_per_batch_size(run_suite, judged_as_measured):
    suite = '''
import pytest

@pytest.mark.llmperf(max_e2e_ms={2: 0.001}, latency_percentile="p50")
def test_bs2_answers_at_once(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", suite=suite)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  e2e p50 ms: * > ceiling 0.001 *", "FAILED *manual-bs2*"])


@pytest.mark.parametrize("flag, message", [
    ("--llmperf-max-ttft-ms=soon", "invalid value 'soon'; expected a number"),
    ("--llmperf-latency-percentile=p42", "invalid value 'p42'; valid values: p50, p90, p95, p99"),
    ("--llmperf-latency=sometimes", "invalid value 'sometimes'; valid values: auto, rounds, extra, off"),
])
def test_bad_latency_options_are_usage_errors(pytester, flag, message):
    result = pytester.runpytest(flag)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*{flag.split('=')[0]}: {message}*"])


def test_every_latency_key_is_saved_timed_or_not(run_suite, pytester):
    run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--benchmark-json=bench.json",
              suite=SUITE).assert_outcomes(passed=1)
    (timed,) = saved(pytester)
    assert set(latency.KEYS) <= set(timed) and timed["ttft_ms_p95"] > 0
    run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--benchmark-disable",
              suite=SUITE).assert_outcomes(passed=1)
    _, (case,) = journal.read(pytester.path / ".llmperf" / "results.jsonl")
    assert {key: case["extra_info"][key] for key in latency.KEYS} == dict.fromkeys(latency.KEYS)
