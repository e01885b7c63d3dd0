"""Check the built-in model with the plugin's own machinery: batch invariance, quality, timings.

Run ``python -m pytest_llmperf.recipes.verify`` (offline, CPU). Over the 200 test prompts, greedy
outputs of the ``manual`` strategy at batch sizes 4..64 (left padded) must equal the batch-size-1
outputs for at least 95% of prompts, with both sdpa and eager attention; continuous batching's
agreement is reported too. The same loading, workload, strategy and comparison code as a perf run.
"""

from __future__ import annotations

import time

from ..measure.compare import compare, score_against_references
from ..model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from ..model.loading import load
from ..model.workload import format_workload, load_rows
from ..run.runner import Unsupported, generate_once
from ..settings.config import ModelSpec, WorkloadSpec
from ..settings.options import BUILTIN

MAX_NEW_TOKENS = 32
BATCH_SIZES = (4, 8, 16, 32, 64)
MIN_AGREEMENT = 0.95
TEST_SPLIT = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, None, MAX_NEW_TOKENS)


def timed(target, workload, strategy: str, batch_size: int):
    start = time.perf_counter()
    generations = generate_once(target, workload, strategy, batch_size)
    return generations, time.perf_counter() - start


def main() -> None:
    rows = load_rows(TEST_SPLIT)
    ok = True
    for attn in ("sdpa", "eager"):
        target = load(ModelSpec(BUILTIN, "cpu", "float32", attn, "none"))
        workload = format_workload(TEST_SPLIT, rows, target.tokenizer)
        single, seconds = timed(target, workload, "manual", 1)
        reference = score_against_references(single, workload.references)
        print(f"[{attn}] bs=1: {seconds:.2f}s for {single.num_samples} prompts; vs reference: "
              f"exact={reference.exact_match:.3f} similarity={reference.similarity:.3f}")
        for batch_size in BATCH_SIZES:
            batched, seconds = timed(target, workload, "manual", batch_size)
            agreement = compare(batched, single).exact_match
            ok &= agreement >= MIN_AGREEMENT
            print(f"[{attn}] bs={batch_size}: exact match to bs=1 {agreement:.3f} ({seconds:.2f}s)")
        try:
            batched, seconds = timed(target, workload, "continuous", 16)
            print(f"[{attn}] continuous bs=16: exact match to bs=1 {compare(batched, single).exact_match:.3f} "
                  f"({seconds:.2f}s)")
        except Unsupported as exc:
            print(f"[{attn}] continuous batching skipped: {exc}")
    print("PASS" if ok else f"FAIL: agreement below {MIN_AGREEMENT} somewhere")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
