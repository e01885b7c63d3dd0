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
