"""Many machines: saved runs merged into one (``pytest-llmperf merge``), a baseline merged from several
machines gating each against its own cases, the report of a merged run setting the machines side by
side, and the history of a Hub dataset's rows across commits.

Every input comes from one real run of the built-in model on this machine (2 prompts x 4 new tokens),
made once for the module. A second machine is that run with its fingerprint edited (a GPU named
NVIDIA L4, figures scaled), as a CI matrix would bring it: it keeps this machine's host (CPU model
and count), so its name is ``1x NVIDIA L4 (<this host>)`` whether this machine ran on a GPU or not. The sessions compared with a baseline run
in a fresh process with the module run's flags (one torch thread), so that both have the same
threads: torch's inter-op threads cannot be set again in a process that used them.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path
from statistics import median

import pytest

from pytest_llmperf.measure.environment import device_name, machine_name

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
FLAGS = ("-p", "no:cacheprovider", "-p", "no:randomly", "--llmperf-num-samples=2", "--llmperf-max-new-tokens=4",
         "--llmperf-warmup=0", "--llmperf-rounds=3", "--llmperf-threads=1", "--llmperf-strategies=manual")
SCRIPT = str(Path(sys.executable).with_name("pytest-llmperf"))
L4 = {"name": "NVIDIA L4", "memory_mb": 22_700, "capability": "8.9"}


def pytest_in(folder: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *FLAGS, *args], cwd=folder, capture_output=True, text=True,
                          timeout=900)


def console_script(folder: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], cwd=folder, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def here(tmp_path_factory) -> Path:
    """A folder holding the suite and ``here.json``: a real run of it on this machine, at bs=1 and bs=2."""
    folder = tmp_path_factory.mktemp("fleet")
    (folder / "test_perf.py").write_text(SUITE)
    result = pytest_in(folder, "--llmperf-batch-sizes=1,2", "--benchmark-json=here.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return folder


def saved(folder: Path, name: str = "here.json") -> dict:
    return json.loads((folder / name).read_text())


def faster(run: dict, times: float, without_probe: bool = False) -> dict:
    """The run as a machine ``times`` as fast would have measured it; ``without_probe``: saved without
    speed-probe readings (an older pytest-llmperf), so a comparison with it uses the rounds as measured."""
    run = copy.deepcopy(run)
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        for metric in ("tokens_per_s", "samples_per_s"):
            info[metric] *= times
            info["metric_samples"][metric] = [value * times for value in info["metric_samples"][metric]]
        info["round_s"] = [seconds / times for seconds in info["round_s"]]
        if without_probe:
            info["probe_s"] = None
    return run


def on_an_l4(run: dict, times: float = 5.0) -> dict:
    """The run as an L4 machine of the CI matrix brings it: its fingerprint names the GPU."""
    run = faster(run, times)
    hardware = run["machine_info"]["llmperf"]["hardware"]
    hardware.update(device_type="cuda", gpu_count=1, gpus=[L4])
    for bench in run["benchmarks"]:
        bench["extra_info"]["device"] = "cuda:0"
    return run


def hardware_of(run: dict) -> dict:
    return run["machine_info"]["llmperf"]["hardware"]


def l4_on_this_host(run: dict) -> str:
    """The machine name of ``on_an_l4(run)``: the L4 on ``run``'s host (its CPU model and count). Not
    ``1x NVIDIA L4 (<run's machine name>)``: on a GPU machine that name already names its own GPU."""
    hardware = hardware_of(run)
    return f"1x NVIDIA L4 ({hardware.get('cpu_model') or 'unknown CPU'}, {hardware.get('cpu_count')} CPUs)"


def write(folder: Path, name: str, run: dict) -> str:
    (folder / name).write_text(json.dumps(run))
    return name


def merged(folder: Path, name: str, *runs: str) -> str:
    result = console_script(folder, "merge", *runs, "--out", name)
    assert result.returncode == 0, result.stderr
    return name


def test_merging_two_machines_keeps_both_and_every_reader_reads_the_merged_run(here):
    write(here, "l4.json", on_an_l4(saved(here)))
    result = console_script(here, "merge", "here.json", "l4.json", "here.json", "--out", "merged.json")
    assert result.returncode == 0, result.stderr
    this_machine = machine_name(hardware_of(saved(here)))
    l4_machine = l4_on_this_host(saved(here))  # the GPU, on this host
    assert result.stdout.splitlines() == [
        "pytest-llmperf: merged 2 runs (4 cases on 2 machines) into merged.json", f"  {this_machine}",
        f"  {l4_machine}",
        "pytest-llmperf: left out, already merged from an earlier file for the same machine: 2 in here.json"]
    data = saved(here, "merged.json")
    runs = data["llmperf"]["runs"]
    assert [run["machine"] for run in runs] == [this_machine, l4_machine]
    # this machine's own GPUs (None on a CPU run), then the L4
    assert [run["machine_info"]["llmperf"]["hardware"].get("gpus") for run in runs] == [
        hardware_of(saved(here)).get("gpus"), [L4]]
    by_run = {}
    for bench in data["benchmarks"]:
        by_run.setdefault(bench["llmperf_run"], []).append(bench["fullname"])
    assert by_run[0] == by_run[1] and len(by_run[0]) == 2  # the same cases, one set per machine
    assert data["machine_info"] == saved(here)["machine_info"]  # what a reader of one run sees: the first's

    assert console_script(here, "report", "merged.json", "--out", "report").returncode == 0
    bencher = console_script(here, "export", "merged.json", "bencher=bencher.json")
    assert bencher.returncode == 0, bencher.stderr
    series = json.loads((here / "bencher.json").read_text())
    assert len(series) == 4 and {name.rsplit(" on ", 1)[1] for name in series} == {this_machine, l4_machine}
    compare = subprocess.run([str(Path(sys.executable).with_name("pytest-benchmark")), "compare", "merged.json"],
                             cwd=here, capture_output=True, text=True, timeout=300)
    assert compare.returncode == 0 and "test_throughput" in compare.stdout, compare.stderr  # pytest-benchmark's own


def test_rows_of_a_merged_run_carry_each_machines_fingerprint(here):
    from test_hub import committed_rows, recording_hub, run

    write(here, "l4.json", on_an_l4(saved(here)))
    merged(here, "two.json", "here.json", "l4.json")
    with recording_hub() as hub:
        result = run(["push-to-hub", "two.json", "org/perf"], here, hub.url, command=(SCRIPT,))
    assert result.returncode == 0, result.stderr
    _, rows = committed_rows([request for request in hub.received if request[0] == "POST"][-1][3])
    assert len(rows) == 4
    gpus = {row["machine"]: json.loads(row["environment"])["hardware"].get("gpus") for row in rows}
    this_hardware = hardware_of(saved(here))  # its own GPUs: None on a CPU run
    assert gpus == {machine_name(this_hardware): this_hardware.get("gpus"), l4_on_this_host(saved(here)): [L4]}


@pytest.mark.parametrize("bad, message", [
    ("missing.json", "cannot read missing.json: No such file or directory"),
    ("plain.json", "plain.json holds no pytest-llmperf cases: it holds no benchmarks at all"),
    ("text.json", "text.json is not JSON (Expecting value at line 1)"),
    (".llmperf/results.jsonl", "results.jsonl is a results file (.jsonl); merge takes pytest-benchmark JSON"),
])
def test_merge_says_in_one_line_what_is_wrong_with_an_input(here, bad, message):
    (here / "plain.json").write_text(json.dumps({"benchmarks": [], "machine_info": {}}))
    (here / "text.json").write_text("not json")
    result = console_script(here, "merge", "here.json", bad, "--out", "bad.json")
    assert result.returncode == 2 and not (here / "bad.json").exists()
    (line,) = result.stderr.splitlines()
    assert line.startswith("pytest-llmperf: error: ") and message in line, line


def test_the_merged_report_sets_the_machines_side_by_side_with_their_cost(here):
    write(here, "l4.json", on_an_l4(saved(here)))
    merged(here, "fleet.json", "here.json", "l4.json")
    result = console_script(here, "report", "fleet.json", "--out", "fleet", "--price", "L4=0.80,T4=0.35")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pytest-llmperf: report of 4 cases on 2 machines in fleet:")
    figure = here / "fleet" / "machines-builtin-sdpa-nocompile-float32-manual.png"
    assert figure.read_bytes().startswith(b"\x89PNG") and figure.stat().st_size > 20_000
    report = (here / "fleet" / "report.md").read_text()
    assert "](machines-builtin-sdpa-nocompile-float32-manual.png)" in report
    this_hardware = hardware_of(saved(here))
    # the figures' and tables' short name: a GPU machine's GPUs, a CPU machine's whole name (machines.short_names)
    this_machine = device_name(this_hardware) if this_hardware.get("device_type") == "cuda" else \
        machine_name(this_hardware)
    table = report.split("**Best configuration per machine: builtin | builtin:test, 2 samples, max_new_tokens 4**")[1]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.split("\n\n")[1].splitlines()[2:]]
    infos = {bench["extra_info"]["batch_size"]: bench["extra_info"] for bench in saved(here, "l4.json")["benchmarks"]}
    best = max(infos.values(), key=lambda info: info["samples_per_s"])
    mark = "~" if best["steady"] is False else ""
    cost = 0.80 / (best["tokens_per_s"] * 3600) * 1e6
    assert rows[0] == ["1x NVIDIA L4", f"sdpa-nocompile-float32 manual bs={best['batch_size']}",
                       f"{mark}{best['samples_per_s']:,.2f}", f"{mark}{best['tokens_per_s']:,.1f}", "1.00x",
                       "identical", "0.80", f"{mark}{cost:,.4g}"]
    assert rows[1][0] == this_machine and rows[1][4] == "0.20x" and rows[1][6:] == ["-", "-"]  # 5x slower, no price
    assert f"No price for {device_name(this_hardware)}: give " in report  # its GPUs, or on a CPU run its CPU model
    assert "A price matches no machine here: T4." in report
    # one machine's own figures: its own report, from the merged run
    one = console_script(here, "report", "fleet.json", "--out", "l4", "--machine", "L4")
    assert one.returncode == 0, one.stderr
    assert (here / "l4" / "builtin-sdpa-nocompile-float32-manual.png").exists()
    assert " on cuda:0 " in (here / "l4" / "report.md").read_text()


