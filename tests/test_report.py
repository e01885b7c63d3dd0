"""The end-of-session table, in the tutorial's terms, one per configuration."""

from conftest import SUITE, resolved_auto_device


def test_table_lists_every_strategy_and_batch_size(run_suite):
    suite = SUITE + '''
def test_consistency(llmperf, strategy, batch_size):
    llmperf.generate(strategy, batch_size)
'''
    result = run_suite("--llmperf-batch-sizes=1,2", "--llmperf-attn=sdpa,eager", suite=suite)
    result.assert_outcomes(passed=32)
    device = resolved_auto_device()
    result.stdout.fnmatch_lines([
        "*= llmperf results =*",
        f"llmperf: builtin [[]sdpa-nocompile-float32] on {device} (float32, attn sdpa) | dataset builtin:test, 8 samples,"
        " max_new_tokens 16 | total time = median of 1 measured round(s)",
        "| batch size | strategy * | length match | avg similarity to bs=1 | avg similarity to reference |"
        " total time | samples/s | speedup vs bs=1 | projected samples per day |",
        "| 1 * | continuous | 8/8 * | 1.000 *| 1.00x *",
        "| 2 * | continuous | 8/8 *",
        "| 1 * | keydataset | 8/8 *",
        "| 1 * | manual * | 8/8 *",
        "| 1 * | pipeline * | 8/8 *",
        "| 2 * | pipeline * | 8/8 *",
        f"llmperf: builtin [[]eager-nocompile-float32] on {device} (float32, attn eager)*",
    ])
    result.stdout.no_fnmatch_line("*Benchmark fixture was not used*")


def test_two_tests_timing_the_same_case_each_keep_their_own_row_and_speedup(run_suite, pytester):
    """The README's example times pipeline at bs=1 in two tests. Each row shows the speedup its own
    test computed, which is the ``speedup_vs_bs1`` in the JSON: one case never shows two speedups."""
    import json

    suite = '''
import pytest

def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)

@pytest.mark.llmperf(batch_sizes=[1, 8], strategies=["pipeline"])
def test_pipeline_batching_pays_off(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-strategies=pipeline", "--llmperf-batch-sizes=1,4", "--benchmark-json=bench.json",
                       suite=suite)
    result.assert_outcomes(passed=4)
    saved = json.loads((pytester.path / "bench.json").read_text())["benchmarks"]
    speedups = {(b["name"].split("[")[0], b["extra_info"]["batch_size"]): b["extra_info"]["speedup_vs_bs1"]
                for b in saved}
    result.stdout.fnmatch_lines([
        "| test * | batch size | strategy *",
        "| test_pipeline_batching_pays_off | 1 * | pipeline *| 1.00x *",
        "| test_throughput * | 1 * | pipeline *| 1.00x *",
        "| test_throughput * | 4 * | pipeline *",
        "| test_pipeline_batching_pays_off | 8 * | pipeline *",
    ])
    lines = result.stdout.lines
    results_table = lines[lines.index(next(line for line in lines if "= llmperf results =" in line)):]
    results_table = results_table[:next(i for i, line in enumerate(results_table) if line.startswith("latency and memory"))]
    rows = [line for line in results_table if line.startswith("| test_")]
    shown = {(cells[0], int(cells[1])): cells[8] for cells in
             ([cell.strip() for cell in line.strip("|").split("|")] for line in rows)}
    assert len(shown) == 4
    for (test, size), cell in shown.items():
        expected = 1.0 if size == 1 else speedups[(test, size)]
        assert cell == f"{expected:.2f}x", (test, size, cell, expected)
