"""Reports people look at and keep: the report folder (``--llmperf-report``), the same folder again
from a saved run (``pytest-llmperf report``), and the dashboard exports (``--llmperf-export``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    folder, stdout = session_with_a_report
    report = folder / "report"
    assert f"llmperf: report {report} (" in stdout
    markdown = (report / "report.md").read_text()
    assert "| batch size | strategy | length match |" in " ".join(markdown.split())
    assert "| batch size | strategy | TTFT p50 |" in " ".join(markdown.split())
    assert "MB = 2\\*\\*20 bytes" in markdown  # escaped inside the bold title
    assert "- **device**: cpu" in markdown and "- **software**: python " in markdown
    for figure in FIGURES:
        data = (report / figure).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000, figure
        assert f"]({figure})" in markdown
    infos = saved_infos(folder / "bench.json")
    rows = [json.loads(line) for line in (report / "data.jsonl").read_text().splitlines()]
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


def test_without_matplotlib_the_report_has_tables_and_data_and_says_why_no_plots(session_with_a_report):
    folder, _ = session_with_a_report
    result = console_script("report", "bench.json", "--out", "plain", cwd=folder, block_matplotlib=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "pytest-llmperf: plots need matplotlib: pip install pytest-llmperf[report]"
    plain = folder / "plain"
    assert sorted(p.name for p in plain.iterdir()) == ["data.csv", "data.jsonl", "report.md"]
    assert "*No figures: plots need matplotlib: pip install pytest-llmperf[report].*" in (plain / "report.md").read_text()


# The formats as their tools read them: github-action-benchmark's BenchmarkResult (src/extract.ts:
# name, value, unit required; range, extra optional strings), Bencher's Metric Format
# (https://bencher.dev/docs/reference/bencher-metric-format: benchmark -> measure -> value, optional
# lower_value and upper_value).
GAB_FIELDS = {"name": str, "value": (int, float), "unit": str, "range": str, "extra": str}
BMF_FIELDS = {"value": (int, float), "lower_value": (int, float), "upper_value": (int, float)}


def test_the_exports_parse_as_their_tools_read_them_and_carry_every_case(session_with_a_report):
    folder, stdout = session_with_a_report
    cases = {name for name in saved_infos(folder / "bench.json")}
    bigger = json.loads((folder / "dashboards/gab/customBiggerIsBetter.json").read_text())
    smaller = json.loads((folder / "dashboards/gab/customSmallerIsBetter.json").read_text())
    for entry in bigger + smaller:
        assert {"name", "value", "unit"} <= set(entry) <= set(GAB_FIELDS), entry
        assert all(isinstance(entry[key], GAB_FIELDS[key]) for key in entry), entry
    names = [entry["name"] for entry in bigger + smaller]
    assert len(names) == len(set(names))  # one series per name
    assert {name.removesuffix(" @ builtin tokens/s") for name in names if name.endswith(" tokens/s")} == cases
    assert {entry["unit"] for entry in bigger} == {"tokens/s", "samples/s"}
    assert {"ms", "MB"} <= {entry["unit"] for entry in smaller}
    bmf = json.loads((folder / "dashboards/bencher.json").read_text())
    assert set(bmf) == {f"{case} @ builtin" for case in cases}
    for measures in bmf.values():
        assert {"tokens-per-second", "samples-per-second", "ttft-ms-p95", "peak-memory-mb"} <= set(measures)
        for measure in measures.values():
            assert "value" in measure and set(measure) <= set(BMF_FIELDS)
            assert all(isinstance(measure[key], BMF_FIELDS[key]) for key in measure)
    assert "llmperf: github-action-benchmark export: " in stdout and "llmperf: bencher export: " in stdout


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
