"""How merging, the merged report and the history report grow: time and peak memory at several sizes.

Synthetic saved runs, written by this script: pytest-benchmark JSON files whose every benchmark carries
the full ``extra_info`` a real case saves (every key of ``measure.results.EXTRA_INFO``, with the
per-round lists of 3 measured rounds, identity, causes and environment), pytest-benchmark's stats and
options, so a file is as large as a real one (about 6 KB a case). A run holds 1,000 cases: 10 tests x
2 configurations x 5 strategies x 10 batch sizes; every 4 runs are the 4 shards of one machine (each
shard its own 10 tests), so 100 runs are 25 machines of 4,000 cases each.

For each size, in a fresh process each, twice (``--repeats``): the least wall time and CPU time (user +
system, from ``getrusage``: what a neighbour on the shared machine cannot add to) and the peak resident
memory, with the wall time of the phases (read, data files, figures; read, judge, figures):

* ``merge``: ``pytest-llmperf merge RUN... --out merged.json``;
* ``report``: ``pytest-llmperf report merged.json --out DIR --price ...``: the tables (one per machine
  and configuration), the data files, the machines side by side (the Machines section and a figure per
  configuration and strategy, a bar per machine and batch size);
* ``history``: ``pytest-llmperf report DATASET --out DIR`` over a folder of Hub rows (one file per
  machine and commit, as pushes add them): 4 machines x 50 cases x N commits, each point judged
  against the previous one by the gate's test, a figure per case.

    timeout 3600 python benchmarks/merge_scale.py                      # runs 10,25,50,100; rows 2.5k..10k
    timeout 600 python benchmarks/merge_scale.py --runs 2,4 --rows 400,800   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES_PER_RUN = 1000
SHARDS = 4  # runs per machine
TESTS, CONFIGS, STRATEGIES, BATCH_SIZES = 10, ("sdpa", "eager"), ("manual", "pipeline", "keydataset", "continuous",
                                                                  "static"), (1, 2, 4, 8, 16, 24, 32, 48, 64, 96)
HISTORY_MACHINES, HISTORY_CASES = 4, 50


def machine_info(machine: int) -> dict:
    """A GPU machine's fingerprint (as environment.machine_info writes it), and pytest-benchmark's part."""
    gpu = ("NVIDIA A10G", "NVIDIA L4", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "Tesla T4")[machine % 5]
    return {"node": f"runner-{machine}", "machine": "x86_64", "system": "Linux", "python_version": "3.11.7",
            "cpu": {"brand_raw": "AMD EPYC 7R32", "count": 8},
            "llmperf": {"hardware": {"device_type": "cuda", "cpu_model": f"AMD EPYC 7R32 #{machine}", "cpu_count": 8,
                                     "cpus_available": 8, "torch_num_threads": 8, "torch_num_interop_threads": 8,
                                     "gpu_count": 1, "gpus": [{"name": gpu, "memory_mb": 23028, "capability": "8.6"}]},
                        "software": {"python": "3.11.7", "torch": "2.13.0", "transformers": "5.24.0",
                                     "tokenizers": "0.23.3", "datasets": "5.2.0", "accelerate": "1.15.0",
                                     "flash-attn": None, "kernels": None, "cuda_runtime": "12.8",
                                     "nvidia_driver": "575.57"}}}


def extra_info(rng: random.Random, config: str, strategy: str, batch_size: int, speed: float) -> dict:
    """Every extra_info key a real case saves, with plausible values (3 measured rounds)."""
    from pytest_llmperf.measure.results import extra_info_keys

    info = dict.fromkeys(sorted(extra_info_keys()))
    rounds = [48 / (speed * batch_size ** 0.7) * rng.uniform(0.97, 1.03) for _ in range(3)]
    tokens = [1536 - rng.randrange(3) for _ in rounds]
    round_median = sorted(rounds)[1]
    per_ms = {f"{name}_{stat}": rng.uniform(5, 500) for name in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "queue_ms")
              for stat in ("mean", "p50", "p90", "p95", "p99")}
    info.update(per_ms)
    info.update({
        "model": "builtin", "config": f"{config}-nocompile-float32", "strategy": strategy, "batch_size": batch_size,
        "attn_implementation": config, "compile_mode": "none", "dtype": "float32", "device": "cuda:0",
        "num_samples": 48, "dataset": "builtin", "split": "test", "max_new_tokens": 32, "prompt_tokens": None,
        "config_hash": f"{hash(config) & 0xffffffffffff:012x}", "workload_hash": "5f3a9c2b7d10",
        "generated_tokens": 1536, "tokens_per_s": sorted(tokens)[1] / round_median, "samples_per_s": 48 / round_median,
        "speedup_vs_bs1": batch_size ** 0.7, "similarity_to_bs1": 1.0, "exact_match_to_bs1": 1.0,
        "length_match_to_bs1": 1.0, "similarity_to_reference": 0.894, "exact_match_to_reference": 0.0,
        "references_missing": 0, "load_time_s": 1.2, "round_s": rounds, "tokens_per_round": tokens, "warmup_rounds": 1,
        "torch_num_threads": 8, "torch_num_interop_threads": 8, "cpus_available": 8, "load_avg_1m": 0.4,
        "timer": "time.perf_counter", "round_cv": 0.02, "first_round_ratio": 1.01, "steady": True,
        "probe_s": [0.0101, 0.0102, 0.0100], "compilations_in_measured_rounds": 0, "gc_mode": "freeze",
        "gc_enabled_in_rounds": False, "gc_frozen_objects": 123456,
        "gc_collections_in_measured_rounds": {"gen0": 0, "gen1": 0, "gen2": 0}, "gc_pause_s_in_measured_rounds": 0.0,
        "peak_memory_mb": 812.4, "peak_memory_above_model_mb": 12.5, "peak_memory_reserved_mb": 900.0,
        "memory_measure": "torch.cuda.max_memory_allocated", "latency_source": "measured rounds", "latency_rounds": 3,
        "latency_requests": 144, "telemetry": "nvml, every 20 ms", "telemetry_samples": 40,
        "energy_j_rounds": [r * 70 for r in rounds], "energy_per_token_j": 0.05,
        "identity": {"model": "builtin", "dataset": "builtin", "split": "test", "num_samples": 48,
                     "prompts": "9c1b2e4f5a6d", "max_new_tokens": 32, "decoding": "greedy", "dtype": "float32",
                     "attn_implementation": config, "compile_mode": "none", "strategy": strategy,
                     "batch_size": batch_size},
        "causes": {"model_revision": "local:1a2b3c4d5e6f", "tokenizer": "2b3c4d5e6f7a", "chat_template": "3c4d5e6f7a8b",
                   "prompt_token_ids": "4d5e6f7a8b9c", "prompt_token_ids_per_prompt": "5e6f7a8b9c0d",
                   "generation_config": "6f7a8b9c0d1e",
                   "generation_config_resolved": {"do_sample": False, "max_new_tokens": 32, "eos_token_id": 2}},
        "outputs": "7a8b9c0d1e2f",
        "metric_samples": {"tokens_per_s": [t / s for t, s in zip(tokens, rounds)],
                           "samples_per_s": [48 / s for s in rounds], "peak_memory_mb": [812.4, 812.1, 812.3],
                           "energy_per_token_j": [0.05, 0.051, 0.049], "ttft_ms_p95": [40.1, 41.2, 39.8],
                           "itl_ms_p95": [9.1, 9.3, 9.0], "e2e_ms_p95": [310.0, 312.5, 308.9]},
    })
    return info


def saved_run(run: int, seed: int = 0) -> dict:
    """One synthetic --benchmark-json file: machine ``run // SHARDS``, shard ``run % SHARDS``."""
    rng = random.Random(seed * 100_003 + run)
    machine, shard = divmod(run, SHARDS)
    speed = 1.0 + machine % 5
    benchmarks = []
    for test in range(TESTS):
        for config in CONFIGS:
            for strategy in STRATEGIES:
                for batch_size in BATCH_SIZES:
                    info = extra_info(rng, config, strategy, batch_size, speed)
                    rounds = info["round_s"]
                    param = f"{config}-nocompile-float32-{strategy}-bs{batch_size}"
                    name = f"test_shard{shard}_{test}"
                    benchmarks.append({
                        "group": None, "name": f"{name}[{param}]", "fullname": f"perf_tests/test_fleet.py::{name}[{param}]",
                        "params": {"llmperf_config": param}, "param": param, "extra_info": info,
                        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 3, "max_time": 1.0,
                                    "min_time": 5e-06, "warmup": False},
                        "stats": {"min": min(rounds), "max": max(rounds), "mean": sum(rounds) / 3,
                                  "stddev": 0.01, "rounds": 3, "median": sorted(rounds)[1], "iqr": 0.01, "q1": min(rounds),
                                  "q3": max(rounds), "iqr_outliers": 0, "stddev_outliers": 0, "outliers": "0;0",
                                  "ld15iqr": min(rounds), "hd15iqr": max(rounds), "ops": 3 / sum(rounds),
                                  "total": sum(rounds), "data": rounds, "iterations": 1}})
    assert len(benchmarks) == CASES_PER_RUN
    return {"machine_info": machine_info(machine),
            "commit_info": {"id": "4f1c2b3a" * 5, "time": "2026-11-28T10:00:00+00:00", "author_time": None,
                            "dirty": False, "project": "fleet", "branch": "main"},
            "benchmarks": benchmarks, "datetime": f"2026-11-28T10:{run % 60:02d}:00+00:00", "version": "5.2.3",
            "llmperf": {"outputs": {"7a8b9c0d1e2f": [[1, 2, 3, 4]] * 48}}}


