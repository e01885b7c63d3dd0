"""Out of memory fails (or, by option, skips) only that case, in one line with the device's memory
figures; its memory is freed; the untimed consistency test does not run it again; larger batch
sizes of the same strategy are skipped with the reason. On CUDA (when a GPU is present) with a
real out-of-memory error."""

import re

import pytest

from conftest import FAST, latency_rounds, resolved_auto_device

# A user's strategy that runs out of memory from batch size 4 on, with the error torch raises.
OOM_CONFTEST = '''
import torch

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy

CALLS = {}


@register_strategy("oomat4")
class OutOfMemoryAt4(ManualStrategy):
    def generate(self, ctx):
        CALLS[ctx.batch_size] = CALLS.get(ctx.batch_size, 0) + 1
        if ctx.batch_size >= 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().generate(ctx)
'''

SUITE = '''
import conftest


def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)


def test_consistency(llmperf, strategy, batch_size):
    llmperf.generate(strategy, batch_size)


def test_calls():
    print("CALLS", sorted(conftest.CALLS.items()))
'''


def memory_figures(device: str) -> str:
    """The pattern of ``measure.memory.figures`` on ``device``: what its out-of-memory line says."""
    if device.startswith("cuda"):
        return f"{device}: * GiB free of * GiB, torch peak allocated * GiB, reserved * GiB"
    return f"{device}: * GiB available of * GiB, this process * GiB resident"


def test_out_of_memory_fails_one_case_in_one_line_and_skips_what_would_hit_the_same_wall(run_suite):
    device = resolved_auto_device()  # the error is raised wherever the runs are: the line has that device's figures
    result = run_suite("-rfs", "-s", "--llmperf-strategies=oomat4", "--llmperf-batch-sizes=1,2,4,8",
                       "--llmperf-num-samples=8", suite=SUITE,
                       conftest=OOM_CONFTEST)
    result.assert_outcomes(passed=5, failed=1, skipped=3)
    result.stdout.fnmatch_lines([
        "*_ test_throughput[[]sdpa-nocompile-float32-oomat4-bs4] _*",
        f"out of memory: oomat4 bs=4 ({memory_figures(device)}); freed, now {device}: *; "
        "larger batch sizes of oomat4 are skipped",
    ])
    result.stdout.fnmatch_lines_random([
        "SKIPPED [[]1] *: not run: oomat4 ran out of memory at bs=4 in test_perf.py::test_throughput, so bs=8 would too",
        "SKIPPED [[]1] *: not run again: oomat4 bs=4 ran out of memory in test_perf.py::test_throughput",
    ])
    # a finished case: its one measured round, and on CUDA its latency round (--llmperf-latency auto: extra rounds);
    # bs=4 once (its first round ran out of memory) and not again, bs=8 never
    rounds = 1 + latency_rounds(1)
    result.stdout.fnmatch_lines([f"*CALLS [[](1, {rounds}), (2, {rounds}), (4, 1)]"])
    assert "Traceback" not in result.stdout.str() and "OutOfMemoryError" not in result.stdout.str()
    assert "| 4 " not in result.stdout.str()  # no row for what did not finish


def test_on_oom_skip_skips_the_case_with_the_same_line(run_suite):
    result = run_suite("-rs", "--llmperf-strategies=oomat4", "--llmperf-batch-sizes=1,4", "--llmperf-on-oom=skip",
                       conftest=OOM_CONFTEST)
    result.assert_outcomes(passed=1, skipped=1)
    device = resolved_auto_device()
    result.stdout.fnmatch_lines([f"SKIPPED [[]1] *: out of memory: oomat4 bs=4 ({memory_figures(device)}); "
                                 f"freed, now {device}: *"])