def test_a_baseline_merged_from_two_machines_fails_a_case_against_its_own_machine(here):
    """This machine's baseline cases are ten times as fast (and carry no probe readings, so the rounds
    are compared as measured); the L4's are as measured here. Compared with the L4's, nothing would fail."""
    this = write(here, "fast-here.json", faster(saved(here), 10, without_probe=True))
    write(here, "l4-as-here.json", {**on_an_l4(saved(here), times=1.0)})
    baseline = merged(here, "gate.json", "l4-as-here.json", this)
    result = pytest_in(here, "--llmperf-batch-sizes=1", f"--llmperf-baseline={baseline}")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "tokens/s vs baseline: " in result.stdout and "): regressed; tolerance 10%; baseline run gate.json" in \
        result.stdout
    assert "environment: hardware identical" in result.stdout


def test_each_machine_is_compared_with_its_own_cases_and_one_missing_is_named(here):
    """This machine's bs=1 case as measured, the L4's ten times as fast (a regression, were this machine
    compared with it); bs=2 only on the L4: no baseline for this hardware, which passes."""
    this = saved(here)
    this["benchmarks"] = [bench for bench in this["benchmarks"] if bench["extra_info"]["batch_size"] == 1]
    baseline = merged(here, "own.json", write(here, "here-bs1.json", this), write(here, "l4-fast.json", on_an_l4(
        saved(here), times=10.0)))
    result = pytest_in(here, "--llmperf-batch-sizes=1,2", f"--llmperf-baseline={baseline}", "--llmperf-tolerance=0.5")
    assert result.returncode == 0, result.stdout[-3000:]
    own = median(this["benchmarks"][0]["extra_info"]["metric_samples"]["tokens_per_s"])
    bs1 = next(line for line in result.stdout.splitlines() if "manual-bs1] | tokens/s" in line)
    assert bs1.split("|")[3].strip() == f"{own:.4g}"  # its own machine's figure, not the L4's
    this_machine = machine_name(hardware_of(this))
    assert any(line.startswith("| test_throughput[sdpa-nocompile-float32-manual-bs2] | timing ")
               and line.rstrip(" |").endswith("| no baseline for this hardware") for line in result.stdout.splitlines())
    assert (f"no baseline for this hardware: this machine is {this_machine}; the baseline has this case on "
            f"{l4_on_this_host(this)} (its timing is judged once a baseline from this machine is merged in"
            in result.stdout)


