"""Built-in strategies beyond the default four."""

from conftest import SUITE


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
