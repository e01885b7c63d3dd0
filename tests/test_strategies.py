"""Built-in strategies beyond the default four."""

import json

from conftest import SUITE
from pytest_llmperf import read_results


def test_continuous_serving_reproduces_bs1_and_shuts_its_manager_down(run_suite):
    """The serving-style continuous batching gives the bs=1 token ids exactly, and after its
    tests no manager is left cached on the model and no generation thread is running."""
    suite = SUITE + '''
import threading


def test_after_the_sweep(llmperf):  # runs after test_throughput: same model configuration, later in the file
    assert not hasattr(llmperf.target.model, "_cached_continuous_batching_manager")
    assert [t.name for t in threading.enumerate() if "generation_loop" in t.name] == []
'''
    result = run_suite("--llmperf-strategies=manual,continuous_serving", "--llmperf-batch-sizes=1,4",
                       "--llmperf-min-exact-match=1", suite=suite)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["| 1 * | continuous_serving | 4/4 * | 1.000 *| 1.00x *",
                                 "| 4 * | continuous_serving | 4/4 * | 1.000 *"])


BUCKETED_SUITE = SUITE + '''

def test_padding_is_what_the_batches_prompt_lengths_give(llmperf):  # after test_throughput: same configuration
    lengths = [len(ids) for ids in llmperf.workload.input_ids]

    def padded(batches):  # padded positions over all positions of left-padded batches
        total = sum(len(batch) * max(batch) for batch in batches)
        return (total - sum(map(sum, batches))) / total

    in_workload_order = [lengths[i:i + 4] for i in range(0, len(lengths), 4)]
    longest_first = sorted(lengths, reverse=True)
    assert longest_first != lengths  # so bucketing reorders these prompts
    by_case = {(r.strategy, r.batch_size): r.padding_fraction for r in llmperf.results()}
    assert by_case == {("manual", 4): padded(in_workload_order),
                       ("bucketed", 4): padded([longest_first[i:i + 4] for i in range(0, len(lengths), 4)])}
    assert 0 < by_case["bucketed", 4] < by_case["manual", 4]
'''


def test_bucketed_reproduces_bs1_in_workload_order_and_pads_less_than_manual(run_suite, pytester):
    """``bucketed`` sorts the prompts by length into batches: less padding than ``manual`` at the same
    batch size, the bs=1 token ids exactly, each sample back in its workload place; the table shows
    both paddings side by side."""
    result = run_suite("--llmperf-strategies=manual,bucketed", "--llmperf-batch-sizes=4", "--llmperf-max-new-tokens=4",
                       "--llmperf-min-exact-match=1", "--benchmark-json=bench.json", "--llmperf-num-samples=8",
                       suite=BUCKETED_SUITE)
    result.assert_outcomes(passed=3)  # both equal to bs=1 (computed untimed, one prompt at a time)
    _, cases = read_results(pytester.path / ".llmperf" / "results.jsonl")
    outputs = {case["extra_info"]["strategy"]: case["output_ids"] for case in cases}
    assert len({tuple(ids) for ids in outputs["manual"]}) > 1  # a misplaced sample would show
    assert outputs["bucketed"] == outputs["manual"]
    infos = {bench["extra_info"]["strategy"]: bench["extra_info"]
             for bench in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]}
    assert infos["bucketed"]["latency_requests"] == 8  # each request's times, under its workload index
    assert 0 < infos["bucketed"]["padding_fraction"] < infos["manual"]["padding_fraction"]
    result.stdout.fnmatch_lines([
        "| batch size | strategy | length match | * | projected samples per day | prefill padding |",
        f"| 4 * | bucketed | 8/8 * | 1.000 *| {infos['bucketed']['padding_fraction']:.1%} *|",
        f"| 4 * | manual * | 8/8 * | 1.000 *| {infos['manual']['padding_fraction']:.1%} *|",
    ])
