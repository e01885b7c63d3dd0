"""Does the harness change what it measures? One process, side by side.

A: a hand-written loop, what a user would write: tokenize a batch (left padded), ``model.generate``,
   slice off the prompt, decode.
B: one round of the plugin's ``manual`` strategy on the same model and prompts.

Rounds alternate A, B, A, B... so drift in machine speed hits both alike. Prints the median
round time of each and the ratio B/A per batch size (1.00 = no overhead), and checks that both
produce the same token ids. Run: ``HF_HUB_OFFLINE=1 python benchmarks/harness_overhead.py``.
"""

from __future__ import annotations

import argparse
import time
from statistics import median

from pytest_llmperf.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.config import ModelSpec, WorkloadSpec
from pytest_llmperf.loading import load
from pytest_llmperf.options import BUILTIN
from pytest_llmperf.runner import prepared
from pytest_llmperf.workload import format_workload, load_rows


def hand_written_round(target, texts, batch_size, generation_config):
    tokenizer, model = target.tokenizer, target.model
    outputs = []
    for start in range(0, len(texts), batch_size):
        inputs = tokenizer(texts[start:start + batch_size], padding=True, add_special_tokens=False,
                           return_tensors="pt")
        new = model.generate(**inputs, generation_config=generation_config)[:, inputs["input_ids"].shape[1]:]
        for row in new.tolist():
            ids = row[:row.index(tokenizer.eos_token_id) + 1] if tokenizer.eos_token_id in row else row
            outputs.append((tuple(ids), tokenizer.decode(ids, skip_special_tokens=True)))
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,8")
    args = parser.parse_args()

    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, 32)
    target = load(ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none"))
    workload = format_workload(spec, load_rows(spec), target.tokenizer)
    generation_config = target.generation_config(spec.max_new_tokens)
    texts = list(workload.texts)
    print(f"{args.samples} prompts, {args.rounds} rounds each, alternating; times are median round seconds")
    print("| batch size | hand-written loop (A) | plugin manual strategy (B) | B/A |")
    print("|---|---|---|---|")
    for batch_size in map(int, args.batch_sizes.split(",")):
        times_a, times_b = [], []
        with prepared(target, workload, "manual", batch_size) as plugin_round:
            hand_written_round(target, texts, batch_size, generation_config)  # warm both paths
            plugin_round()
            for _ in range(args.rounds):
                start = time.perf_counter()
                expected = hand_written_round(target, texts, batch_size, generation_config)
                times_a.append(time.perf_counter() - start)
                start = time.perf_counter()
                generations = plugin_round()
                times_b.append(time.perf_counter() - start)
        got = [(sample.token_ids, sample.text) for sample in generations.samples]
        assert got == expected, "the plugin's round produced different outputs than the hand-written loop"
        a, b = median(times_a), median(times_b)
        print(f"| {batch_size} | {a:.3f} | {b:.3f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
