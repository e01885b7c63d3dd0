"""Why pin torch's threads on a shared machine: rounds with and without a competing process, per thread count.

For each thread count (``--threads``, default 1 and every CPU of this process) and each condition
(quiet; one busy-looping competitor process per ``--competitors``), one fresh
``pytest perf_tests -k test_throughput`` process runs the ``manual`` strategy with
``--llmperf-threads``. Prints the median round, the round-to-round CV and the spread (max/min)
per case, as the plugin recorded them in ``--benchmark-json``.

    HF_HUB_OFFLINE=1 python benchmarks/threads_contention.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent


def busy() -> None:  # a competitor: one core's worth of pure Python work
    while True:
        pass


def run(threads: int, args, out: Path) -> list[dict]:
    command = [sys.executable, "-m", "pytest", "perf_tests", "-q", "-p", "no:cacheprovider", "-k", "test_throughput",
               "--llmperf-strategies", "manual", "--llmperf-batch-sizes", args.batch_sizes,
               "--llmperf-num-samples", str(args.samples), "--llmperf-rounds", str(args.rounds),
               "--llmperf-threads", str(threads), "--llmperf-max-cv", "off", "--benchmark-json", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=900, cwd=REPO,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]


def main() -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=f"1,{cpus}")
    parser.add_argument("--competitors", type=int, default=1)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"{cpus} CPUs; {args.samples} prompts; {args.rounds} measured rounds; competitor: "
          f"{args.competitors} busy-looping process(es)")
    print("| torch threads | competitor | batch size | median round (s) | CV | max/min round |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in map(int, args.threads.split(",")):
            for contended in (False, True):
                competitors = [multiprocessing.Process(target=busy, daemon=True)
                               for _ in range(args.competitors if contended else 0)]
                for process in competitors:
                    process.start()
                try:
                    cases = run(threads, args, Path(tmp, f"{threads}-{contended}.json"))
                finally:
                    for process in competitors:
                        process.terminate()
                        process.join()
                for info in cases:
                    rounds = info["round_s"]
                    print(f"| {threads} | {'yes' if contended else 'no'} | {info['batch_size']} | "
                          f"{median(rounds):.3f} | {info['round_cv']:.1%} | {max(rounds) / min(rounds):.2f} |",
                          flush=True)


if __name__ == "__main__":
    main()
