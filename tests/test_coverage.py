"""Coverage presets: one flag for a matrix of axes, as documented in docs/options.md; an axis the user
sets overrides the preset's, and what cannot run on this machine is left out before collection and
said once, not skipped a hundred times."""

import pytest

from conftest import resolved_auto_device


def collected(result) -> list[str]:
    return [line.split("[", 1)[1].rstrip("]") for line in result.stdout.lines if line.startswith("test_perf.py::")]


def test_standard_runs_the_documented_matrix(run_suite):
    result = run_suite("--collect-only", "-q", "--llmperf-coverage=standard")
    ids = collected(result)
    assert len(ids) == 2 * 2 * 2 * 4 * 3  # dtypes x attention x compile x strategies x the default batch sizes
    for expected in ("sdpa-nocompile-float32-manual-bs1", "eager-compile-default-bfloat16-continuous-bs16",
                     "sdpa-compile-default-float32-keydataset-bs4"):
        assert expected in ids


def test_an_explicit_axis_overrides_the_preset_on_the_command_line_in_ini_and_in_a_marker(run_suite, pytester):
    ids = collected(run_suite("--collect-only", "-q", "--llmperf-coverage=standard", "--llmperf-attn=sdpa",
                              "--llmperf-strategies=manual"))
    assert len(ids) == 2 * 2 * 3 and not [i for i in ids if "eager" in i or "pipeline" in i]
    pytester.makeini("[pytest]\nllmperf_coverage = standard\nllmperf_dtype = float32\n")
    ids = collected(run_suite("--collect-only", "-q", "--llmperf-strategies=manual"))
    assert len(ids) == 2 * 2 * 3 and not [i for i in ids if "bfloat16" in i]
    marked = '''
import pytest


@pytest.mark.llmperf(compile_modes=["none"], batch_sizes=[2])
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    ids = collected(run_suite("--collect-only", "-q", "--llmperf-strategies=manual", suite=marked))
    assert sorted(ids) == ["eager-nocompile-float32-manual-bs2", "sdpa-nocompile-float32-manual-bs2"]


@pytest.mark.skipif(resolved_auto_device() != "cpu", reason="what full leaves out is a CPU's")
def test_full_leaves_out_what_cannot_run_here_and_says_so_once(run_suite):
    result = run_suite("--collect-only", "-q", "--llmperf-coverage=full", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1", "--llmperf-quantization=none", "--llmperf-speculative=none")
    ids = collected(result)
    assert len(ids) == 3 * 2 * 4  # float32/bfloat16/float16 x eager/sdpa x every compile mode
    assert not [i for i in ids if "flash" in i or "flex" in i]
    lines = [line for line in result.stdout.lines if "--llmperf-coverage full left out" in line]
    assert len(lines) == 2, lines  # one per reason, however many tests name the configurations
    result.stdout.fnmatch_lines_random([
        "llmperf: --llmperf-coverage full left out 12 configuration(s) that cannot run here "
        "(flash_attention_2-compile-default-bfloat16, *): flash_attention_2 needs a CUDA device",
        "llmperf: --llmperf-coverage full left out 12 configuration(s) that cannot run here (*): "
        "flex_attention on CPU fails inside torch inductor's C++ compile; run it on CUDA",
    ])


@pytest.mark.skipif(resolved_auto_device() != "cpu", reason="what full leaves out is a CPU's")
def test_full_takes_every_quantization_method_that_runs_here(run_suite):
    from pytest_llmperf.model.quantization import unsupported_reason
    from pytest_llmperf.settings.config import quantization_id
    from pytest_llmperf.settings.options import NO_QUANTIZATION, QUANTIZATIONS

    result = run_suite("--collect-only", "-q", "--llmperf-coverage=full", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1", "--llmperf-attn=sdpa", "--llmperf-compile=none",
                       "--llmperf-dtype=float32", "--llmperf-speculative=none")
    runs = [m for m in QUANTIZATIONS if unsupported_reason(m, False, "float32") is None and m != NO_QUANTIZATION]
    expected = ["sdpa-nocompile-float32-manual-bs1"] + [
        f"sdpa-nocompile-float32-{quantization_id(m)}-manual-bs1" for m in runs]
    assert sorted(collected(result)) == sorted(expected)
    for method in set(QUANTIZATIONS) - set(runs) - {NO_QUANTIZATION}:  # its package is missing, or CUDA-only
        result.stdout.fnmatch_lines([f"llmperf: --llmperf-coverage full left out *sdpa-nocompile-float32-"
                                     f"{quantization_id(method)}*: {unsupported_reason(method, False, 'float32')}"])


@pytest.mark.skipif(resolved_auto_device() != "cpu", reason="flash_attention_2 runs on a GPU")
def test_asked_for_by_name_a_configuration_that_cannot_run_still_skips_with_its_reason(run_suite):
    result = run_suite("-rs", "--llmperf-coverage=full", "--llmperf-attn=flash_attention_2", "--llmperf-dtype=bfloat16",
                       "--llmperf-compile=none", "--llmperf-quantization=none", "--llmperf-speculative=none",
                       "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*flash_attention_2 needs a CUDA device"])
    assert "left out" not in result.stdout.str()


def test_an_unknown_preset_is_a_one_line_usage_error(run_suite):
    result = run_suite("--llmperf-coverage=everything")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmperf-coverage: invalid value 'everything'; valid values: quick, standard, full"])


def test_full_runs_speculative_decoding_where_it_can_and_leaves_out_the_rest_once(run_suite):
    result = run_suite("--collect-only", "-q", "--llmperf-coverage=full", "--llmperf-attn=sdpa",
                       "--llmperf-compile=none", "--llmperf-dtype=float32", "--llmperf-quantization=none",
                       "--llmperf-strategies=manual,continuous", "--llmperf-batch-sizes=1,4")
    ids = collected(result)
    speculative = sorted(i for i in ids if "assisted" in i or "prompt-lookup" in i)
    # batch size 1 with a generate-based strategy only; every case without it stays
    assert speculative == ["sdpa-nocompile-float32-assisted-manual-bs1",
                           "sdpa-nocompile-float32-prompt-lookup-manual-bs1"]
    assert len(ids) - len(speculative) == 2 * 2
    result.stdout.fnmatch_lines_random([
        "llmperf: --llmperf-coverage full left out 2 configuration(s) that cannot run here "
        "(sdpa-nocompile-float32-assisted-continuous-bs1, sdpa-nocompile-float32-assisted-continuous-bs4): "
        "speculative decoding (assisted) does not run with strategy continuous: *",
        "llmperf: --llmperf-coverage full left out 1 configuration(s) that cannot run here "
        "(sdpa-nocompile-float32-prompt-lookup-manual-bs4): speculative decoding (prompt-lookup) runs at batch "
        "size 1 only: *",
        "*6 deselected*",
    ])
