"""The shipped perf suite: `pytest perf_tests`.

Runs on the embedded model and dataset by default (no network); point it at any model or dataset
with --llmperf-model / --llmperf-dataset. Floors are relative to batch size 1, so the suite holds
on a laptop CPU and on a GPU alike. Tests run in file order within each model configuration.
"""

import pytest


def test_throughput(llmperf, strategy, batch_size):
    """Timed sweep over strategies x batch sizes, gated on the throughput floors."""
    llmperf.benchmark(strategy, batch_size, check_outputs=False)


def test_consistency(llmperf, strategy, batch_size):
    """Batched outputs must match the batch-size-1 baseline (reuses the sweep's outputs)."""
    llmperf.generate(strategy, batch_size)


def test_best_batch_size_beats_bs1(llmperf, strategy):
    """Batching must pay off: the fastest batch size above 1 is not slower than bs=1 of the same
    strategy. Judged on the rounds, so a busy machine's noise is a warning, not a failure."""
    results = llmperf.results(strategy)
    bs1 = [r for r in results if r.batch_size == 1]
    batched = [r for r in results if r.batch_size > 1]
    if not bs1 or not batched:
        pytest.skip(f"needs timed runs of {strategy} at bs=1 and at a larger batch size in this session "
                    "(nothing is timed with --benchmark-disable, or under pytest-xdist where workers share a device)")
    best = max(batched, key=lambda r: r.samples_per_s)
    llmperf.check_speedup(best, bs1[0], floor=1.0)
