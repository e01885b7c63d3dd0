"""Continuous batching: what ``generate_batch`` costs per call, beyond the batching itself.

A: the ``continuous`` strategy (one ``generate_batch`` call per round, which starts and stops the
manager). B: ``continuous_serving`` (the same manager kept running; a round submits the prompts
and collects the results). Same model, prompts, cache size and concurrency limit, in one process,
alternating A, B, A, B... Prints per batch size and generation length the median round of each,
A - B (the per-call cost) and A/B. Both must produce the same token ids (asserted). Run:
``HF_HUB_OFFLINE=1 python benchmarks/continuous_call_cost.py``.
"""

from __future__ import annotations

import argparse
from statistics import median

from continuous_kv_sizing import (
    alternate,  # benchmarks/ is on sys.path when run as a script
)

from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load
from pytest_llmperf.model.workload import format_workload, load_rows
from pytest_llmperf.settings import registry
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import BUILTIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--max-new-tokens", default="1,32")
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2, help="A/B repetitions per row")
    args = parser.parse_args()

    target = load(ModelSpec(BUILTIN, args.device, "float32", "sdpa", "none"))
    print(f"{target.device}, float32, sdpa: {args.samples} prompts; {args.warmup} warmup + {args.rounds} timed "
          f"rounds per run, {args.pairs} A/B pairs alternating; medians in seconds")
    print("| max_new_tokens | batch size | round A (generate_batch) | round B (serving) | A - B | A/B |")
    print("|---|---|---|---|---|---|")
    for max_new_tokens in map(int, args.max_new_tokens.split(",")):
        spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, max_new_tokens)
        workload = format_workload(spec, load_rows(spec), target.tokenizer)
        for batch_size in map(int, args.batch_sizes.split(",")):
            figures = alternate({"A": lambda: registry.create("continuous"),
                                 "B": lambda: registry.create("continuous_serving")},
                                target, workload, batch_size, args.warmup, args.rounds, args.pairs)
            a, b = (median(round_s for _, round_s, _ in figures[name]) for name in ("A", "B"))
            print(f"| {max_new_tokens} | {batch_size} | {a:.3f} | {b:.3f} | {a - b:.3f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
