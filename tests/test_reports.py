"""Reports people look at and keep: the report folder (``--llmperf-report``), the same folder again
from a saved run (``pytest-llmperf report``), and the dashboard exports (``--llmperf-export``)."""

import json
import subprocess
import sys
from pathlib import Path
from statistics import median

import jsonschema
import pytest

from pytest_llmperf.measure.environment import machine_name

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
RUN = ("--llmperf-strategies=manual,pipeline", "--llmperf-batch-sizes=1,4", "--llmperf-rounds=2",
       "--benchmark-json=bench.json")
FIGURES = ("builtin-sdpa-nocompile-float32-manual.png", "builtin-sdpa-nocompile-float32-pipeline.png",
           "builtin-sdpa-nocompile-float32-strategies.png", "builtin-sdpa-nocompile-float32-quality.png",
           "builtin-sdpa-nocompile-float32-latency-throughput.png", "builtin-sdpa-nocompile-float32-memory.png")


def console_script(*args, cwd, block_matplotlib=False):
    """``pytest-llmperf ARGS`` as installed; with ``block_matplotlib``, in a Python where it is missing."""
    script = Path(sys.executable).with_name("pytest-llmperf")
    if block_matplotlib:
        code = ("import sys; sys.modules['matplotlib'] = None; from pytest_llmperf.cli import main; "
                f"sys.exit(main({list(args)!r}))")
        command = [sys.executable, "-c", code]
    else:
        command = [str(script), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def saved_infos(path: Path) -> dict:
    return {bench["fullname"]: bench["extra_info"] for bench in json.loads(path.read_text())["benchmarks"]}


@pytest.fixture(scope="module")
def session_with_a_report(tmp_path_factory):
    """One perf session writing the report folder and both exports, as a user runs it."""
    folder = tmp_path_factory.mktemp("suite")
    (folder / "test_perf.py").write_text(SUITE)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "--llmperf-num-samples=8",
         "--llmperf-max-new-tokens=16", "--llmperf-warmup=0", *RUN, "--llmperf-report=report",
         "--llmperf-export=github-action-benchmark=dashboards/gab,bencher=dashboards/bencher.json"],
        cwd=folder, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder, result.stdout


def test_the_report_folder_holds_tables_figures_and_data(session_with_a_report):
    import torch

    from conftest import resolved_auto_device

    folder, stdout = session_with_a_report
    report = folder / "report"
    assert f"llmperf: report {report} (" in stdout
    markdown = (report / "report.md").read_text()
    assert "| batch size | strategy | length match |" in " ".join(markdown.split())
    assert "| batch size | strategy | TTFT p50 |" in " ".join(markdown.split())
    assert "MB = 2\\*\\*20 bytes" in markdown  # escaped inside the bold title
    # the device the cases ran on (`--llmperf-device auto`: a GPU where there is one) and, on CUDA, its GPUs
    device = resolved_auto_device()
    gpus = f" ({', '.join(torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count()))})" \
        if device.startswith("cuda") else ""
    assert f"\n- **device**: {device}{gpus}" in markdown and "- **software**: python " in markdown
    for figure in FIGURES:
        data = (report / figure).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000, figure
        assert f"]({figure})" in markdown
    infos = saved_infos(folder / "bench.json")
    rows = [json.loads(line) for line in (report / "data.jsonl").read_text().splitlines()]
    hardware = json.loads((folder / "bench.json").read_text())["machine_info"]["llmperf"]["hardware"]
    assert {row.pop("machine") for row in rows} == {machine_name(hardware)}  # "AMD EPYC 7763 ..., 4 CPUs"
    assert {row.pop("case"): row for row in rows} == infos
    with (report / "data.csv").open() as handle:
        header = handle.readline().strip().split(",")
        assert header[0] == "case" and "ttft_ms_p95" in header and len(handle.read().splitlines()) == len(infos)


