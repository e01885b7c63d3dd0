"""Check the built-in model: batch invariance, quality and generation timings.

Run ``python -m pytest_llmperf.builtin.verify`` (offline, CPU). For the 200 test
prompts, greedy outputs at batch sizes 4..64 (left padded) must match the
unpadded batch-size-1 outputs for at least 95% of prompts, with both the sdpa and
eager attention implementations.
"""

from __future__ import annotations

import difflib
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from pytest_llmperf.builtin import MODEL_DIR, PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.builtin.train import load_splits, prompt_ids

MAX_NEW_TOKENS = 32
BATCH_SIZES = [4, 8, 16, 32, 64]
MIN_AGREEMENT = 0.95


def load(attn_implementation: str = "sdpa"):
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(
        MODEL_DIR, dtype=torch.float32, attn_implementation=attn_implementation
    ).eval()
    return model, tokenizer


def cut_at_eos(ids: list[int], eos_token_id: int) -> list[int]:
    """Generated ids up to (excluding) the first EOS; what follows is padding."""
    return ids[: ids.index(eos_token_id)] if eos_token_id in ids else ids


@torch.inference_mode()
def generate_ids(model, tokenizer, prompts: list[list[int]], batch_size: int) -> list[list[int]]:
    """Greedy completions, ``batch_size`` prompts at a time, left padded."""
    outputs = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer.pad(
            {"input_ids": prompts[start : start + batch_size]},
            padding_side="left",
            return_tensors="pt",
        )
        generated = model.generate(
            **batch, max_new_tokens=MAX_NEW_TOKENS, do_sample=False
        )[:, batch["input_ids"].shape[1] :]
        outputs.extend(cut_at_eos(row, tokenizer.eos_token_id) for row in generated.tolist())
    return outputs


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


def continuous_batching_ids(model, tokenizer, prompts: list[list[int]]) -> list[list[int]]:
    from transformers import ContinuousBatchingConfig

    results = model.generate_batch(
        inputs=prompts,
        generation_config=GenerationConfig(
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        continuous_batching_config=ContinuousBatchingConfig(
            max_requests_per_batch=16, auto_switch_to_flash=False
        ),
        progress_bar=False,
    )
    # generate_batch returns results in input order but silently drops failed requests.
    if len(results) != len(prompts):
        raise RuntimeError(f"only {len(results)} of {len(prompts)} requests completed")
    return [cut_at_eos(list(out.generated_tokens), tokenizer.eos_token_id) for out in results.values()]


def main() -> None:
    torch.set_num_threads(2)
    test = load_splits()["test"]
    _, tokenizer = load("sdpa")
    prompts = [prompt_ids(tokenizer, seq) for seq in test[PROMPT_COLUMN]]
    references = list(test[REFERENCE_COLUMN])
    ok = True

    for attn in ["sdpa", "eager"]:
        model, _ = load(attn)
        start = time.perf_counter()
        single = generate_ids(model, tokenizer, prompts, 1)
        print(f"[{attn}] bs=1: {time.perf_counter() - start:.2f}s for {len(prompts)} prompts")
        texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in single]
        similarity = sum(
            difflib.SequenceMatcher(None, t.split(), r.split()).ratio()
            for t, r in zip(texts, references)
        ) / len(texts)
        exact = sum(t == r for t, r in zip(texts, references)) / len(texts)
        print(f"[{attn}] vs reference: exact={exact:.3f} similarity={similarity:.3f}")
        for bs in BATCH_SIZES:
            start = time.perf_counter()
            batched = generate_ids(model, tokenizer, prompts, bs)
            rate = agreement(batched, single)
            ok &= rate >= MIN_AGREEMENT
            print(f"[{attn}] bs={bs}: agreement with bs=1 {rate:.3f} "
                  f"({time.perf_counter() - start:.2f}s)")

        if attn == "sdpa":
            try:
                start = time.perf_counter()
                cb = continuous_batching_ids(model, tokenizer, prompts)
                print(f"[{attn}] continuous batching: agreement with bs=1 "
                      f"{agreement(cb, single):.3f} ({time.perf_counter() - start:.2f}s)")
            except Exception as exc:  # report, do not fail: CB support on CPU varies
                print(f"[{attn}] continuous batching failed: {type(exc).__name__}: {exc}")

    print("PASS" if ok else f"FAIL: agreement below {MIN_AGREEMENT} somewhere")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