def rows_at(commit: str, day: int, rows: list[dict], slower: float = 1.0, case: str = "", machine: str = "") -> list[dict]:
    """The rows as a push at ``commit`` would have written them, ``case``'s rounds on ``machine`` ``slower``
    times as slow. Each machine's push has its own run id, ``<commit>-m<index>`` (the machines in name order:
    names need not differ in their first characters, e.g. ``1x NVIDIA H200 (...)`` and ``1x NVIDIA L4 (...)``)."""
    index = {name: number for number, name in enumerate(sorted({row["machine"] for row in rows}))}
    pushed = []
    for row in rows:
        row = {**row, "run_id": f"{commit}-m{index[row['machine']]}", "timestamp": f"2026-11-{day:02d}T10:00:00+00:00",
               "commit": json.dumps({"id": commit * 8, "time": f"2026-11-{day:02d}T09:00:00+00:00", "dirty": False})}
        if case and row["case"].endswith(case) and row["machine"] == machine:
            samples = json.loads(row["metric_samples"])
            samples["tokens_per_s"] = [value / slower for value in samples["tokens_per_s"]]
            row.update(metric_samples=json.dumps(samples), tokens_per_s=row["tokens_per_s"] / slower)
        pushed.append(row)
    return pushed


def test_the_history_of_three_commits_flags_a_planted_regression(here):
    """A folder of the dataset's files: three commits, each pushed from this machine and the L4. At the
    third, this machine's bs=2 case generates at a tenth of the speed; nothing else changes."""
    from pytest_llmperf.output import hub
    from pytest_llmperf.output import saved as saved_runs

    write(here, "l4.json", on_an_l4(saved(here)))
    rows = []
    for name in ("here.json", "l4.json"):
        path = hub.write_rows(saved_runs.load(here / name), here / "pushed")
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    dataset = here / "dataset"
    this_machine = machine_name(hardware_of(saved(here)))
    for commit, day, slower in (("a", 1, 1.0), ("b", 2, 1.0), ("c", 3, 10.0)):
        folder = dataset / "runs" / f"2026-11-{day:02d}"
        folder.mkdir(parents=True)
        pushed = rows_at(commit, day, rows, slower, case="manual-bs2]", machine=this_machine)
        for run_id in {row["run_id"] for row in pushed}:  # a file per push, as the Hub dataset holds them
            with (folder / f"{run_id}.jsonl").open("w") as handle:
                handle.writelines(json.dumps(row) + "\n" for row in pushed if row["run_id"] == run_id)
    result = console_script(here, "report", "dataset", "--out", "history")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("pytest-llmperf: history of 12 rows (2 cases, 3 commits, 2 machines) in "
                                             "history: 4 files; 1 regression flagged (tokens_per_s)")
    report = (here / "history" / "history.md").read_text()
    regressions = report.split("## Regressions (1)")[1].split("##")[0]
    (row,) = [line for line in regressions.splitlines() if line.startswith("| test_")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["test_perf.py::test_throughput[sdpa-nocompile-float32-manual-bs2] @ builtin", this_machine,
                         "bbbbbbbb", "cccccccc"]
    assert cells[6] == "-90.0%"
    for name in ("history-test_throughput-sdpa-nocompile-float32-manual-bs1-builtin.png",
                 "history-test_throughput-sdpa-nocompile-float32-manual-bs2-builtin.png"):
        assert (here / "history" / name).read_bytes().startswith(b"\x89PNG") and f"]({name})" in report
    points = (here / "history" / "history.csv").read_text().splitlines()
    assert len(points) == 1 + 12 and sum(",regressed," in line for line in points) == 1


def test_a_session_with_a_price_reports_its_cost_per_million_tokens(run_suite, pytester):
    """One machine, the price in the ini file: the session's report folder has the Machines section."""
    import torch

    from conftest import resolved_auto_device
    from pytest_llmperf.measure.environment import cpu_model

    device = resolved_auto_device()
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else cpu_model()
    pytester.makeini(f"[pytest]\nllmperf_price = {name}=0.50\n")
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-num-samples=2",
                       "--llmperf-max-new-tokens=4", "--benchmark-json=one.json", "--llmperf-report=report")
    result.assert_outcomes(passed=1)
    (info,) = [bench["extra_info"] for bench in saved(pytester.path, "one.json")["benchmarks"]]
    report = (pytester.path / "report" / "report.md").read_text()
    row = next(line for line in report.splitlines() if "| sdpa-nocompile-float32 manual bs=1 |" in line)
    cost = 0.50 / (info["tokens_per_s"] * 3600) * 1e6
    assert row.rstrip(" |").endswith(f"| 0.50 | {'~' if info['steady'] is False else ''}{cost:,.4g}")
