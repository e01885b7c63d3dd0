"""What do the instruments cost a round? One process, rounds alternating with and without them.

A: one round of the plugin's ``manual`` strategy, nothing around it.
B: the same round inside every instrument the plugin runs (``instruments.py``), as the plugin runs
   a case: the heap collected and frozen, one warmup round, then a collection before the measured
   round, garbage collections observed through ``gc.callbacks``, compilations counted, the speed
   probe run after each round, the peak-memory high-water mark reset before each round and read
   after it; set-up and read-out outside the timed region (``runner.round_instruments``).

Rounds alternate A, B, A, B..., so drift in machine speed hits both alike; both produce the same
token ids (asserted). Prints the median round of each and B/A per batch size, and how many
collections the callback saw per round.

    HF_HUB_OFFLINE=1 python benchmarks/instrument_cost.py
"""

from __future__ import annotations

import argparse
import time
from statistics import median

from pytest_llmperf.measure.instruments import resident_bytes
from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load
from pytest_llmperf.model.workload import format_workload, load_rows
from pytest_llmperf.run.runner import prepared, round_instruments
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import BUILTIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch-sizes", default="1,16")
    args = parser.parse_args()

    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, 32)
    target = load(ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none"))
    workload = format_workload(spec, load_rows(spec), target.tokenizer)
    target.ready(resident_bytes)  # its resident baseline, as the session takes it
    print(f"{args.samples} prompts, {args.pairs} alternating pairs per batch size; median round seconds")
    print("| batch size | bare round (A) | round inside the instruments (B) | B/A | collections seen per round |")
    print("|---|---|---|---|---|")
    for batch_size in map(int, args.batch_sizes.split(",")):
        times_a, times_b, collections = [], [], []
        with prepared(target, workload, "manual", batch_size) as (one_round, _):
            expected = one_round()  # warm
            for _ in range(args.pairs):
                start = time.perf_counter()
                got_a = one_round()
                times_a.append(time.perf_counter() - start)

                # As the plugin runs a case: open, one warmup round, then the measured round.
                instruments = round_instruments(target, "freeze", gc_disabled_in_rounds=False)
                for instrument in instruments:
                    instrument.open()
                for _ in ("warmup", "measured"):
                    for instrument in instruments:
                        instrument.before_round()
                    start = time.perf_counter()
                    got_b = one_round()
                    elapsed = time.perf_counter() - start
                    readings = {type(i).__name__: i.after_round(got_b) for i in reversed(instruments)}
                    seen = readings["Collector"]
                times_b.append(elapsed)
                for instrument in instruments:
                    instrument.close()
                collections.append(sum(seen.by_generation))
                assert got_a == got_b == expected
        a, b = median(times_a), median(times_b)
        print(f"| {batch_size} | {a:.4f} | {b:.4f} | {b / a:.3f} | {median(collections):g} |")


if __name__ == "__main__":
    main()
