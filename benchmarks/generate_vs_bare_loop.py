"""Where a decode step's time goes between a bare forward loop and transformers' ``generate``, in one
process, interleaved: the same shape model, prompt and greedy tokens, the device's clock read per
step (a streamer's ``put`` for ``generate``; after each forward for the loop).

Four ways of decoding, each repeated ``--repeats`` times in turn (A B C D, A B C D, ...), the median
decode step of each run, then the median over runs:

* the bare loop under ``torch.inference_mode()`` (what ``benchmarks/bare_loop.py`` times);
* the bare loop under ``torch.no_grad()`` (what ``generate`` runs under);
* ``model.generate`` as users call it (it enters ``torch.no_grad()`` itself);
* ``model.generate`` inside ``torch.inference_mode()``.

So the gap between the plugin and the bare loop splits into the grad mode and ``generate``'s own
per-step work. CPU only (no synchronisation needed). Run:
``HF_HUB_OFFLINE=1 python benchmarks/generate_vs_bare_loop.py --shape smollm2-135m --threads 1``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

SHAPES = Path(__file__).resolve().parent.parent / "pytest_llmperf" / "model" / "builtin" / "shapes"


class Stamps:
    """A streamer that only reads the clock: the first ``put`` is the prompt, the second the first token."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config_dict = json.loads((SHAPES / f"{args.shape}.json").read_text())
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    ids = torch.randint(0, config.vocab_size, (args.batch_size, args.prompt_tokens))
    greedy = GenerationConfig(do_sample=False, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                              eos_token_id=None, pad_token_id=0)

    def loop(grad_mode) -> float:
        with grad_mode():
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            steps, start = [], time.perf_counter()
            for _ in range(args.new_tokens - 1):
                out = model(input_ids=token, past_key_values=cache, use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
                now = time.perf_counter()
                steps.append(now - start)
                start = now
        return statistics.median(steps)

    def generate(grad_mode=None) -> float:
        stamps = Stamps()
        with grad_mode() if grad_mode else torch.enable_grad():  # generate enters no_grad itself
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=greedy,
                           streamer=stamps)
        return statistics.median(b - a for a, b in zip(stamps.times[1:], stamps.times[2:]))

    ways = {"bare loop, inference_mode": lambda: loop(torch.inference_mode),
            "bare loop, no_grad": lambda: loop(torch.no_grad),
            "generate (its own no_grad)": generate,
            "generate in inference_mode": lambda: generate(torch.inference_mode)}
    for way in ways.values():  # warm-up, untimed
        way()
    steps = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            steps[name].append(way())
    reference = statistics.median(steps["bare loop, inference_mode"])
    print(f"shape:{args.shape}, bs={args.batch_size}, {args.prompt_tokens} prompt tokens, {args.new_tokens} new, "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}; median decode step over {args.repeats} runs")
    print("| decoding | median step | runs | vs bare loop, inference_mode |")
    print("|---|---|---|---|")
    for name, values in steps.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e3:.2f} ms | {', '.join(f'{v * 1e3:.1f}' for v in values)} | "
              f"{median / reference:.3f} |")


if __name__ == "__main__":
    main()
