"""Length-bucketed batching against manual batching: the padding each computes, and the throughput.

A: ``manual`` (consecutive prompts per batch). B: ``bucketed`` (prompts ordered by token length,
then batched; outputs back in workload order). Same model, prompts and batch size, in one process,
each set up once through the plugin's own runner (``run.runner.prepared``), then their rounds
alternate A, B, A, B... after the warmup rounds, so the machine's drift falls on both alike. Prints
per batch size each one's prefill padding fraction (counted from the attention masks the round sent,
as the plugin reports it), its median round, samples/s, and A/B (the median of the per-pair round
ratios: above 1, bucketed is faster). Both must produce the same token ids (asserted). One torch
thread by default (``--threads``). Run: ``HF_HUB_OFFLINE=1 timeout 900 python benchmarks/bucketed.py``.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from statistics import median

from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load
from pytest_llmperf.model.workload import format_workload, load_rows
from pytest_llmperf.run.runner import prepared
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import BUILTIN

CONTENDERS = ("manual", "bucketed")


def interleaved(target, workload, batch_size: int, warmup: int, rounds: int) -> dict:
    """name -> (padding fraction, [round seconds]); the rounds alternate between the contenders."""
    with ExitStack() as stack:
        runs = {name: stack.enter_context(prepared(target, workload, name, batch_size)) for name in CONTENDERS}
        times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        outputs = {}
        for index in range(warmup + rounds):
            for name, (one_round, _) in runs.items():
                target.sync()
                start = time.perf_counter()
                generations = one_round()
                target.sync()
                elapsed = time.perf_counter() - start
                if index >= warmup:
                    times[name].append(elapsed)
                outputs[name] = [sample.token_ids for sample in generations.samples]
        assert outputs["manual"] == outputs["bucketed"], "bucketed and manual produced different token ids"
        return {name: (ctx.padding.fraction(), times[name]) for name, (_, ctx) in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="4,8,16")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds of each, alternating")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (0: torch's default); 1 keeps a shared machine's rounds steady")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, args.max_new_tokens)
    target = load(ModelSpec(BUILTIN, args.device, "float32", "sdpa", "none"))
    workload = format_workload(spec, load_rows(spec), target.tokenizer)
    lengths = sorted(map(len, workload.input_ids))
    print(f"{target.device}, float32, sdpa, {torch.get_num_threads()} torch thread(s): builtin:test, {args.samples} "
          f"prompts of {lengths[0]}-{lengths[-1]} tokens (median {median(lengths):g}), max_new_tokens "
          f"{args.max_new_tokens}; {args.warmup} warmup + {args.rounds} measured rounds each, alternating "
          "manual, bucketed; round = median seconds")
    print("| batch size | padding manual | padding bucketed | round manual | round bucketed | samples/s manual "
          "| samples/s bucketed | manual/bucketed round |")
    print("|---|---|---|---|---|---|---|---|")
    for batch_size in map(int, args.batch_sizes.split(",")):
        figures = interleaved(target, workload, batch_size, args.warmup, args.rounds)
        (pad_a, rounds_a), (pad_b, rounds_b) = (figures[name] for name in CONTENDERS)
        a, b = median(rounds_a), median(rounds_b)
        ratio = median(x / y for x, y in zip(rounds_a, rounds_b))
        print(f"| {batch_size} | {pad_a:.1%} | {pad_b:.1%} | {a:.3f} s | {b:.3f} s | {args.samples / a:.2f} | "
              f"{args.samples / b:.2f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
