"""Installing pytest-llmperf changes nothing for tests that do not use it: the plugin exports no
fixture with a common ML name (dtype, batch_size, strategy, attn_implementation, compile_mode), so a
project's own fixtures of those names, from a conftest or a plugin module loaded with ``-p``, keep
their values and their parametrizations. Perf tests still name the axes in their signature."""

from conftest import FAST

PROJECT_FIXTURES = '''
import pytest


@pytest.fixture(params=["float32", "bfloat16", "float16"])
def dtype(request):
    return request.param


@pytest.fixture
def batch_size():
    return 64


@pytest.fixture
def strategy():
    return "greedy-search"


@pytest.fixture
def attn_implementation():
    return "flash"


@pytest.fixture
def compile_mode():
    return "max-autotune"
'''

PROJECT_TESTS = '''
def test_dtype(dtype):
    assert dtype in ("float32", "bfloat16", "float16")


def test_the_rest(batch_size, strategy, attn_implementation, compile_mode):
    assert (batch_size, strategy, attn_implementation, compile_mode) == (64, "greedy-search", "flash", "max-autotune")
'''


def test_a_projects_own_fixtures_from_a_p_module_keep_their_values_and_parametrizations(pytester):
    pytester.syspathinsert()
    pytester.makepyfile(projfixtures=PROJECT_FIXTURES, test_project=PROJECT_TESTS)
    with_plugin = pytester.runpytest("-p", "projfixtures", "-v", "-p", "no:randomly")
    without_plugin = pytester.runpytest("-p", "projfixtures", "-v", "-p", "no:randomly", "-p", "no:llmperf")
    for result in (with_plugin, without_plugin):
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(["*test_dtype[[]float32] PASSED*", "*test_dtype[[]bfloat16] PASSED*",
                                     "*test_dtype[[]float16] PASSED*", "*test_the_rest PASSED*"])


def test_a_fixture_the_project_never_defined_is_still_an_error(pytester):
    pytester.makepyfile("def test_needs_dtype(dtype):\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'dtype' not found*"])


def test_perf_tests_beside_the_project_fixtures_name_the_axes_in_their_signature(pytester):
    """The documented signature works, and a perf test gets the configured axes, while the
    project's plain tests in the same run keep the project's fixtures."""
    pytester.syspathinsert()
    pytester.makepyfile(projfixtures=PROJECT_FIXTURES, test_project=PROJECT_TESTS, test_perf='''
def test_throughput(llmperf, strategy, batch_size, dtype):
    result = llmperf.benchmark(strategy, batch_size)
    assert (result.strategy, result.batch_size, result.spec.dtype) == (strategy, batch_size, dtype)
''')
    result = pytester.runpytest("-p", "projfixtures", "-v", *FAST, "--llmperf-strategies=manual",
                                "--llmperf-batch-sizes=1,2")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_throughput[[]sdpa-nocompile-float32-manual-bs1] PASSED*",
                                 "*test_throughput[[]sdpa-nocompile-float32-manual-bs2] PASSED*"])


def test_not_llmperf_leaves_every_perf_test_out_of_the_ordinary_run(pytester):
    pytester.makepyfile(test_mixed='''
import pytest

def test_unit():
    pass

def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)

@pytest.mark.llmperf(batch_sizes=[2])
def test_marked(llmperf, strategy, batch_size):
    llmperf.generate(strategy, batch_size)
''')
    axes = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", "-p", "no:randomly")
    ordinary = pytester.runpytest("-m", "not llmperf", *axes)
    ordinary.assert_outcomes(passed=1, deselected=3)
    only_perf = pytester.runpytest("-m", "llmperf", "--collect-only", "-q", *axes)
    only_perf.stdout.fnmatch_lines(["test_mixed.py::test_throughput[[]sdpa-nocompile-float32-manual-bs1]",
                                    "test_mixed.py::test_throughput[[]sdpa-nocompile-float32-manual-bs2]",
                                    "test_mixed.py::test_marked[[]sdpa-nocompile-float32-manual-bs2]",
                                    "*3/4 tests collected (1 deselected)*"])
