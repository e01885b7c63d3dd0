"""Peak memory per case: during its measured rounds only, and the part above the loaded model; a
ceiling (--llmperf-max-memory-mb, or the max_memory_mb marker keyword) that fails the test."""

import json

import pytest

from conftest import FAST, SUITE, resolved_auto_device

MEMORY_KEYS = ("peak_memory_mb", "peak_memory_above_model_mb", "peak_memory_reserved_mb", "memory_measure")


def on_cuda() -> bool:
    """Whether the runs here (``--llmperf-device auto``) measure on a GPU: memory is then torch's
    allocated peak on it, and the table adds what its allocator reserved."""
    return resolved_auto_device().startswith("cuda")


def memory_measure() -> str:
    return ("cuda max_memory_allocated, reset per round" if on_cuda()
            else "rss high-water mark (VmHWM), reset per round")


def saved(pytester) -> dict:
    return {bench["extra_info"]["batch_size"]: bench["extra_info"]
            for bench in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]}


def test_peak_memory_grows_with_batch_size_and_is_saved_and_tabled(run_suite, pytester):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,16", "--llmperf-num-samples=16",
                       "--llmperf-rounds=2", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=2)
    info = saved(pytester)
    for size in (1, 16):
        assert set(MEMORY_KEYS) <= set(info[size])
        assert info[size]["memory_measure"] == memory_measure()
        assert info[size]["peak_memory_mb"] > info[size]["peak_memory_above_model_mb"] >= 0
        assert len(info[size]["metric_samples"]["peak_memory_mb"]) == 2  # one per measured round
    assert info[16]["peak_memory_above_model_mb"] > info[1]["peak_memory_above_model_mb"]
    # on CUDA also the allocator's reserved peak, and energy where NVML measured it (telemetry's own tests)
    columns = ("peak memory", "above the model", *(["reserved (CUDA)"] if on_cuda() else []),
               *(["energy/token"] if any(info[size].get("energy_per_token_j") is not None for size in info) else []),
               "roofline")
    result.stdout.fnmatch_lines([
        f"latency and memory (latency: *; memory: {memory_measure()}; MB = 2**20 bytes*",
        f"| batch size | strategy | TTFT p50 * | {' | '.join(columns)} |",
        "| 1 * | manual * | * MB * | * MB * | *% * |",
        "| 16 * | manual * | * MB * | * MB * | *% * |",
    ])


def test_the_memory_ceiling_fails_at_an_impossible_value_and_passes_at_a_generous_one(run_suite):
    tight = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-max-memory-mb=1")
    tight.assert_outcomes(failed=1)
    tight.stdout.fnmatch_lines(["llmperf gate failed: manual bs=1 *",
                                f"  peak memory MB: * > ceiling 1 ({memory_measure()})"])
    run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1",
              "--llmperf-max-memory-mb=1000000").assert_outcomes(passed=1)


def test_the_memory_ceiling_per_test_through_the_marker(run_suite):
    suite = SUITE + '''
import pytest

@pytest.mark.llmperf(max_memory_mb=1)
def test_fits_in_one_mb(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", suite=suite)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_fits_in_one_mb*"])


def test_the_cpu_instrument_sees_a_rounds_own_peak_not_the_processs_lifetime_maximum():
    import torch

    from pytest_llmperf.measure.instruments import MiB, PeakMemory, resident_bytes

    held = torch.ones(96 * MiB // 4)  # a large earlier peak that is freed before the case
    del held
    memory = PeakMemory("cpu", resident_bytes("cpu"))
    readings = []
    for size_mb in (64, 8):
        memory.before_round()
        block = torch.ones(size_mb * MiB // 4)  # what the round allocates
        block += 1
        del block
        readings.append(memory.after_round())
    first, second = (reading.peak_bytes - memory.model_bytes for reading in readings)
    assert 60 * MiB < first < 96 * MiB  # the round's 64 MB, not the earlier 96 MB
    assert second < 40 * MiB  # reset per round: the second round's own peak
    assert 60 < memory.summary(readings)["peak_memory_above_model_mb"] < 96


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs CUDA")
def test_cuda_peak_memory_is_torch_max_allocated_reset_per_round():
    import torch

    from pytest_llmperf.measure.instruments import MiB, PeakMemory, resident_bytes

    memory = PeakMemory("cuda:0", resident_bytes("cuda:0"))
    memory.before_round()
    block = torch.ones(256 * MiB // 4, device="cuda:0")
    del block
    reading = memory.after_round()
    assert reading.peak_bytes - memory.model_bytes >= 256 * MiB
    assert memory.summary([reading])["peak_memory_reserved_mb"] >= 256


def test_a_memory_ceiling_per_batch_size(run_suite):
    """"bs=2 fits in 1 MB" fails, and bs=1 with a generous ceiling passes; a marker takes a dict."""
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2",
                       "--llmperf-max-memory-mb=1=1000000,2=1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *manual-bs2*"])
    suite = '''
import pytest

@pytest.mark.llmperf(max_memory_mb={2: 1})
def test_bs2_fits_in_one_mb(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", suite=suite)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *manual-bs2*"])


def test_a_bad_memory_ceiling_is_a_usage_error(pytester):
    result = pytester.runpytest("--llmperf-max-memory-mb=big")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-max-memory-mb: invalid value 'big'; expected a number*"])


def test_above_the_model_compares_across_the_configurations_of_a_session(pytester):
    """Each configuration's baseline is what is resident once it is ready (its model, the workload,
    one short generation): the first one's no longer holds the dataset library's import. In a
    subprocess, as a user runs it: in this process that library is already imported."""
    pytester.makepyfile(test_perf=SUITE)
    result = pytester.runpytest_subprocess(*FAST, "--llmperf-attn=eager,sdpa", "--llmperf-strategies=manual",
                                           "--llmperf-batch-sizes=1", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=2)
    above = {bench["extra_info"]["attn_implementation"]: bench["extra_info"]["peak_memory_above_model_mb"]
             for bench in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]}
    assert set(above) == {"eager", "sdpa"}
    assert abs(above["eager"] - above["sdpa"]) < 25, above  # before: 105.9 MB against 3.8 MB


def test_continuous_batching_holds_memory_for_its_batch_not_for_the_whole_workload(run_suite, pytester):
    """Sized for every prompt of the workload at once, continuous batching's paged cache made transformers
    allocate an attention mask of 8,192 batch tokens by every cache token: 1.1 GB more than manual for 48
    prompts of the built-in model, 3.6 GB for 200 (docs/benchmarks/cpu-2core-continuous-memory.md)."""
    result = run_suite("--llmperf-strategies=manual,continuous", "--llmperf-batch-sizes=1", "--llmperf-num-samples=48",
                       "--llmperf-max-new-tokens=4", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=2)
    above = {bench["extra_info"]["strategy"]: bench["extra_info"]["peak_memory_above_model_mb"]
             for bench in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]}
    assert above["continuous"] < above["manual"] + 100, above
