"""Parametrization: readable, stable ids; a marker overrides the axes for one test."""

from conftest import marked_suite


def test_ids_follow_the_configured_axes(run_suite):
    result = run_suite("--collect-only", "-q", "--llmperf-strategies", "pipeline,manual",
                       "--llmperf-batch-sizes", "16,1", "--llmperf-attn", "sdpa,eager")
    result.stdout.fnmatch_lines([
        "test_perf.py::test_throughput[[]sdpa-nocompile-float32-pipeline-bs1]",
        "test_perf.py::test_throughput[[]sdpa-nocompile-float32-pipeline-bs16]",
        "test_perf.py::test_throughput[[]sdpa-nocompile-float32-manual-bs1]",
        "test_perf.py::test_throughput[[]sdpa-nocompile-float32-manual-bs16]",
        "test_perf.py::test_throughput[[]eager-nocompile-float32-pipeline-bs1]",
        "*8 tests collected*",
    ])


def test_marker_overrides_axes_for_one_test(run_suite):
    result = run_suite("--collect-only", "-q", "--llmperf-strategies", "manual", "--llmperf-batch-sizes", "2",
                       suite=marked_suite(batch_sizes=[1, 8], strategies=["pipeline"]))
    result.stdout.fnmatch_lines([
        "test_perf.py::test_marked[[]sdpa-nocompile-float32-pipeline-bs1]",
        "test_perf.py::test_marked[[]sdpa-nocompile-float32-pipeline-bs8]",
        "test_perf.py::test_default[[]sdpa-nocompile-float32-manual-bs2]",
        "*3 tests collected*",
    ])


def test_unknown_marker_keyword_is_a_one_line_collection_error(run_suite):
    suite = '''
import pytest

@pytest.mark.llmperf(batch_size=[4])
def test_typo(llmperf, batch_size):
    pass

def test_unaffected():
    pass
'''
    result = run_suite(suite=suite)
    result.stdout.fnmatch_lines(["*unknown llmperf marker keyword(s) batch_size; valid keywords: attn_implementations,*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert result.ret != 0


def test_tests_without_llmperf_keep_their_own_fixtures(pytester):
    pytester.makepyfile('''
        import pytest

        @pytest.fixture
        def batch_size():
            return 123

        def test_unrelated(batch_size):
            assert batch_size == 123
    ''')
    pytester.runpytest("--llmperf-batch-sizes", "1,2").assert_outcomes(passed=1)


def test_a_tests_own_parametrize_wins_over_the_configured_axis(run_suite):
    suite = '''
import pytest

@pytest.mark.parametrize("batch_size", [3])
def test_own(llmperf, strategy, batch_size):
    pass
'''
    result = run_suite("--collect-only", "-q", "--llmperf-strategies", "manual", suite=suite)
    result.stdout.fnmatch_lines(["test_perf.py::test_own[[]sdpa-nocompile-float32-manual-3]", "*1 test collected*"])


def test_perf_tests_run_grouped_by_model_then_as_written_whatever_reorders_them(run_suite):
    """pytest 9.1 interleaves function-scoped parametrizations across tests; a plugin may shuffle.
    The suite's later tests read earlier results, so the plugin restores its run order; other tests
    keep their places."""
    conftest = '''
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    items.reverse()
'''
    suite = '''
def test_first(llmperf, strategy, batch_size):
    pass

def test_second(llmperf, strategy):
    pass

def test_plain():
    pass
'''
    result = run_suite("--collect-only", "-q", "--llmperf-strategies", "manual,pipeline", "--llmperf-batch-sizes",
                       "1,4", "--llmperf-attn", "sdpa,eager", suite=suite, conftest=conftest)
    result.stdout.fnmatch_lines([
        "test_perf.py::test_plain",  # reversed by the conftest: a plain test keeps the place it was given
        "test_perf.py::test_first[[]sdpa-nocompile-float32-manual-bs1]",
        "test_perf.py::test_first[[]sdpa-nocompile-float32-manual-bs4]",
        "test_perf.py::test_first[[]sdpa-nocompile-float32-pipeline-bs1]",
        "test_perf.py::test_first[[]sdpa-nocompile-float32-pipeline-bs4]",
        "test_perf.py::test_second[[]sdpa-nocompile-float32-manual]",
        "test_perf.py::test_second[[]sdpa-nocompile-float32-pipeline]",
        "test_perf.py::test_first[[]eager-nocompile-float32-manual-bs1]",
        "test_perf.py::test_first[[]eager-nocompile-float32-manual-bs4]",
        "test_perf.py::test_first[[]eager-nocompile-float32-pipeline-bs1]",
        "test_perf.py::test_first[[]eager-nocompile-float32-pipeline-bs4]",
        "test_perf.py::test_second[[]eager-nocompile-float32-manual]",
        "test_perf.py::test_second[[]eager-nocompile-float32-pipeline]",
        "*13 tests collected*",
    ])
