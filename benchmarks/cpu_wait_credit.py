"""Does crediting the time spent waiting for a CPU recover a quiet machine's figures? The check behind
the gates' rule that a shortfall must hold with that time credited (``metrics.rounds_without_cpu_wait``).

Per condition (quiet; one busy-looping competitor process; one per CPU), ``--repeats`` times, the
conditions interleaved so that drift hits them alike, one fresh ``pytest perf_tests -k test_throughput``
process runs the ``manual`` strategy at ``--batch-sizes``. From its ``--benchmark-json``, per
condition and batch size, over every measured round of every repeat: the median samples/s as
measured, the median share of a round the working threads waited for a CPU (``cpu_wait_share``),
and the median samples/s credited with it (a round's rate divided by the share not spent waiting;
no bound when it waited as long as it ran), with both over the quiet median. Then the speedup of
the largest batch size over bs=1, as measured and credited.

    HF_HUB_OFFLINE=1 python benchmarks/cpu_wait_credit.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from math import inf
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent


def busy() -> None:  # a competitor: one core's worth of pure Python work
    while True:
        pass


def run(args, out: Path) -> list[dict]:
    command = [sys.executable, "-m", "pytest", "perf_tests", "-q", "-p", "no:cacheprovider", "-k", "test_throughput",
               "--llmperf-strategies", "manual", "--llmperf-batch-sizes", args.batch_sizes,
               "--llmperf-num-samples", str(args.samples), "--llmperf-max-new-tokens", str(args.new_tokens),
               "--llmperf-rounds", str(args.rounds), "--llmperf-max-cv", "off", "--benchmark-json", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=900, cwd=REPO,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]


def credited(rate: float, share: float) -> float:
    return rate / (1 - share) if share < 1 else inf


def shown(value: float, digits: int = 2) -> str:
    return "no bound" if value == inf else f"{value:.{digits}f}"


def main() -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    conditions = {"quiet": 0, "1 competitor": 1, f"{cpus} competitors": cpus}
    rounds: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, count in conditions.items():
                competitors = [multiprocessing.Process(target=busy, daemon=True) for _ in range(count)]
                for process in competitors:
                    process.start()
                try:
                    cases = run(args, Path(tmp, f"{repeat}-{count}.json"))
                finally:
                    for process in competitors:
                        process.terminate()
                        process.join()
                for info in cases:
                    rates, shares = info["metric_samples"]["samples_per_s"], info["cpu_wait_share"]
                    rounds.setdefault((name, info["batch_size"]), []).extend(zip(rates, shares))
                print(f"repeat {repeat + 1} of {args.repeats}: {name} done", file=sys.stderr, flush=True)

    sizes = [int(size) for size in args.batch_sizes.split(",")]
    print(f"{cpus} CPUs; manual; {args.samples} prompts, {args.new_tokens} new tokens; {args.rounds} measured "
          f"rounds x {args.repeats} processes per condition; torch's default threads")
    print("| condition | batch size | samples/s | over quiet | waiting for a CPU | credited samples/s | over quiet |")
    print("|---|---|---|---|---|---|---|")
    quiet = {size: median(rate for rate, _ in rounds[("quiet", size)]) for size in sizes}
    speedups = []
    for name in conditions:
        medians = {}
        for size in sizes:
            pairs = rounds[(name, size)]
            rate, share = median(rate for rate, _ in pairs), median(share for _, share in pairs)
            rate_credited = median(credited(rate, share) for rate, share in pairs)
            medians[size] = rate, rate_credited
            print(f"| {name} | {size} | {rate:.2f} | {rate / quiet[size]:.2f} | {share:.0%} | {shown(rate_credited)} | "
                  f"{shown(rate_credited / quiet[size])} |")
        largest = medians[sizes[-1]]
        speedups.append(f"| {name} | {largest[0] / medians[sizes[0]][0]:.2f}x | "
                        f"{shown(largest[1] / medians[sizes[0]][0])}x |")
    print(f"\n| condition | speedup bs={sizes[-1]} over bs={sizes[0]}, as measured | bs={sizes[-1]} credited over "
          f"bs={sizes[0]} as measured (what the gate checks) |")
    print("|---|---|---|")
    print("\n".join(speedups))


if __name__ == "__main__":
    main()
