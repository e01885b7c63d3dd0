"""What a case's time loses when every other pytest-xdist worker is busy: the same case timed alone
and with every worker timing it at once, one worker per device (``--llmperf-xdist-timing on``).

One module per worker (``--dist loadscope`` gives each worker one), each timing the same case
(``manual`` at ``--batch-size``). In the busy run (``-n WORKERS``) the workers load the model, wait for
each other, time the case, and keep generating untimed until the last of them has finished, so every
measured round runs with every other device busy. Alone, the same case runs on one worker (``-n 1``),
on each device in turn (``CUDA_VISIBLE_DEVICES`` on a GPU machine). The runs alternate (alone then busy,
then busy then alone, ...), and the ratio busy/alone of samples/s is taken per repetition and device.

    # the 2-core CPU, 2 workers (one torch thread each)
    HF_HUB_OFFLINE=1 python benchmarks/xdist_interference.py --device cpu --workers 2
    # a GPU machine: a worker per GPU, a real model shape (extra pytest arguments after --)
    HF_HUB_OFFLINE=1 python benchmarks/xdist_interference.py --device cuda --workers 8 --samples 64 \\
        --new-tokens 64 --batch-size 16 -- --llmperf-model shape:smollm2-135m --llmperf-dataset synthetic \\
        --llmperf-dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

CASE = '''
import os
import time
from pathlib import Path

from pytest_llmperf.run.runner import generate_once

SYNC, PARTIES = Path(os.environ["XI_SYNC"]), int(os.environ["XI_PARTIES"])


def wait_for(stage):
    deadline = time.monotonic() + 600
    while len(list(SYNC.glob(stage + "-*"))) < PARTIES and time.monotonic() < deadline:
        time.sleep(0.02)


def test_case(llmperf, strategy, batch_size):
    me = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    target, workload = llmperf.target, llmperf.workload  # loaded before the others are waited for
    (SYNC / f"ready-{me}").touch()
    wait_for("ready")
    llmperf.benchmark(strategy, batch_size)
    (SYNC / f"done-{me}").touch()
    while len(list(SYNC.glob("done-*"))) < PARTIES:  # the load stays on until every other case is timed
        generate_once(target, workload, strategy, batch_size)
'''


def run(suite: Path, workers: int, visible: str | None, args, tag: str) -> list[dict]:
    """One pytest run of ``workers`` modules on as many workers; the timed cases' extra_info."""
    sync = suite / f"sync-{tag}"
    sync.mkdir()
    out = suite / f"{tag}.json"
    modules = [f"test_case_{index}.py" for index in range(workers)]
    command = [sys.executable, "-m", "pytest", *modules, "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "-n", str(workers), "--dist", "loadscope", "--llmperf-xdist-timing", "on",
               "--llmperf-device", args.device, "--llmperf-strategies", "manual",
               "--llmperf-batch-sizes", str(args.batch_size), "--llmperf-num-samples", str(args.samples),
               "--llmperf-max-new-tokens", str(args.new_tokens), "--llmperf-warmup", str(args.warmup),
               "--llmperf-rounds", str(args.rounds), "--llmperf-results-file", "off",
               "--benchmark-json", str(out), *args.threads_flag, *args.pytest_args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XI_SYNC": str(sync), "XI_PARTIES": str(workers)}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    done = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0 or not out.exists():
        sys.exit(f"pytest failed ({tag}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return [bench["extra_info"] for bench in json.loads(out.read_text())["benchmarks"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: a worker per GPU")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="alone/busy pairs, alternating")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: 1 on the CPU, torch's own on a GPU)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per pytest run")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments (model, dataset, dtype)")
    args = parser.parse_args()
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else None)
    args.threads_flag = ["--llmperf-threads", str(threads)] if threads else []
    gpu = args.device.startswith("cuda")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = (visible.split(",") if visible else [str(index) for index in range(args.workers)])[:args.workers]
    alone_on = devices if gpu else [None]  # one alone run per GPU; the CPU is one device

    print(f"{platform.node()}: {os.cpu_count()} CPUs; device {args.device}, {args.workers} workers; "
          f"manual bs={args.batch_size}, {args.samples} prompts x {args.new_tokens} new tokens, warmup "
          f"{args.warmup}, {args.rounds} measured rounds, torch threads {threads or 'torch default'}; "
          f"{' '.join(args.pytest_args)}")
    print("| repeat | run | device | samples/s | median round (s) | round CV | load avg 1m |")
    print("|---|---|---|---|---|---|---|")
    alone: dict[str, list[float]] = {}
    busy: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp)
        for index in range(args.workers):
            (suite / f"test_case_{index}.py").write_text(CASE)
        for repeat in range(args.repeats):
            order = ("alone", "busy") if repeat % 2 == 0 else ("busy", "alone")
            this_alone: dict[str, float] = {}
            this_busy: dict[str, float] = {}
            for kind in order:
                if kind == "alone":
                    for device in alone_on:
                        (info,) = run(suite, 1, device, args, f"alone-{repeat}-{device}")
                        key = f"cuda:{device}" if gpu else info["device"]
                        this_alone[key] = info["samples_per_s"]
                        show(repeat, "alone", key, info)
                else:
                    for info in run(suite, args.workers, visible, args, f"busy-{repeat}"):
                        key = (f"cuda:{devices[int(info['device'].split(':')[1])]}" if gpu else
                               f"{info['device']} ({len(this_busy) + 1} of {args.workers})")
                        this_busy[key] = info["samples_per_s"]
                        show(repeat, f"busy ({args.workers} workers)", key, info)
            for key, value in this_busy.items():
                reference = this_alone[key if gpu else "cpu"]
                busy.setdefault(key, []).append(value)
                alone.setdefault(key, []).append(reference)
                ratios.setdefault(key, []).append(value / reference)
    print()
    print("| device | samples/s alone (median) | samples/s busy (median) | busy/alone per repeat | median busy/alone |")
    print("|---|---|---|---|---|")
    for key in sorted(ratios):
        print(f"| {key} | {median(alone[key]):.2f} | {median(busy[key]):.2f} | "
              f"{', '.join(f'{ratio:.2f}' for ratio in ratios[key])} | {median(ratios[key]):.2f} |")
    every = [ratio for values in ratios.values() for ratio in values]
    print(f"\nmedian busy/alone over every device and repeat: {median(every):.2f}")


def show(repeat: int, run_kind: str, device: str, info: dict) -> None:
    rounds = info["round_s"]
    print(f"| {repeat + 1} | {run_kind} | {device} | {info['samples_per_s']:.2f} | {median(rounds):.3f} | "
          f"{info['round_cv']:.1%} | {info['load_avg_1m']} |", flush=True)


if __name__ == "__main__":
    main()
