"""Does the harness change what it measures? The plugin under pytest against a bare loop, each in a fresh process.

A: a bare, independently written script, what a user would write: load the model with
   transformers, apply the chat template, then per round tokenize each batch (left padded),
   ``model.generate`` greedily, slice off the prompt, cut at EOS, decode. Run as its own process.
B: the plugin as a user runs it: the shipped suite, ``pytest perf_tests``, with the ``manual``
   strategy, in its own process (the pytest heap, pytest-benchmark, every test of the suite),
   read back from ``--benchmark-json``.

Both run the same prompts (the built-in test split's first N), the same batch sizes, warmup and
measured rounds, and report tokens/s the same way: median generated tokens per round over the
median round. Each pair runs A and B back to back, alternating which goes first (A B, B A, ...), so
drift in machine speed hits both alike. The generated token counts must be identical (asserted).
Prints every pair, then the median B/A per batch size (1.000 = the harness costs nothing).

    HF_HUB_OFFLINE=1 python benchmarks/harness_overhead.py --pairs 6
    HF_HUB_OFFLINE=1 python benchmarks/harness_overhead.py --plugin-args="--llmperf-gc none"   # GC left alone
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
MAX_NEW_TOKENS = 32


def bare(args) -> None:
    """Side A, in a fresh process: written from transformers' documentation, not from the plugin."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_llmperf.model.builtin import (  # two file paths, nothing else
        DATASET_FILE,
        MODEL_DIR,
    )

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32, attn_implementation="sdpa").eval()
    rows = load_dataset("json", data_files=str(DATASET_FILE))["train"].train_test_split(test_size=0.2, seed=42)["test"]
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True) for text in rows["sequence"][:args.samples]]
    eos = tokenizer.eos_token_id

    def one_round(batch_size):
        tokens = 0
        for start in range(0, len(prompts), batch_size):
            inputs = tokenizer(prompts[start:start + batch_size], padding=True, add_special_tokens=False,
                               return_tensors="pt")
            with torch.no_grad():
                output = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id)
            for row in output[:, inputs["input_ids"].shape[1]:].tolist():
                ids = row[:row.index(eos) + 1] if eos in row else row
                tokenizer.decode(ids, skip_special_tokens=True)
                tokens += len(ids)
        return tokens

    results = {}
    for batch_size in args.batch_sizes:
        for _ in range(args.warmup):
            one_round(batch_size)
        rounds, tokens = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            tokens.append(one_round(batch_size))
            rounds.append(time.perf_counter() - start)
        results[batch_size] = {"round_s": rounds, "tokens_per_round": tokens}
    Path(args.out).write_text(json.dumps(results))


def run_bare(args, out: Path) -> dict:
    command = [sys.executable, __file__, "--bare", "--out", str(out), "--samples", str(args.samples),
               "--rounds", str(args.rounds), "--warmup", str(args.warmup),
               "--batch-sizes", ",".join(map(str, args.batch_sizes))]
    subprocess.run(command, check=True, capture_output=True, timeout=600, env=side_env(args))
    return {int(k): v for k, v in json.loads(out.read_text()).items()}


def run_plugin(args, out: Path) -> dict:
    command = [sys.executable, "-m", "pytest", "perf_tests", "-q", "-p", "no:cacheprovider",
               "--llmperf-strategies", "manual", "--llmperf-batch-sizes", ",".join(map(str, args.batch_sizes)),
               "--llmperf-num-samples", str(args.samples), "--llmperf-max-new-tokens", str(MAX_NEW_TOKENS),
               "--llmperf-rounds", str(args.rounds), "--llmperf-warmup", str(args.warmup),
               "--benchmark-json", str(out), *shlex.split(args.plugin_args)]
    repo = Path(args.repo)
    env = {**side_env(args), "PYTHONPATH": str(repo)}  # that checkout's plugin
    subprocess.run(command, check=True, capture_output=True, timeout=600, cwd=repo, env=env)
    benchmarks = json.loads(out.read_text())["benchmarks"]
    return {b["extra_info"]["batch_size"]: {"round_s": b["extra_info"]["round_s"],
                                            "tokens_per_round": b["extra_info"]["tokens_per_round"]}
            for b in benchmarks}


def side_env(args) -> dict:
    """Both sides get the same environment; ``--threads`` pins torch's threads through OpenMP's
    variable, which every torch version (and every checkout of the plugin) honours."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    return env


def tokens_per_s(side: dict) -> float:
    return median(side["tokens_per_round"]) / median(side["round_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-sizes", default="1,16", type=lambda text: [int(v) for v in text.split(",")])
    parser.add_argument("--threads", type=int, default=0,
                        help="pin torch's threads on both sides with OMP_NUM_THREADS (0: torch's own)")
    parser.add_argument("--plugin-args", default="", help="extra pytest arguments for side B")
    parser.add_argument("--repo", default=str(REPO), help="the checkout whose plugin and perf_tests B runs")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare(args)

    threads = args.threads or "torch's own"
    print(f"{args.samples} prompts, max_new_tokens {MAX_NEW_TOKENS}, {args.warmup} warmup + {args.rounds} measured "
          f"rounds per process, threads: {threads}; tokens/s = median tokens per round / median round; B args: {args.plugin_args or '-'}")
    print("| pair | order | batch size | bare loop A (tokens/s) | plugin B (tokens/s) | B/A |")
    print("|---|---|---|---|---|---|")
    ratios: dict[int, list[float]] = {size: [] for size in args.batch_sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(1, args.pairs + 1):
            order = "AB" if pair % 2 else "BA"
            sides = {}
            for side in order:
                out = Path(tmp, f"{side}{pair}.json")
                sides[side] = run_bare(args, out) if side == "A" else run_plugin(args, out)
            for size in args.batch_sizes:
                a, b = sides["A"][size], sides["B"][size]
                assert a["tokens_per_round"] == b["tokens_per_round"], (size, a, b)
                ratio = tokens_per_s(b) / tokens_per_s(a)
                ratios[size].append(ratio)
                print(f"| {pair} | {order} | {size} | {tokens_per_s(a):.1f} | {tokens_per_s(b):.1f} | {ratio:.3f} |",
                      flush=True)
    print()
    print("| batch size | pairs | median B/A | min | max |")
    print("|---|---|---|---|---|")
    for size, values in ratios.items():
        print(f"| {size} | {len(values)} | {median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")


if __name__ == "__main__":
    main()