def history_rows(commits: int, folder: Path) -> int:
    """A folder of Hub rows: HISTORY_MACHINES machines x HISTORY_CASES cases x ``commits``, a file per
    machine and commit (as pushes add them), written with the plugin's own row writer."""
    from pytest_llmperf.output import hub
    from pytest_llmperf.output.saved import Run

    rng = random.Random(7)
    count = 0
    for commit in range(commits):
        for machine in range(HISTORY_MACHINES):
            records = []
            for case in range(HISTORY_CASES):
                config, strategy = CONFIGS[case % 2], STRATEGIES[case // 2 % 5]
                batch_size = BATCH_SIZES[case // 10 % 10]
                slower = 1.5 if (commit, machine, case) == (commits - 1, 0, 0) else 1.0  # one planted regression
                info = extra_info(rng, config, strategy, batch_size, (1.0 + machine) / slower)
                records.append({"test": f"perf_tests/test_fleet.py::test_{case // 20}", "timed": True,
                                "extra_info": info, "output_ids": None})
            run = Run(records, machine_info(machine), {"id": f"{commit:08x}" * 5, "dirty": False,
                                                       "time": f"2026-{1 + commit // 28:02d}-{1 + commit % 28:02d}T10:00:00"},
                      None, "synthetic")
            stamp = f"2026-{1 + commit // 28:02d}-{1 + commit % 28:02d}T11:00:00+00:00"
            target = folder / "runs" / stamp[:10] / f"{commit:04d}-{machine}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = hub.rows(run, f"{commit:04d}-{machine}", stamp)
            target.write_text("".join(json.dumps(row) + "\n" for row in rows))
            count += len(rows)
    return count


# Where the time goes: these functions are timed (wrapped, nothing else changed) inside the console script.
PHASES = (("read", "pytest_llmperf.output.saved", "load"), ("data", "pytest_llmperf.output.report_folder", "_data"),
          ("figures", "pytest_llmperf.output.plots", "draw_machines"), ("figures", "pytest_llmperf.output.plots", "draw_all"),
          ("rows", "pytest_llmperf.output.history", "read_rows"), ("judge", "pytest_llmperf.output.history", "history"),
          ("history figures", "pytest_llmperf.output.plots", "draw_history"))


def child(argv: list[str]) -> None:
    """In this fresh process: the console script's main, then its wall time, its phases' and its peak
    memory as JSON."""
    import importlib

    from pytest_llmperf.cli import main

    phases: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
        return wrapper

    for name, module, attribute in PHASES:
        module = importlib.import_module(module)
        setattr(module, attribute, timed(name, getattr(module, attribute)))
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime  # the command's, as its wall time
    print(json.dumps({"code": code, "s": seconds, "cpu_s": cpu, "peak_mb": usage.ru_maxrss / 1024,  # KiB on Linux
                      "phases": phases}))


def measured(argv: list[str], timeout: float, repeats: int = 1) -> dict:
    """The least wall time and CPU time of ``repeats`` fresh processes (the machine is shared: a
    neighbour slows a run, never speeds it), with that run's phases, and the highest peak memory."""
    outcomes = [_measured_once(argv, timeout) for _ in range(repeats)]
    best = min(outcomes, key=lambda outcome: outcome["s"])
    return {**best, "cpu_s": min(outcome["cpu_s"] for outcome in outcomes),
            "peak_mb": max(outcome["peak_mb"] for outcome in outcomes)}


def _measured_once(argv: list[str], timeout: float) -> dict:
    result = subprocess.run([sys.executable, __file__, "child", *argv], capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    if outcome["code"] != 0:
        raise SystemExit(f"{argv[0]} exited {outcome['code']}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    outcome["said"] = [line for line in result.stdout.splitlines()[:-1] if line.startswith("pytest-llmperf")]
    return outcome


def _phases(outcome: dict, *names: str) -> str:
    return ", ".join(f"{outcome['phases'].get(name, 0.0):.1f}" for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="10,25,50,100", help="run counts to merge and report (1,000 cases each)")
    parser.add_argument("--rows", default="2500,5000,10000", help="history sizes, in rows (multiples of 200)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for any one step")
    parser.add_argument("--keep", help="a folder to keep the files in (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per step; the least time is shown")
    args = parser.parse_args()
    sizes = [int(n) for n in args.runs.split(",")]
    with tempfile.TemporaryDirectory(prefix="merge-scale-") as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{CASES_PER_RUN} cases per run, {SHARDS} runs per machine; pytest-llmperf from {Path(__file__).parent.parent}")
        start = time.perf_counter()
        for run in range(max(sizes)):
            path = work / f"run{run:03d}.json"
            if not path.exists():
                path.write_text(json.dumps(saved_run(run), indent=4))  # pytest-benchmark indents its files
        one = (work / "run000.json").stat().st_size
        print(f"wrote {max(sizes)} runs in {time.perf_counter() - start:.1f} s ({one / 1e6:.1f} MB each, "
              f"{one / CASES_PER_RUN / 1e3:.1f} KB a case)\n")
        print("| runs | cases | machines | merged MB | merge s (CPU s) | merge peak MB | report s (CPU s; read, data "
              "files, figures) | report peak MB | figures | CPU s per 1,000 cases (merge + report) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for size in sizes:
            runs = [str(work / f"run{run:03d}.json") for run in range(size)]
            merged = work / f"merged{size}.json"
            merge = measured(["merge", *runs, "--out", str(merged)], args.timeout, args.repeats)
            prices = "A10G=1.01,L4=0.80,H100=4.50,A100=3.00,T4=0.53"
            report = measured(["report", str(merged), "--out", str(work / f"report{size}"), "--price", prices],
                              args.timeout, args.repeats)
            figures = len(list((work / f"report{size}").glob("*.png")))
            cases = size * CASES_PER_RUN
            print(f"| {size} | {cases:,} | {-(-size // SHARDS)} | {merged.stat().st_size / 1e6:,.0f} | {merge['s']:.1f} "
                  f"({merge['cpu_s']:.1f}) | {merge['peak_mb']:,.0f} | {report['s']:.1f} ({report['cpu_s']:.1f}; "
                  f"{_phases(report, 'read', 'data', 'figures')}) | {report['peak_mb']:,.0f} | {figures} "
                  f"| {(merge['cpu_s'] + report['cpu_s']) / cases * 1000:.3f} |", flush=True)
            merged.unlink()
        print("\n| rows | commits | cases x machines | history s (CPU s; read, judge, figures) | history peak MB "
              "| figures | regressions flagged |")
        print("|---|---|---|---|---|---|---|")
        for rows in (int(n) for n in args.rows.split(",")):
            commits = rows // (HISTORY_MACHINES * HISTORY_CASES)
            dataset = work / f"dataset{rows}"
            written = history_rows(commits, dataset)
            history = measured(["report", str(dataset), "--out", str(work / f"history{rows}")], args.timeout,
                               args.repeats)
            figures = len(list((work / f"history{rows}").glob("*.png")))
            flagged = history["said"][0].split("; ")[-1].split(" regression")[0]
            print(f"| {written:,} | {commits} | {HISTORY_CASES} x {HISTORY_MACHINES} | {history['s']:.1f} "
                  f"({history['cpu_s']:.1f}; {_phases(history, 'rows', 'judge', 'history figures')}) "
                  f"| {history['peak_mb']:,.0f} | {figures} | {flagged} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2:])
    else:
        main()