REAL_OOM_CONFTEST = '''
import torch

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("hog")
class Hog(ManualStrategy):
    """Holds (batch size x 1/3 of the GPU) while generating: bs=1 and 2 fit, bs=4 cannot."""

    def generate(self, ctx):
        total = torch.cuda.get_device_properties(ctx.target.device).total_memory
        held = torch.empty(ctx.batch_size * total // 3, dtype=torch.uint8, device=ctx.target.device)
        generations = super().generate(ctx)
        del held
        return generations
'''


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="a real out-of-memory error needs CUDA")
def test_a_real_cuda_out_of_memory_is_freed_and_the_session_carries_on(pytester):
    pytester.makeconftest(REAL_OOM_CONFTEST)
    pytester.makepyfile(test_perf=SUITE.replace("import conftest", "import torch").replace(
        'print("CALLS", sorted(conftest.CALLS.items()))',
        'print("ALLOCATED_GIB", torch.cuda.memory_allocated() / 2**30)'))
    result = pytester.runpytest_subprocess(*FAST, "-s", "-rfs", "--llmperf-device=cuda", "--llmperf-strategies=hog",
                                           "--llmperf-batch-sizes=1,2,4,8", "--llmperf-num-samples=8")
    result.assert_outcomes(passed=5, failed=1, skipped=3)
    result.stdout.fnmatch_lines(["*_ test_throughput[[]*hog-bs4] _*",
                                 "out of memory: hog bs=4 (cuda:0: * GiB free of * GiB, torch peak allocated * GiB, "
                                 "reserved * GiB); freed, now cuda:0: *"])
    # with -s the print lands on the progress line, after the dots ("test_perf.py ..Fs..ssALLOCATED_GIB 0.0349")
    (allocated,) = [float(found) for found in re.findall(r"ALLOCATED_GIB (\S+)", result.stdout.str())]
    assert allocated < 1.0  # the model only: the failed case's memory was given back


def test_batch_size_max_finds_the_largest_that_fits_and_reports_it(run_suite, pytester):
    import json

    result = run_suite("-rfs", "--llmperf-strategies=oomat4", "--llmperf-batch-sizes=1,max", "--llmperf-num-samples=12",
                       "--benchmark-json=bench.json", suite=SUITE, conftest=OOM_CONFTEST)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        "| 1 * | oomat4 *",
        "| 3 (max) * | oomat4 *",
        "oomat4 bs=max: largest batch size that fits: 3, limited by out of memory at 4 (tried 1, 2, 4 out of memory, 3)",
    ])
    saved = {bench["name"]: bench["extra_info"] for bench in json.loads((pytester.path / "bench.json").read_text())
             ["benchmarks"]}
    found = saved["test_throughput[sdpa-nocompile-float32-oomat4-bsmax]"]
    assert found["batch_size"] == 3
    assert found["batch_size_search"]["tried"] == [[1, True], [2, True], [4, False], [3, True]]
    assert found["speedup_vs_bs1"] is not None


def test_batch_size_max_is_capped_by_the_workload(run_suite):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=max", "--llmperf-num-samples=6")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["| 6 (max) * | manual *",
                                 "manual bs=max: largest batch size that fits: 6, limited by the workload's 6 prompts "
                                 "(tried 1, 2, 4, 6)"])


@pytest.mark.parametrize("limit, cap, known, found, tried", [
    (24, 48, None, 24, [1, 2, 4, 8, 16, 32, 24, 28, 26, 25]),  # doubling, then bisecting 16..32
    (100, 48, None, 48, [1, 2, 4, 8, 16, 32, 48]),  # the workload is the limit
    (0, 48, None, 0, [1]),  # not even one fits
    (24, 48, 20, 19, [1, 2, 4, 8, 16, 19]),  # stays below a size already seen to run out of memory
])
def test_the_search_doubles_then_bisects(limit, cap, known, found, tried):
    from pytest_llmperf.measure.max_batch import search

    result = search(lambda size: size <= limit, cap, known)
    assert result.batch_size == found
    assert [size for size, _ in result.tried] == tried
    assert all(fit == (size <= limit) for size, fit in result.tried)
