"""Options: every flag validated at start-up; a bad value is a usage error (exit 4) naming the valid values."""

import subprocess
import sys

import pytest

USAGE_ERROR = 4


@pytest.mark.parametrize("args, message", [
    (["--llmperf-strategies", "warp"], "invalid value 'warp'; valid values: manual, pipeline, keydataset, continuous"),
    (["--llmperf-batch-sizes", "0"], "invalid batch size '0'; batch sizes are positive integers"),
    (["--llmperf-batch-sizes", "4,x"], "invalid batch size 'x'"),
    (["--llmperf-attn", "sdpa,fast"], "valid values: eager, sdpa, flash_attention_2, flex_attention"),
    (["--llmperf-dtype", "float8"], "valid values: auto, float32, bfloat16, float16"),
    (["--llmperf-compile", "turbo"], "valid values: none, default, reduce-overhead, max-autotune"),
    (["--llmperf-device", "tpu"], "valid values: auto, cpu, cuda, cuda:N"),
    (["--llmperf-min-exact-match", "1.5"], "expected a fraction between 0 and 1"),
    # A fraction option's value is checked against what it can mean: none of these switches a gate off quietly.
    (["--llmperf-tolerance", "2"], "tolerance for every metric: invalid value '2'; expected a fraction at least 0 "
                                   "and below 1 (2 means 200%; for 2% write 0.02)"),
    (["--llmperf-tolerance", "tokens_per_s=1"], "tolerance for tokens_per_s: invalid value '1'; expected a fraction"),
    (["--llmperf-max-cv", "5"], "invalid value '5'; expected a fraction above 0 and at most 1 (5 means 500%; for 5% "
                                "write 0.05)"),
    (["--llmperf-alpha", "0"], "invalid value '0'; expected a fraction above 0 and at most 0.5"),
    (["--llmperf-min-roofline", "2"], "invalid value '2'; expected a fraction above 0 and at most 1 (2 means 200%; "
                                      "for 2% write 0.02)"),
    (["--llmperf-min-baseline-match", "95"], "(95 means 9500%; for 95% write 0.95)"),
    (["--llmperf-rounds", "0"], "expected an integer >= 1"),
    (["--llmperf-num-samples", "0"], "expected an integer >= 1, or 'all' for the whole split"),
    # An empty value (e.g. an unset shell variable) is an error, not a silent fall-back to the default.
    (["--llmperf-batch-sizes", ""], "needs at least one batch size"),
    (["--llmperf-model", ""], "must not be empty"),
    (["--llmperf-strategies", ""], "needs at least one value; valid values: manual, pipeline"),
    (["--llmperf-price", "L4"], "invalid price 'L4'; expected NAME=USD_PER_HOUR (a number above 0), e.g. A10G=1.01"),
    (["--llmperf-price", "L4=0.8,A10G=free"], "invalid price 'A10G=free'; expected NAME=USD_PER_HOUR"),
])
def test_bad_values_are_usage_errors(pytester, args, message):
    pytester.makepyfile("def test_other(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{args[0]}*{message}*"])


def test_bad_ini_value_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nllmperf_batch_sizes = 1, -2\n")
    pytester.makepyfile("def test_other(): pass")
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(["*llmperf_batch_sizes: invalid batch size '-2'*"])


def test_ini_sets_values_and_the_cli_wins(run_suite, pytester):
    pytester.makeini("[pytest]\nllmperf_batch_sizes = 2 8\nllmperf_strategies = pipeline\n")
    result = run_suite("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_throughput[[]sdpa-nocompile-float32-pipeline-bs2]", "*-pipeline-bs8]"])
    result = run_suite("--collect-only", "-q", "--llmperf-batch-sizes", "3")
    result.stdout.fnmatch_lines(["*test_throughput[[]sdpa-nocompile-float32-pipeline-bs3]", "1 test collected*"])


def test_help_lists_every_option_with_its_ini_key(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--llmperf-model=ID*", "*--llmperf-strategies=LIST*", "*ini: llmperf_min_speedup*"])


def test_loading_the_plugin_imports_nothing_heavy():
    code = ("import sys, pytest_llmperf.plugin, pytest_llmperf; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_project_without_perf_tests_does_not_import_torch(pytester):
    pytester.makepyfile('''
        import sys

        def test_plain():
            assert "torch" not in sys.modules and "transformers" not in sys.modules
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
