"""Under pytest-xdist the controller prints the same tables and writes the same results file as a
run without it: workers send their records on their test reports. A configuration's tests share
an ``xdist_group``, so ``--dist loadgroup`` keeps them on one worker; worker k takes GPU k."""

import json

import pytest

from conftest import FAST

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)


def test_consistency(llmperf, strategy, batch_size):
    llmperf.generate(strategy, batch_size)
'''


def table_rows(result) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("| ")]


def cases(path) -> list[tuple]:
    lines = [json.loads(line) for line in path.read_text().splitlines()][1:]
    return sorted((line["test"], line["extra_info"]["strategy"], line["extra_info"]["batch_size"],
                   tuple(map(tuple, line["output_ids"]))) for line in lines)


def test_n2_gives_the_same_outcomes_table_rows_and_results_file_as_n0(pytester):
    """Timing is off under xdist (pytest-benchmark's rule), so the comparison is with -n 0 untimed.
    ``--dist loadscope`` keeps a module's tests on one worker, in order, so the consistency tests
    reuse the outputs as they do without xdist, and the results file matches line for line; plain
    ``-n 2`` spreads them, and still gives the same outcomes and rows."""
    pytester.makepyfile(test_perf=SUITE)
    args = (*FAST, "--llmperf-strategies=manual,pipeline", "--llmperf-batch-sizes=1,4")
    serial = pytester.runpytest(*args, "--benchmark-disable", "-n", "0")
    serial_cases = cases(pytester.path / ".llmperf" / "results.jsonl")
    by_module = pytester.runpytest(*args, "-n", "2", "--dist", "loadscope")
    by_module_cases = cases(pytester.path / ".llmperf" / "results.jsonl")
    spread = pytester.runpytest(*args, "-n", "2")
    for result in (serial, by_module, spread):
        result.assert_outcomes(passed=8)
        assert table_rows(result) == table_rows(serial) and len(table_rows(serial)) == 1 + 4  # header, 4 cases
    assert by_module_cases == serial_cases
    for result in (by_module, spread):
        result.stdout.fnmatch_lines(["llmperf: nothing was timed: pytest-benchmark disables timing under "
                                     "pytest-xdist (-n)*"])
        assert "Benchmarks are automatically disabled" not in result.stdout.str() + result.stderr.str()


def test_each_perf_test_carries_the_xdist_group_of_its_model_configuration(pytester):
    pytester.makeconftest('''
def pytest_collection_modifyitems(items):
    for item in items:
        print("GROUP", item.name, item.get_closest_marker("xdist_group").args[0])
''')
    pytester.makepyfile(test_perf=SUITE)
    result = pytester.runpytest("-s", "--collect-only", "-q", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1",
                                "--llmperf-attn=sdpa,eager")
    result.stdout.fnmatch_lines(["GROUP test_throughput[[]sdpa-nocompile-float32-manual-bs1] llmperf-sdpa-nocompile-float32",
                                 "GROUP test_throughput[[]eager-nocompile-float32-manual-bs1] llmperf-eager-nocompile-float32"])


@pytest.mark.parametrize("worker, count, index", [(None, 4, 0), ("gw0", 4, 0), ("gw5", 4, 1), ("gw3", 1, 0),
                                                  ("gw2", 0, 0)])
def test_worker_k_takes_gpu_k_modulo_the_device_count(worker, count, index):
    from pytest_llmperf.model.loading import worker_gpu

    assert worker_gpu(worker, count) == index
