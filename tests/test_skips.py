"""Combinations that cannot run on this machine are skipped with the reason, never crashed or coerced."""

import pytest

torch = pytest.importorskip("torch")
ON_CPU = not torch.cuda.is_available()


@pytest.mark.skipif(not ON_CPU, reason="checks CPU-only skip reasons")
def test_cpu_skip_reasons(run_suite):
    result = run_suite("-rs", "--llmperf-attn=sdpa,flash_attention_2,flex_attention", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([
        "SKIPPED*flash_attention_2 needs a CUDA device",
        "SKIPPED*flex_attention on CPU fails inside torch inductor's C++ compile; run it on CUDA",
    ])


@pytest.mark.skipif(not ON_CPU, reason="checks CPU-only skip reasons")
def test_cuda_device_requested_without_cuda(run_suite):
    result = run_suite("-rs", "--llmperf-device=cuda", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*device cuda requested but CUDA is not available on this machine"])


def test_continuous_batching_skips_attention_it_does_not_support():
    from pytest_llmperf.model.loading import load
    from pytest_llmperf.settings import registry
    from pytest_llmperf.settings.config import ModelSpec

    loaded = load(ModelSpec("builtin", "cpu", "float32", "sdpa", "none"))
    strategy = registry.create("continuous")
    assert strategy.unsupported_reason(loaded) is None
    loaded.spec = ModelSpec("builtin", "cpu", "float32", "flex_attention", "none")
    assert strategy.unsupported_reason(loaded) == (
        "continuous batching does not support attn_implementation=flex_attention "
        "(supported: eager, sdpa, flash_attention_2)")


@pytest.mark.skipif(ON_CPU, reason="needs CUDA: flex_attention and compiled runs on a GPU")
@pytest.mark.parametrize("attn, compile_mode", [("flex_attention", "none"), ("sdpa", "default")])
def test_gpu_only_combinations_run_and_agree(run_suite, attn, compile_mode):
    result = run_suite("--llmperf-device=cuda", f"--llmperf-attn={attn}", f"--llmperf-compile={compile_mode}",
                       "--llmperf-strategies=manual,pipeline", "--llmperf-batch-sizes=1,4", "--llmperf-warmup=1")
    result.assert_outcomes(passed=4)


def test_a_strategy_that_cannot_run_is_skipped_with_its_reason(run_suite):
    conftest = '''
from pytest_llmperf import Strategy, register_strategy

@register_strategy("halfonly")
class HalfPrecisionOnly(Strategy):
    def unsupported_reason(self, target):
        return None if target.dtype in ("bfloat16", "float16") else "halfonly runs only in bfloat16/float16"
'''
    result = run_suite("-rs", "--llmperf-strategies=manual,halfonly", "--llmperf-batch-sizes=1", conftest=conftest)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*halfonly runs only in bfloat16/float16"])
