"""The end-of-session table, in the tutorial's terms, one per configuration."""

from fnmatch import fnmatch

from conftest import SUITE, busy_warnings, resolved_auto_device


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
        f"llmperf: builtin [[]sdpa-nocompile-float32] on {device} (float32, attn sdpa) | dataset builtin:test, 4 samples,"
        " max_new_tokens 8 | total time = median of 1 measured round(s)",
        "| batch size | strategy * | length match | avg similarity to bs=1 | avg similarity to reference |"
        " total time | samples/s | speedup vs bs=1 | projected samples per day | prefill padding |",
        "| 1 * | continuous | 4/4 * | 1.000 *| 1.00x *| n/a *|",  # continuous batching pads nothing
        "| 2 * | continuous | 4/4 *| n/a *|",
        "| 1 * | keydataset | 4/4 *| 0.0% *|",
        "| 2 * | keydataset | 4/4 *| *.*% *|",
        "| 1 * | manual * | 4/4 *| 0.0% *|",
        "| 2 * | manual * | 4/4 *| *.*% *|",
        "| 1 * | pipeline * | 4/4 *| 0.0% *|",
        "| 2 * | pipeline * | 4/4 *| *.*% *|",
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
                       "--llmperf-num-samples=8", suite=suite)
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


def test_figures_from_unsteady_rounds_are_marked_and_named_wherever_the_tables_go(run_suite, pytester, monkeypatch):
    """--llmperf-max-cv 1e-9 (the range starts above 0): any two rounds that differ at all are unsteady, so every
    timed figure is marked."""
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", "--llmperf-rounds=2",
                       "--llmperf-max-cv=1e-9", "--llmperf-report=report")
    result.assert_outcomes(passed=2, warnings=2 + busy_warnings(result))  # each case's own "not steady" warning
    note = ("~ unsteady rounds, figures uncertain (a speedup is marked when either of its cases is): manual bs=1 "
            "(CV *); manual bs=2 (CV *); raise --llmperf-rounds or --llmperf-warmup, or quieten the machine")
    result.stdout.fnmatch_lines([
        "| 1 * | manual * | 4/4 * | ~* s * | ~* | 1.00x * | ~* |",
        "| 2 * | manual * | 4/4 * | ~* s * | ~* | ~*x * | ~* |",
        note])
    for markdown in (summary.read_text(), (pytester.path / "report" / "report.md").read_text()):
        rows = [line for line in markdown.splitlines() if line.startswith("| 2 ")]
        assert rows[0].count("| ~") == 4, rows  # total time, samples/s, speedup, projection
        assert any(fnmatch(line, note + "*") for line in markdown.splitlines())


def test_steady_or_single_rounds_carry_no_mark(run_suite):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", "--llmperf-rounds=2",
                       "--llmperf-max-cv=off")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["| 2 * | manual * | 4/4 * | * s * | * | *x * | * |"])
    result.stdout.no_fnmatch_line("*| ~*")
    result.stdout.no_fnmatch_line("*unsteady rounds*")
