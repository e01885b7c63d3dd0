"""Quantization, ``--llmperf-quantization``: a method is part of the model configuration (the test id,
the tables, ``extra_info``), each quantized configuration is compared with the unquantized model's bs=1
outputs (exact match, similarity, near-tie or confident change), a gate sets the match it needs, and a
method that cannot run here is skipped with the reason. Every backend is optional: where its package
is missing, the tests expect the skip that names it."""

import importlib.util
import json
import re
import sys

import pytest

from conftest import marked_suite
from pytest_llmperf.settings.options import QUANTIZATIONS

SMALL = ("--llmperf-num-samples=2", "--llmperf-max-new-tokens=4", "--llmperf-strategies=manual",
         "--llmperf-batch-sizes=1", "--llmperf-device=cpu", "-rs")
PACKAGES = {  # method -> (import name, pip name) of what it needs, in the order they are checked
    "int8-weight": [("torchao", "torchao")], "int8-dynamic": [("torchao", "torchao")],
    "int4-weight": [("torchao", "torchao")],
    "bnb-8bit": [("bitsandbytes", "bitsandbytes"), ("accelerate", "accelerate")],
    "bnb-4bit": [("bitsandbytes", "bitsandbytes"), ("accelerate", "accelerate")],
    "quanto-int8": [("optimum.quanto", "optimum-quanto"), ("accelerate", "accelerate")],
    "quanto-int4": [("optimum.quanto", "optimum-quanto"), ("accelerate", "accelerate")],
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def missing_package(method: str) -> str | None:
    return next((pip for module, pip in PACKAGES[method] if not installed(module)), None)


def not_installed(pip: str) -> str:
    """The skip reason, as an fnmatch pattern (``[quant]`` escaped)."""
    return re.sub(r"([\[\]])", r"[\1]", f"needs the {pip} package, which is not installed (pip install "
                                          "'pytest-llmperf[quant]')")


def test_a_method_is_part_of_the_test_id_and_none_keeps_the_ids_of_today(run_suite):
    result = run_suite("--collect-only", "-q", "--llmperf-quantization", "none,int8-weight,bnb-4bit",
                       "--llmperf-dtype", "bfloat16", "--llmperf-strategies", "manual", "--llmperf-batch-sizes", "16")
    result.stdout.fnmatch_lines([
        "test_perf.py::test_throughput[[]sdpa-nocompile-bfloat16-manual-bs16]",
        "test_perf.py::test_throughput[[]sdpa-nocompile-bfloat16-int8weight-manual-bs16]",
        "test_perf.py::test_throughput[[]sdpa-nocompile-bfloat16-bnb4bit-manual-bs16]",
        "*3 tests collected*",
    ])


def test_the_ini_key_and_the_marker_choose_methods_too(run_suite, pytester):
    pytester.makeini("[pytest]\nllmperf_quantization = quanto-int4\n")
    result = run_suite("--collect-only", "-q", "--llmperf-strategies", "manual", "--llmperf-batch-sizes", "1",
                       suite=marked_suite(quantizations=["none", "quanto-int8"]))
    result.stdout.fnmatch_lines([
        "test_perf.py::test_marked[[]sdpa-nocompile-float32-manual-bs1]",
        "test_perf.py::test_marked[[]sdpa-nocompile-float32-quantoint8-manual-bs1]",
        "test_perf.py::test_default[[]sdpa-nocompile-float32-quantoint4-manual-bs1]",
        "*3 tests collected*",
    ])


def test_an_unknown_method_is_a_usage_error_naming_the_valid_ones(run_suite):
    result = run_suite("--llmperf-quantization", "int3")
    result.stderr.fnmatch_lines(["*--llmperf-quantization: invalid value 'int3'; valid values: none, int8-weight, "
                                 "int8-dynamic, int4-weight, bnb-8bit, bnb-4bit, quanto-int8, quanto-int4*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_each_method_that_runs_here_gives_a_row_with_its_quality_against_the_unquantized_model(run_suite, pytester):
    result = run_suite(*SMALL, "--llmperf-quantization", ",".join(QUANTIZATIONS), "--benchmark-json=run.json")
    runs = [method for method in QUANTIZATIONS[1:] if method != "int4-weight" and not missing_package(method)]
    result.assert_outcomes(passed=1 + len(runs), skipped=len(QUANTIZATIONS) - 1 - len(runs))
    saved = {bench["extra_info"]["quantization"]: bench["extra_info"]
             for bench in json.loads((pytester.path / "run.json").read_text())["benchmarks"]}
    unquantized = saved.pop("none")
    assert unquantized["exact_match_to_unquantized"] is None and unquantized["quantization_config"] is None
    for method in QUANTIZATIONS[1:]:
        if method in runs:  # its own table: the method in the title, its outputs against the unquantized ones
            result.stdout.fnmatch_lines([
                f"llmperf: builtin [[]sdpa-nocompile-float32-{method.replace('-', '')}] on cpu (float32, attn sdpa, "
                f"quantization {method}) | *",
                "| batch size | strategy | length match | avg similarity to bs=1 | match unquantized | "
                "similarity to unquantized | divergence from unquantized | avg similarity to reference |*",
                "|*",
                "| 1 * | manual * | 2/2 * | 1.000 * | 2/2 * | 1.000 * | none * | 0.* |*",
                "latency and memory *",
                "| batch size | strategy | * | weights | peak memory | above the model |*",
            ])
            info = saved[method]
            assert info["exact_match_to_unquantized"] == 1.0 and info["similarity_to_unquantized"] == 1.0
            assert info["divergences_from_unquantized"] == {"near-tie": 0, "confident change": 0, "length only": 0}
            assert info["quantization_config"]["quant_method"] in ("torchao", "bitsandbytes", "quanto")
            # 8 or 4 bits in place of 32 for every linear layer (the embedding stays float32): under half
            assert info["weight_memory_mb"] < 0.5 * unquantized["weight_memory_mb"], method
            assert info["identity"]["quantization"] == method and "quantization" not in unquantized["identity"]
        elif missing_package(method):
            result.stdout.fnmatch_lines([f"SKIPPED *: quantization {method} {not_installed(missing_package(method))}"])
        else:
            result.stdout.fnmatch_lines([f"SKIPPED *: quantization {method} runs only in bfloat16; set "
                                         "--llmperf-dtype bfloat16 (got float32)"])


def test_a_method_that_cannot_run_here_is_skipped_with_the_reason(run_suite, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as where it is not installed: `import` fails
    result = run_suite(*SMALL, "--llmperf-quantization", "int4-weight,bnb-8bit", "--llmperf-dtype",
                       "float32,bfloat16")
    result.assert_outcomes(skipped=4)
    torchao = "torchao" if missing_package("int4-weight") else None
    result.stdout.fnmatch_lines([  # the package, the dtype, the device: one line each, before anything loads
        f"SKIPPED [[]1[]] *: quantization int4-weight {not_installed(torchao)}" if torchao else
        "SKIPPED [[]1[]] *: quantization int4-weight runs only in bfloat16; set --llmperf-dtype bfloat16 "
        "(got float32)",
        f"SKIPPED [[]2[]] *: quantization bnb-8bit {not_installed('bitsandbytes')}",
    ], consecutive=False)
    if not torchao:
        result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: quantization int4-weight runs only on CUDA *"])


# Two prompts of the built-in test split: the first, which every method answers as the unquantized
# model does, and one (row 28) where 4-bit NF4 tips a near-tie at the third token.
ROWS = (0, 28)
GATE_SUITE = '''
import pytest

@pytest.mark.llmperf(quantizations=["bnb-4bit"], min_match_unquantized=1.0)
def test_strict(llmperf):
    llmperf.generate("manual", 1)

@pytest.mark.llmperf(quantizations=["bnb-4bit"], min_match_unquantized=0.5)
def test_lenient(llmperf):
    llmperf.generate("manual", 1)
'''


def test_the_gate_fails_a_method_below_the_match_it_requires_and_says_how_each_sample_diverged(run_suite, pytester):
    """The unquantized reference is generated by the plugin (``none`` is not in the run)."""
    if missing_package("bnb-4bit"):
        pytest.skip(f"bnb-4bit {not_installed(missing_package('bnb-4bit'))}")
    from pytest_llmperf.model.workload import load_split

    split = load_split("builtin", "test")
    (pytester.path / "rows").mkdir()
    (pytester.path / "rows" / "test.jsonl").write_text(
        "".join(json.dumps({"sequence": split[row]["sequence"]}) + "\n" for row in ROWS))
    result = run_suite(*SMALL, "--llmperf-dataset=rows", suite=GATE_SUITE)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_strict[[]sdpa-nocompile-float32-bnb4bit[]] _*",
        "*llmperf gate failed: manual bs=1 [[]sdpa-nocompile-float32-bnb4bit] on builtin (cpu)",
        "*exact match to unquantized: 0.5 < required 1 (1/2 samples identical to the unquantized model's bs=1 "
        "outputs; divergences: 1 near-tie)",
        "*differing samples (bs=1 manual vs the unquantized model at bs=1; near-tie = *",
        "*- sample 1: similarity *, near-tie at generated token 2: * (reference) vs * (now), log-prob margin +0.0*",
        "*prompt: *",
        "*unquantized: *",
        "*now: *",
    ])
