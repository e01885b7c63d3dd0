"""Check the built-in model with the plugin's own machinery: batch invariance, quality, timings,
and its draft.

Run ``python -m pytest_llmperf.recipes.verify`` (offline, CPU). Over the 200 test prompts, greedy
outputs of the ``manual`` strategy at batch sizes 4..64 (left padded) must equal the batch-size-1
outputs for at least 95% of prompts, with both sdpa and eager attention; continuous batching's
agreement is reported too. Speculative decoding with the built-in draft, and with prompt lookup,
must give the batch-size-1 outputs exactly; their acceptance rates are reported. The same loading,
workload, strategy and comparison code as a perf run.
"""

from __future__ import annotations

import time

from ..measure.compare import compare, score_against_references
from ..measure.speculation import DraftCounter, figures
from ..model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from ..model.loading import load, with_speculation
from ..model.workload import format_workload, load_rows
from ..run.runner import Unsupported, generate_once
from ..settings.config import ModelSpec, WorkloadSpec
from ..settings.options import ASSISTED, BUILTIN, PROMPT_LOOKUP

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
        for mode, draft, lookup in ((ASSISTED, BUILTIN, None), (PROMPT_LOOKUP, None, 10)):
            speculating = with_speculation(target, ModelSpec(BUILTIN, "cpu", "float32", attn, "none",
                                                             speculative=mode, draft=draft,
                                                             prompt_lookup_tokens=lookup))
            counter = DraftCounter(speculating.model)
            start = time.perf_counter()
            generations = generate_once(speculating, workload, "manual", 1, counter=counter)
            seconds = time.perf_counter() - start
            counts = figures([counter.reading()], [generations.generated_tokens])
            agreement = compare(generations, single).exact_match
            ok &= agreement == 1.0
            print(f"[{attn}] {mode} bs=1: exact match to bs=1 {agreement:.3f}, acceptance "
                  f"{counts['draft_tokens_accepted']}/{counts['draft_tokens_proposed']} = "
                  f"{counts['acceptance_rate']:.3f}, {counts['tokens_per_forward']:.2f} tokens per forward "
                  f"({seconds:.2f}s)")
        try:
            batched, seconds = timed(target, workload, "continuous", 16)
            print(f"[{attn}] continuous bs=16: exact match to bs=1 {compare(batched, single).exact_match:.3f} "
                  f"({seconds:.2f}s)")
        except Unsupported as exc:
            print(f"[{attn}] continuous batching skipped: {exc}")
    print("PASS" if ok else f"FAIL: agreement below {MIN_AGREEMENT}, or speculative outputs not the greedy ones")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
