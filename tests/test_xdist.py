"""Under pytest-xdist each worker times its own cases where that is honest (a device per worker, or
``--llmperf-xdist-timing on``), and the controller prints the tables and writes the results file,
``--benchmark-json`` and the autosave that a run without xdist writes. ``--dist loadgroup`` keeps a
model configuration's tests on one worker, which loads its model once; worker k takes GPU k."""

import json
import re
from types import SimpleNamespace

import pytest

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)


def test_consistency(llmperf, strategy, batch_size):
    llmperf.generate(strategy, batch_size)
'''
# Two model configurations x (bs 1, bs 2) x two tests: 8 cases, 2 prompts x 4 new tokens, 2 rounds. One torch
# thread per process, so that two workers fit two cores; latency off and a tolerance of 99%, so that what
# is compared with an earlier run (on this shared machine) is that the comparison works, not the noise.
ARGS = ("-p", "no:cacheprovider", "-p", "no:randomly", "--llmperf-num-samples=2", "--llmperf-max-new-tokens=4",
        "--llmperf-warmup=0", "--llmperf-rounds=2", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2",
        "--llmperf-attn=sdpa,eager", "--llmperf-threads=1", "--llmperf-latency=off", "--llmperf-max-cv=off",
        "--llmperf-tolerance=0.99")
# what they share: "this machine's CPU cores" on a CPU, "1 GPU" on a machine with one
TIMED_SHARED = "llmperf: 2 pytest-xdist workers timed their cases at the same time on * (--llmperf-xdist-timing on)*"
UNTIMED_SHARED = "llmperf: nothing was timed: 2 pytest-xdist workers share this machine's CPU cores*"


def results_rows(result) -> list[list[str]]:
    """The cells of the results tables' rows (one table per model configuration, header included)."""
    rows, inside = [], False
    for line in result.stdout.lines:
        inside = line.startswith("|") and (inside or "length match" in line)
        if inside and not line.startswith("|-"):
            rows.append([cell.strip() for cell in line.split("|")[1:-1]])
    return rows


def row_heads(result) -> list[list[str]]:
    """The results tables' rows up to the timing columns (batch size, strategy, and the outputs')."""
    return [row[:5] for row in results_rows(result)]


def cases(path) -> list[tuple]:
    lines = [json.loads(line) for line in path.read_text().splitlines()][1:]
    return sorted((line["test"], line["timed"], line["extra_info"]["config"], line["extra_info"]["batch_size"],
                   tuple(map(tuple, line["output_ids"]))) for line in lines)


def saved(path) -> dict:
    return json.loads(path.read_text())


def test_n2_with_timing_on_times_every_case_and_saves_what_n0_saves(pytester):
    """``-n 2 --llmperf-xdist-timing on`` against ``-n 0``: the same outcomes, table rows, results file,
    JSON benchmarks (each with its rounds' statistics) and saved token ids, autosaved as one run that
    ``--benchmark-compare`` then compares with; and it compares with the serial run's autosave itself."""
    pytester.makepyfile(test_perf=SUITE)
    serial = pytester.runpytest(*ARGS, "-n", "0", "--benchmark-autosave", "--benchmark-json=serial.json")
    serial_cases = cases(pytester.path / ".llmperf" / "results.jsonl")
    parallel = pytester.runpytest(*ARGS, "-n", "2", "--dist", "loadgroup", "--llmperf-xdist-timing", "on", "-v",
                                  "--benchmark-autosave", "--benchmark-json=parallel.json", "--benchmark-compare",
                                  "--llmperf-report=report", "--llmperf-export=github-action-benchmark=dashboard")
    for result in (serial, parallel):
        result.assert_outcomes(passed=8)
        assert row_heads(result) == row_heads(serial) and len(row_heads(serial)) == 2 * (1 + 2)  # header, bs 1, 2
    assert cases(pytester.path / ".llmperf" / "results.jsonl") == serial_cases and serial_cases[0][1]  # timed
    for run in ("NOW", "0001_"):  # pytest-benchmark's table: this run's rows and the serial run's
        assert f"test_throughput[eager-nocompile-float32-manual-bs1] ({run}" in parallel.stdout.str()
    parallel.stdout.fnmatch_lines(["*llmperf vs baseline*", TIMED_SHARED])
    assert "Benchmarks are automatically disabled" not in parallel.stdout.str() + parallel.stderr.str()

    one, two = saved(pytester.path / "serial.json"), saved(pytester.path / "parallel.json")
    assert [b["fullname"] for b in two["benchmarks"]] == [b["fullname"] for b in one["benchmarks"]]
    assert len(one["benchmarks"]) == 4
    for bench in two["benchmarks"]:
        assert bench["stats"]["rounds"] == 2 and bench["stats"]["median"] == pytest.approx(
            sum(bench["stats"]["data"]) / 2) and bench["extra_info"]["tokens_per_s"] > 0
    assert [sorted(b["extra_info"]) for b in two["benchmarks"]] == [sorted(b["extra_info"]) for b in one["benchmarks"]]
    assert two["llmperf"]["outputs"] == one["llmperf"]["outputs"]
    assert (pytester.path / "report" / "report.md").exists()
    dashboard = saved(pytester.path / "dashboard" / "customBiggerIsBetter.json")
    assert len([entry for entry in dashboard if entry["name"].endswith("samples/s")]) == 4  # every case, timed
    autosaved = sorted((pytester.path / ".benchmarks").glob("*/*.json"))
    assert [path.name[:4] for path in autosaved] == ["0001", "0002"]
    assert [b["fullname"] for b in saved(autosaved[1])["benchmarks"]] == [b["fullname"] for b in one["benchmarks"]]

    # loadgroup: each model configuration on one worker, which loaded it once (one load time for its cases)
    workers: dict[str, set] = {}
    for worker, config in re.findall(r"\[(gw\d)\] .*PASSED .*\[(\w+-nocompile-float32)-", parallel.stdout.str()):
        workers.setdefault(config, set()).add(worker)
    assert sorted(map(len, workers.values())) == [1, 1] and len(set.union(*workers.values())) == 2
    for config in workers:
        assert len({b["extra_info"]["load_time_s"] for b in two["benchmarks"] if b["extra_info"]["config"] == config}) == 1

    later = pytester.runpytest(*ARGS, "-n", "0", "--benchmark-compare=0002")
    later.assert_outcomes(passed=8)
    assert "test_throughput[eager-nocompile-float32-manual-bs1] (0002_" in later.stdout.str()
    later.stdout.fnmatch_lines(["*llmperf vs baseline*"])
    assert "no baseline" not in later.stdout.str()


def test_auto_on_cpu_times_nothing_and_says_why_in_one_line(pytester):
    """Two workers on one CPU share its cores: ``auto`` leaves timing off, checks outputs, says so once,
    and writes no ``--benchmark-json`` (nothing was timed). On the CPU even on a GPU machine, where
    the default device would put both workers on a GPU: whether they share one depends on how many
    it has (what auto decides there is test_auto_times_only_where_every_worker_has_a_device_of_its_own's)."""
    pytester.makepyfile(test_perf=SUITE)
    result = pytester.runpytest(*ARGS, "-n", "2", "--llmperf-device=cpu", "--benchmark-json=untimed.json")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines([UNTIMED_SHARED])
    assert result.stdout.str().count("llmperf: nothing was timed") == 1
    assert "Benchmarks are automatically disabled" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "untimed.json").exists()
    rows = [row for row in results_rows(result) if row[0] != "batch size"]
    assert len(rows) == 4 and all(row[5:9] == ["-"] * 4 for row in rows)  # time, samples/s, speedup, per day


@pytest.mark.parametrize("mode, device, workers, gpus, timed, said", [
    ("auto", "auto", 8, 8, True, None),  # a GPU per worker
    ("auto", "cuda", 2, 4, True, None),
    ("auto", "auto", 1, 0, True, None),  # one worker alone on the CPU
    ("auto", "auto", 2, 0, False, "nothing was timed: 2 pytest-xdist workers share this machine's CPU cores"),
    ("auto", "cpu", 2, 8, False, "nothing was timed: 2 pytest-xdist workers share this machine's CPU cores"),
    ("auto", "cuda", 4, 2, False, "nothing was timed: 4 pytest-xdist workers share 2 GPUs"),
    ("auto", "cuda:1", 2, 4, False, "nothing was timed: 2 pytest-xdist workers share cuda:1"),
    ("on", "cpu", 2, 0, True, "2 pytest-xdist workers timed their cases at the same time on this machine's CPU"),
    ("on", "auto", 2, 2, True, None),
    ("off", "auto", 2, 2, False, "nothing was timed: --llmperf-xdist-timing off"),
])
def test_auto_times_only_where_every_worker_has_a_device_of_its_own(mode, device, workers, gpus, timed, said):
    from pytest_llmperf.run.distributed import timing_under_xdist

    decided, line = timing_under_xdist(mode, device, workers, gpus)
    assert decided is timed
    assert (line is None) if said is None else said in line


@pytest.mark.parametrize("nodeid, group", [
    ("perf_tests/test_inference.py::test_throughput[sdpa-nocompile-float32-manual-bs16]",
     "llmperf-sdpa-nocompile-float32"),
    ("t.py::TestX::test_a[flash_attention_2-compile-reduce-overhead-bfloat16-pipeline-bsmax]",
     "llmperf-flash_attention_2-compile-reduce-overhead-bfloat16"),
    ("t.py::test_a[eager-nocompile-auto]", "llmperf-eager-nocompile-auto"),
    ("t.py::test_a[sdpa-nocompile-float32-manual-bs1]@llmperf-sdpa-nocompile-float32",  # pytest < 9.2
     "llmperf-sdpa-nocompile-float32"),
    ("t.py::test_a[manual-bs1-float16]", None),  # parametrizes a model axis itself: not grouped
    ("t.py::test_plain", None),
])
def test_loadgroup_reads_a_perf_tests_configuration_from_its_node_id(nodeid, group):
    """What the controller's loadgroup groups by, where pytest >= 9.2 drops xdist's ``@group`` suffix."""
    from pytest_llmperf.run.parametrize import nodeid_group

    assert nodeid_group(nodeid) == group


def test_a_workers_benchmarks_reach_the_controllers_session_as_they_were():
    """``benchmark_session.take`` on a worker, ``add`` on the controller: pytest-benchmark's session then
    saves and shows each benchmark as the worker's would have, its cProfile included, in collection
    order, without the ``@group`` suffix in its name."""
    import cProfile
    import pstats

    from pytest_benchmark.stats import Metadata
    from pytest_benchmark.utils import safe_dumps

    from pytest_llmperf.run import benchmark_session
    from pytest_llmperf.run.parametrize import case_id

    profile = cProfile.Profile()
    profile.runcall(sorted, range(100))

    def metadata(name, data, cprofile_stats=None):
        fixture = SimpleNamespace(name=name, fullname=f"t.py::{name}@g", group="g", param="p", params={"p": object()},
                                  extra_info={"config_hash": "x"}, cprofile_stats=cprofile_stats, has_error=False,
                                  llmperf_started=True)
        bench = Metadata(fixture, 1, {"timer": "perf_counter", "rounds": 2})
        bench.stats.data.extend(data)
        return bench

    worker = SimpleNamespace(benchmarks=[metadata("test_b[x]", [0.3, 0.1], pstats.Stats(profile)),
                                         metadata("test_a[x]", [0.2, 0.4])])
    expected = {bench.name: json.loads(safe_dumps(bench.as_dict(cprofile=("cumtime", 5))))
                for bench in worker.benchmarks}
    sent = benchmark_session.take(worker, case_id)
    assert worker.benchmarks == [] and json.loads(json.dumps(sent)) == sent  # moved, as JSON types
    controller = SimpleNamespace(benchmarks=[])
    benchmark_session.add(controller, sent, {"t.py::test_a[x]": 0, "t.py::test_b[x]": 1})
    assert [bench.fullname for bench in controller.benchmarks] == ["t.py::test_a[x]", "t.py::test_b[x]"]
    for bench in controller.benchmarks:
        assert bench.as_dict(cprofile=("cumtime", 5)) == {**expected[bench.name], "fullname": bench.fullname}
    assert benchmark_session.drop_interrupted(controller) == []


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
