"""What does recording per-request latency cost a round? One process, rounds alternating without and
with it, per strategy and batch size.

A: one round of the strategy, its latency not recorded (``ctx.latency`` disabled: no streamer, no
   request timestamps).
B: the same round recorded as the plugin records it in the measured rounds (``instruments.Latency``
   in ``rounds`` mode): the round's start stamped, a streamer on every ``generate`` call (or
   continuous batching's per-token timestamps), the readings turned into per-request latencies
   after the round (untimed, as the plugin does).

Rounds alternate A, B, A, B..., so drift in machine speed hits both alike; both produce the same
token ids (asserted). Prints the median round of each, B/A as the median of the pairs' ratios
(tokens/s with over without is its inverse) with its 95% bootstrap interval, and the direct cost: what the
recording itself does per round (the streamer's ``put`` per decoding step, timed on its own over
many calls, times the steps a round takes), over the round. ``--llmperf-latency auto`` records
latency in the measured rounds only where this measured no cost above 1% (docs/benchmarks/).

    HF_HUB_OFFLINE=1 python benchmarks/latency_cost.py [--device cuda --dtype bfloat16]
"""

from __future__ import annotations

import argparse
import time
from statistics import median

from pytest_llmperf.measure.instruments import Latency
from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load
from pytest_llmperf.model.workload import format_workload, load_rows
from pytest_llmperf.run.runner import prepared
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import BUILTIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUILTIN)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--strategies", default="manual,pipeline,continuous")
    args = parser.parse_args()

    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, 32)
    target = load(ModelSpec(args.model, args.device, args.dtype, "sdpa", "none"))
    workload = format_workload(spec, load_rows(spec), target.tokenizer)
    print(f"{args.model} on {target.device} ({target.dtype}), {args.samples} prompts, {args.pairs} alternating pairs; "
          "median round seconds")
    print("| strategy | batch size | round, latency not recorded (A) | round, latency recorded (B) | B/A | 95% CI | "
          "direct cost |")
    print("|---|---|---|---|---|---|---|")
    for strategy in args.strategies.split(","):
        for batch_size in map(int, args.batch_sizes.split(",")):
            times_a, times_b = [], []
            with prepared(target, workload, strategy, batch_size) as (one_round, ctx):
                expected = one_round()  # warm
                recorder = Latency(ctx.latency, strategy, "rounds", 1)
                for _ in range(args.pairs):
                    target.sync()
                    start = time.perf_counter()
                    got_a = one_round()
                    target.sync()
                    times_a.append(time.perf_counter() - start)

                    recorder.before_round()
                    start = time.perf_counter()
                    got_b = one_round()
                    target.sync()
                    times_b.append(time.perf_counter() - start)
                    assert recorder.after_round(got_b), "the round recorded no latency"
                    assert got_a == got_b == expected
                direct = direct_cost_s(ctx, one_round, batch_size)
            a, b = median(times_a), median(times_b)
            ratio, (low, high) = paired_ratio(times_a, times_b)
            shown = "-" if direct is None else f"{direct / a:.2%}"
            print(f"| {strategy} | {batch_size} | {a:.4f} | {b:.4f} | {ratio:.3f} | {low:.3f}-{high:.3f} | {shown} |",
                  flush=True)


def paired_ratio(times_a, times_b) -> tuple[float, tuple[float, float]]:
    """The median of the pairs' B/A ratios, and its 95% bootstrap interval (scipy)."""
    from scipy.stats import bootstrap

    ratios = [b / a for a, b in zip(times_a, times_b)]
    interval = bootstrap((ratios,), median, confidence_level=0.95, method="percentile", random_state=0,
                         n_resamples=2000).confidence_interval
    return median(ratios), (interval.low, interval.high)


def direct_cost_s(ctx, one_round, batch_size: int, calls: int = 20_000) -> float | None:
    """Seconds per round spent reporting tokens through the streamer: its ``put`` timed over many calls
    on a host tensor of one step's tokens, times the steps of one round (counted in a separate round).
    None for a strategy that reports without a streamer (continuous batching's own timestamps)."""
    import torch

    ctx.latency.begin(time.perf_counter())
    streamer = ctx.latency.streamer()
    ctx.latency.end()
    streamer_class = type(streamer)
    steps = 0
    original = streamer_class.put

    def counting_put(self, value):
        nonlocal steps
        steps += 1
        return original(self, value)

    ctx.latency.begin(time.perf_counter())
    streamer_class.put = counting_put
    try:
        one_round()
    finally:
        streamer_class.put = original
        ctx.latency.end()
    if steps == 0:
        return None
    ctx.latency.begin(time.perf_counter())
    streamer = ctx.latency.streamer()
    streamer.put(torch.zeros(batch_size, 8, dtype=torch.long))  # a prompt: the batch starts
    tokens = torch.zeros(batch_size, dtype=torch.long)
    start = time.perf_counter()
    for _ in range(calls):
        streamer.put(tokens)
    per_call = (time.perf_counter() - start) / calls
    ctx.latency.end()
    return per_call * steps


if __name__ == "__main__":
    main()
