"""How often does the cross-commit throughput gate cry wolf, and how often does it catch a real slowdown?

One baseline run, then ``--runs`` unchanged runs and ``--runs`` runs with a planted slowdown,
alternating (unchanged, slowed, unchanged, ...), each a fresh ``pytest`` process comparing with
the baseline through ``--llmperf-baseline``, as CI would. The planted slowdown makes every round
``--slowdown`` longer (0.25: 25% more time, 20% less throughput) by sleeping at the end of the
round, inside the same registered strategy the baseline ran, so test ids and identities match.

A run "alarms" when any case's throughput gate fails. Printed: per run, which cases regressed,
then the false-alarm rate (unchanged runs that alarmed) and the detection rate (slowed runs that
alarmed), for the plugin's gate as it runs (speed probe on), and recomputed from the same saved
rounds without the probe, to show what the probe buys.

    HF_HUB_OFFLINE=1 python benchmarks/gate_false_alarms.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_llmperf.measure.stats import REGRESSED
from pytest_llmperf.settings.config import Thresholds
from pytest_llmperf.verdicts.regression import metric_checks

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size, check_outputs=False)
'''
CONFTEST = '''
import os
import time

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("planted")
class Planted(ManualStrategy):
    """manual, with every round made LLMPERF_PLANTED_SLOWDOWN longer (a sleep at its end)."""

    def generate(self, ctx):
        start = time.perf_counter()
        generations = super().generate(ctx)
        time.sleep(float(os.environ.get("LLMPERF_PLANTED_SLOWDOWN", "0")) * (time.perf_counter() - start))
        return generations
'''


def run(suite: Path, out: Path, args, slowdown: float, baseline: Path | None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--llmperf-strategies", "planted", "--llmperf-batch-sizes", args.batch_sizes,
               "--llmperf-num-samples", str(args.samples), "--llmperf-rounds", str(args.rounds),
               "--llmperf-warmup", "1", "--benchmark-json", str(out)]
    if baseline is not None:
        command += ["--llmperf-baseline", str(baseline)]
    if args.threads:
        command += ["--llmperf-threads", str(args.threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLMPERF_PLANTED_SLOWDOWN": str(slowdown)}
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=suite, env=env)


def regressed_cases(baseline: dict, now: dict, probe: bool) -> list[str]:
    """The gate's verdicts, recomputed from two saved runs (with or without the speed probe)."""
    before = {b["fullname"]: b["extra_info"] for b in baseline["benchmarks"]}
    found = []
    for bench in now["benchmarks"]:
        info = dict(bench["extra_info"])
        base = dict(before[bench["fullname"]])
        if not probe:
            info.pop("probe_s", None)
            base.pop("probe_s", None)
        if any(check.change.verdict == REGRESSED for check in metric_checks(base, info, Thresholds(), 0.01)):
            found.append(f"bs{info['batch_size']}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="unchanged runs, and as many slowed runs")
    parser.add_argument("--slowdown", type=float, default=0.25)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--threads", type=int, default=0, help="--llmperf-threads for every run (0: torch's own)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp)
        (suite / "test_perf.py").write_text(SUITE)
        (suite / "conftest.py").write_text(CONFTEST)
        base_path = suite / "baseline.json"
        done = run(suite, base_path, args, 0.0, None)
        assert done.returncode == 0, done.stdout[-3000:]
        baseline = json.loads(base_path.read_text())
        print(f"{args.samples} prompts, batch sizes {args.batch_sizes}, 1 warmup + {args.rounds} rounds per run, "
              f"threads: {args.threads or 'torch default'}; planted slowdown: rounds {args.slowdown:.0%} longer; "
              "default gate: tolerance 10%, alpha 0.01")
        print("| run | planted | plugin exit code | regressed (plugin, probe on) | regressed (probe off) |")
        print("|---|---|---|---|---|")
        alarms = {(planted, probe): 0 for planted in (False, True) for probe in (True, False)}
        for index in range(2 * args.runs):
            planted = index % 2 == 1
            out = suite / f"run{index}.json"
            done = run(suite, out, args, args.slowdown if planted else 0.0, base_path)
            now = json.loads(out.read_text())
            with_probe, without = regressed_cases(baseline, now, True), regressed_cases(baseline, now, False)
            alarms[planted, True] += bool(with_probe)
            alarms[planted, False] += bool(without)
            print(f"| {index + 1} | {'yes' if planted else 'no'} | {done.returncode} | {', '.join(with_probe) or '-'} | "
                  f"{', '.join(without) or '-'} |", flush=True)
            assert (done.returncode == 1) == bool(with_probe), "the plugin's own verdict and the recomputed one differ"
    print()
    print("| gate | false alarms (unchanged runs) | detections (slowed runs) |")
    print("|---|---|---|")
    for probe in (True, False):
        print(f"| {'speed probe on (default)' if probe else 'speed probe off'} | {alarms[False, probe]}/{args.runs} | "
              f"{alarms[True, probe]}/{args.runs} |")


if __name__ == "__main__":
    main()
