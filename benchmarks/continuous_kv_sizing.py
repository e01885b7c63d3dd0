"""Continuous batching: transformers' own KV-cache sizing against a cache sized to the workload.

transformers sizes the paged KV cache of ``generate_batch`` from free device memory. This script
runs the plugin's ``continuous`` strategy both ways on the same model, prompts and device, in one
process, alternating A, B, A, B... so drift in machine speed hits both alike:

A: ``num_blocks=None``: transformers' default sizing (free device memory).
B: the plugin's workload sizing: every request of the workload at once, twice over.

Prints per batch size the manager set-up time (untimed in the plugin, reported here), the median
round time, peak memory (CUDA: reserved by torch, reset per run; CPU: the process's
maximum RSS so far, which only grows), and the ratio A/B of round times (> 1: workload sizing is faster). Both
must produce the same token ids (asserted). Run:
``HF_HUB_OFFLINE=1 python benchmarks/continuous_kv_sizing.py --device cuda``.
"""

from __future__ import annotations

import argparse
import resource
import time
from statistics import median

from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load
from pytest_llmperf.model.workload import format_workload, load_rows
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import BUILTIN
from pytest_llmperf.strategies.base import RunContext
from pytest_llmperf.strategies.continuous import (
    ContinuousStrategy,
    workload_sized_blocks,
)


class DefaultSizing(ContinuousStrategy):
    def cache_sizing(self, ctx, hints):
        return {"num_blocks": None, "max_batch_tokens": None}


class WorkloadSizing(ContinuousStrategy):
    def cache_sizing(self, ctx, hints):
        return {"num_blocks": workload_sized_blocks(hints), "max_batch_tokens": None}


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_reserved(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak: only grows


def measure(strategy, target, workload, batch_size, warmup, rounds):
    """Set up (timed here), ``warmup`` untimed rounds, ``rounds`` timed rounds; returns figures and outputs."""
    if target.device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(target.device)
    ctx = RunContext(target, workload, batch_size, target.generation_config(workload.spec.max_new_tokens))
    start = time.perf_counter()
    strategy.setup(ctx)
    target.sync()
    setup_s = time.perf_counter() - start
    try:
        for _ in range(warmup):
            strategy.generate(ctx)
        times = []
        for _ in range(rounds):
            target.sync()
            start = time.perf_counter()
            generations = strategy.generate(ctx)
            target.sync()
            times.append(time.perf_counter() - start)
    finally:
        strategy.teardown(ctx)
    return setup_s, median(times), peak_memory_mb(target.device), generations


def alternate(contenders: dict, target, workload, batch_size: int, warmup: int, rounds: int, pairs: int) -> dict:
    """Run each contender (name -> strategy factory) ``pairs`` times, alternating A, B, A, B...

    Returns name -> list of ``(setup_s, median round_s, peak MB)``, one per pair; asserts that every
    contender produced the same token ids.
    """
    figures, outputs = {name: [] for name in contenders}, {}
    for _ in range(pairs):
        for name, make in contenders.items():
            setup_s, round_s, peak, generations = measure(make(), target, workload, batch_size, warmup, rounds)
            figures[name].append((setup_s, round_s, peak))
            outputs[name] = [sample.token_ids for sample in generations.samples]
    first, *others = outputs.values()
    assert all(other == first for other in others), f"{' and '.join(contenders)} produced different token ids"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2, help="A/B repetitions per batch size")
    parser.add_argument("--batch-sizes", default="1,16,48")
    args = parser.parse_args()

    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, args.max_new_tokens)
    target = load(ModelSpec(BUILTIN, args.device, args.dtype, args.attn, "none"))
    workload = format_workload(spec, load_rows(spec), target.tokenizer)
    print(f"{target.device}, {target.dtype}, attn {args.attn}: {args.samples} prompts, max_new_tokens "
          f"{args.max_new_tokens}; per A/B pair: set-up, {args.warmup} warmup + {args.rounds} timed rounds; "
          f"{args.pairs} pairs, alternating; round = median seconds, set-up = median seconds")
    print("| batch size | set-up A (default) | set-up B (workload) | round A (default) | round B (workload) "
          "| A/B round | peak MB A | peak MB B |")
    print("|---|---|---|---|---|---|---|---|")
    for batch_size in map(int, args.batch_sizes.split(",")):
        figures = alternate({"A": DefaultSizing, "B": WorkloadSizing}, target, workload, batch_size, args.warmup,
                            args.rounds, args.pairs)
        (set_a, round_a, peak_a), (set_b, round_b, peak_b) = (
            [median(column) for column in zip(*figures[name])] for name in ("A", "B"))
        print(f"| {batch_size} | {set_a:.2f} s | {set_b:.2f} s | {round_a:.3f} s | {round_b:.3f} s | "
              f"{round_a / round_b:.2f} | {peak_a:,.0f} | {peak_b:,.0f} |")


if __name__ == "__main__":
    main()
