"""Round-to-round steadiness of saved runs: per case, the CV of its measured rounds and the first
round against the median of the others, one column per run.

    pytest perf_tests --benchmark-json run1.json   # as many runs as you like
    python benchmarks/round_steadiness.py run1.json run2.json run3.json

Reads each benchmark's ``extra_info.round_s`` (the measured rounds, warmup excluded). Prints a
Markdown table; the last row counts the cases above the steadiness threshold (``--max-cv``).
"""

from __future__ import annotations

import argparse
import json
from statistics import median

from pytest_llmperf.measure.stats import steadiness


def case_name(bench: dict) -> str:
    info = bench["extra_info"]
    return f"{info['strategy']} bs={info['batch_size']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="--benchmark-json files")
    parser.add_argument("--max-cv", type=float, default=0.10)
    args = parser.parse_args()

    per_run = []
    for path in args.runs:
        with open(path) as handle:
            benchmarks = json.load(handle)["benchmarks"]
        per_run.append({case_name(b): b["extra_info"]["round_s"] for b in benchmarks
                        if b["extra_info"].get("round_s")})
    cases = sorted({case for run in per_run for case in run}, key=lambda c: (c.split()[0], int(c.split("=")[1])))
    header = " | ".join(f"run {i + 1}: CV, first/rest" for i in range(len(per_run)))
    print(f"| case | {header} | median CV |")
    print("|---|" + "---|" * (len(per_run) + 1))
    flagged = [0] * len(per_run)
    for case in cases:
        cells, cvs = [], []
        for i, run in enumerate(per_run):
            if case not in run:
                cells.append("-")
                continue
            result = steadiness(run[case], args.max_cv)
            cvs.append(result.cv)
            flagged[i] += result.steady is False
            ratio = "-" if result.first_round_ratio is None else f"{result.first_round_ratio:.2f}"
            mark = " (!)" if result.steady is False else ""
            cells.append(f"{result.cv:.1%}, {ratio}{mark}")
        print(f"| {case} | {' | '.join(cells)} | {median(cvs):.1%} |")
    print(f"| not steady (CV > {args.max_cv:.0%} or first round an outlier) | "
          + " | ".join(f"{n}/{len(run)}" for n, run in zip(flagged, per_run)) + " | |")


if __name__ == "__main__":
    main()