def test_the_console_script_writes_the_same_report_from_the_saved_run(session_with_a_report):
    folder, _ = session_with_a_report
    result = console_script("report", "bench.json", "--out", "again", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pytest-llmperf: report of 4 cases in again:")
    live, again = folder / "report", folder / "again"
    assert (again / "data.jsonl").read_text() == (live / "data.jsonl").read_text()
    assert (again / "data.csv").read_text() == (live / "data.csv").read_text()
    results = lambda path: path.read_text().split("## Results", 1)[1]  # noqa: E731  (the environment differs)
    assert results(again / "report.md") == results(live / "report.md")
    assert sorted(p.name for p in again.glob("*.png")) == sorted(FIGURES)


def test_a_report_from_the_results_file_shows_the_environment_a_live_one_does(session_with_a_report):
    folder, _ = session_with_a_report
    result = console_script("report", ".llmperf/results.jsonl", "--out", "from-results", cwd=folder)
    assert result.returncode == 0, result.stderr

    def environment(path: Path) -> list[str]:  # the device, CPU, threads, package versions and commit lines
        return [line for line in path.read_text().split("## Results")[0].splitlines()
                if line.startswith("- **") and not line.startswith("- **run**")]

    live = environment(folder / "report" / "report.md")
    assert any(", CPU " in line for line in live) and any(line.startswith("- **software**: python ") for line in live)
    assert environment(folder / "from-results" / "report.md") == live


def test_without_matplotlib_the_report_has_tables_and_data_and_says_why_no_plots(session_with_a_report):
    folder, _ = session_with_a_report
    result = console_script("report", "bench.json", "--out", "plain", cwd=folder, block_matplotlib=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "pytest-llmperf: plots need matplotlib: pip install pytest-llmperf[report]"
    plain = folder / "plain"
    assert sorted(p.name for p in plain.iterdir()) == ["data.csv", "data.jsonl", "report.md"]
    assert "*No figures: plots need matplotlib: pip install pytest-llmperf[report].*" in (plain / "report.md").read_text()


# The formats as their tools read them: github-action-benchmark's BenchmarkResult (src/extract.ts:
# name, value, unit required; range, extra optional strings), Bencher's Metric Format, validated
# against the JSON schema Bencher publishes (https://bencher.dev/bmf.json, vendored in tests/data).
GAB_FIELDS = {"name": str, "value": (int, float), "unit": str, "range": str, "extra": str}
BMF_SCHEMA = json.loads((Path(__file__).parent / "data" / "bencher-bmf.schema.json").read_text())


def check_bmf(document: dict) -> None:
    """Valid against Bencher's schema, and each value within its own bounds (which the schema cannot say)."""
    jsonschema.validate(document, BMF_SCHEMA)
    for measures in document.values():
        for measure in measures.values():
            if "lower_value" in measure or "upper_value" in measure:
                assert measure["lower_value"] <= measure["value"] <= measure["upper_value"], measure


def check_range(entry: dict) -> None:
    """A github-action-benchmark entry's value lies within its range, as printed."""
    if "range" in entry:
        low, high = (float(x) for x in entry["range"].split(" over ")[0].split(" to "))
        assert low <= entry["value"] <= high, entry


def test_the_exports_parse_as_their_tools_read_them_and_carry_every_case(session_with_a_report):
    folder, stdout = session_with_a_report
    cases = {name for name in saved_infos(folder / "bench.json")}
    bigger = json.loads((folder / "dashboards/gab/customBiggerIsBetter.json").read_text())
    smaller = json.loads((folder / "dashboards/gab/customSmallerIsBetter.json").read_text())
    for entry in bigger + smaller:
        assert {"name", "value", "unit"} <= set(entry) <= set(GAB_FIELDS), entry
        assert all(isinstance(entry[key], GAB_FIELDS[key]) for key in entry), entry
        check_range(entry)
    names = [entry["name"] for entry in bigger + smaller]
    assert len(names) == len(set(names))  # one series per name
    assert {name.removesuffix(" @ builtin tokens/s") for name in names if name.endswith(" tokens/s")} == cases
    assert {entry["unit"] for entry in bigger} == {"tokens/s", "samples/s"}
    assert {"ms", "MB"} <= {entry["unit"] for entry in smaller}
    bmf = json.loads((folder / "dashboards/bencher.json").read_text())
    check_bmf(bmf)
    assert set(bmf) == {f"{case} @ builtin" for case in cases}
    infos = saved_infos(folder / "bench.json")
    for case, measures in bmf.items():
        assert {"tokens-per-second", "samples-per-second", "ttft-ms-p95", "peak-memory-mb"} <= set(measures)
        rounds = infos[case.removesuffix(" @ builtin")]["metric_samples"]["ttft_ms_p95"]
        assert measures["ttft-ms-p95"] == {"value": median(rounds), "lower_value": min(rounds),
                                           "upper_value": max(rounds)}
    assert "llmperf: github-action-benchmark export: " in stdout and "llmperf: bencher export: " in stdout


def test_a_p95_export_lies_within_its_bounds_when_the_pooled_p95_lies_above_every_round():
    """One slow request in each round of 8: every round's p95 lies part way to it, the p95 of the
    three rounds pooled (the tables') on it, above every round. The export takes the rounds' p95s
    for the value and the bounds alike."""
    from pytest_llmperf.measure import latency
    from pytest_llmperf.output import exports

    rounds = [[10.0] * 7 + [100.0]] * 3  # TTFT ms of each round's 8 requests
    per_round = [latency.percentiles(values)["p95"] for values in rounds]
    pooled = latency.percentiles([value for values in rounds for value in values])["p95"]
    assert pooled == 100.0 and per_round == [pytest.approx(68.5)] * 3
    record = {"test": "test_perf.py::test_throughput", "timed": True, "extra_info": {
        "model": "builtin", "config": "sdpa-nocompile-float32", "strategy": "manual", "batch_size": 1,
        "device": "cpu", "dtype": "float32", "num_samples": 8, "max_new_tokens": 16, "steady": True,
        "ttft_ms_p95": pooled, "metric_samples": {"ttft_ms_p95": per_round}}}
    document = exports.bencher([record])
    check_bmf(document)
    assert document["test_perf.py::test_throughput[sdpa-nocompile-float32-manual-bs1] @ builtin"]["ttft-ms-p95"] == {
        "value": pytest.approx(68.5), "lower_value": pytest.approx(68.5), "upper_value": pytest.approx(68.5)}
    (entry,) = exports.github_action_benchmark([record])["customSmallerIsBetter"]
    check_range(entry)
    assert entry["value"] == pytest.approx(68.5) and entry["range"] == "68.49 to 68.5 over 3 rounds"
    assert "value: the median of 3 rounds' figures" in entry["extra"]


def test_the_bar_charts_carry_the_rounds_spread_as_error_bars(session_with_a_report, monkeypatch, tmp_path):
    from matplotlib.container import ErrorbarContainer

    from pytest_llmperf.output import plots, saved

    folder, _ = session_with_a_report
    drawn = {}
    save = plots._save

    def error_bars(axis) -> list[list[tuple]]:  # (low, high) of each bar, per set of error bars
        return [[tuple(segment[:, 1]) for segment in container.lines[2][0].get_segments()]
                for container in axis.containers if isinstance(container, ErrorbarContainer)]

    def keep(plt, fig, path):  # what each figure shows, read before it is closed
        drawn[path.name] = ([(axis.get_title(), error_bars(axis)) for axis in fig.axes],
                            [text.get_text() for text in fig.texts])
        return save(plt, fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    run = saved.load(folder / "bench.json")
    plots.draw_all(run.records, tmp_path)
    infos = sorted((r["extra_info"] for r in run.records if r["extra_info"]["strategy"] == "manual"),
                   key=lambda info: info["batch_size"])
    (time_axis, time_bars), (rate_axis, rate_bars) = drawn["builtin-sdpa-nocompile-float32-manual.png"][0]
    assert time_axis.startswith("Total inference time") and rate_axis.startswith("Samples per second")
    assert time_bars == [[pytest.approx((min(i["round_s"]), max(i["round_s"]))) for i in infos]]
    assert rate_bars == [[pytest.approx((8 / max(i["round_s"]), 8 / min(i["round_s"]))) for i in infos]]
    side_by_side = drawn["builtin-sdpa-nocompile-float32-strategies.png"][0]
    assert [len(bars) for _, bars in side_by_side] == [2, 2]  # a set of error bars per strategy, in each panel
    for name in ("builtin-sdpa-nocompile-float32-manual.png", "builtin-sdpa-nocompile-float32-strategies.png"):
        footnotes = drawn[name][1]
        assert any(text.startswith("Error bars: the slowest and the fastest measured round.") for text in footnotes)


def test_the_console_script_exports_from_a_results_file_too(session_with_a_report):
    folder, _ = session_with_a_report
    result = console_script("export", ".llmperf/results.jsonl", "bencher=from-results.json", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert json.loads((folder / "from-results.json").read_text()) == \
        json.loads((folder / "dashboards/bencher.json").read_text())


@pytest.mark.parametrize("args, message", [
    (("report", "missing.json", "--out", "x"), "pytest-llmperf: error: cannot read missing.json: No such file"),
    (("report", "other.json", "--out", "x"), "pytest-llmperf: error: other.json is not a pytest-benchmark run"),
    (("export", "bench.json", "csv=x"), "pytest-llmperf: error: unknown export format 'csv'; valid formats: "
                                        "github-action-benchmark, bencher"),
])
def test_the_console_script_says_what_is_wrong_in_one_line(session_with_a_report, args, message):
    folder, _ = session_with_a_report
    (folder / "other.json").write_text('{"results": []}')
    result = console_script(*args, cwd=folder)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


def test_an_untimed_run_exports_nothing_and_says_so(run_suite):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--benchmark-disable",
                       "--llmperf-export=github-action-benchmark=gab,bencher=b.json", suite=SUITE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["llmperf: github-action-benchmark export: nothing to export, no case was timed "
                                 "(nothing written)", "llmperf: bencher export: nothing to export, *"])


def test_a_bad_export_option_is_a_usage_error(pytester):
    result = pytester.runpytest("--llmperf-export=excel=out.xlsx")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-export: unknown export format 'excel'; valid formats: "
                                 "github-action-benchmark, bencher*"])


def test_a_compile_modes_generation_config_is_saved_as_plain_json():
    """Found on an H200: with --llmperf-compile reduce-overhead the resolved generation config holds a
    transformers ``CompileConfig``, and the report folder failed to write it."""
    import json

    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import CompileConfig

    from pytest_llmperf.model.identity import as_saved, generation_config

    config = GenerationConfig(max_new_tokens=4)
    config.compile_config = CompileConfig(mode="reduce-overhead")
    saved = as_saved(generation_config(config))
    assert json.loads(json.dumps(saved))["compile_config"]["mode"] == "reduce-overhead"


# -- outputs that cannot be written ---------------------------------------------------------------------

@pytest.mark.parametrize("option, in_the_way, message", [
    ("--llmperf-report=blocker/report", "file blocker", "--llmperf-report: cannot write */blocker/report: "
                                                        "*/blocker is a file, not a folder"),
    ("--llmperf-export=bencher=taken.json", "folder taken.json", "--llmperf-export bencher: cannot write "
                                                                 "*/taken.json: it is a folder, not a file"),
    ("--llmperf-export=github-action-benchmark=gab", "file gab",
     "--llmperf-export github-action-benchmark: cannot write */gab: a file is in the way of the folder"),
])
def test_an_output_path_that_cannot_be_written_is_a_usage_error_before_anything_runs(pytester, option, in_the_way,
                                                                                      message):
    kind, name = in_the_way.split()
    (pytester.path / name).mkdir() if kind == "folder" else (pytester.path / name).write_text("")
    pytester.makepyfile(test_perf=SUITE)
    result = pytester.runpytest(option)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert [line for line in result.stderr.lines if line.strip()] == [result.stderr.lines[0]]
    assert not (pytester.path / ".llmperf").exists()  # nothing ran


def test_an_output_that_cannot_be_written_at_the_end_fails_the_run_in_one_line(run_suite, pytester):
    suite = SUITE + '''

def test_something_else_writes_a_file_named_report():
    open("report", "w").close()
'''
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-report=report", suite=suite)
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*= llmperf results =*", f"llmperf: report not written: {pytester.path / 'report'}: "
                                 "File exists", "*= 2 passed* in *"])  # "2 passed, 1 warning" on a busy machine
