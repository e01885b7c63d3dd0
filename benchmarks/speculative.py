"""Speculative decoding on the built-in model: speedup and acceptance, and what counting costs.

One process, the built-in model at batch size 1 (``manual``), rounds interleaved so that drift in
the machine's speed hits every side alike:

* ``none``: greedy ``generate``;
* ``assisted``: the built-in draft (``--llmperf-speculative assisted``);
* ``prompt-lookup``: n-grams of the prompt, 10 tokens at most (``--llmperf-speculative prompt-lookup``);
* each speculative mode also bare, without the plugin's counting of draft tokens
  (``measure/speculation.py``), for the cost of the counting.

Every speculative round's token ids are asserted equal to the ``none`` round's. Prints the median
round per side, the speedup over ``none`` per pair (its median and range), the acceptance rate and
tokens per forward pass of the main model, and the counted round over the bare one. Then what one
forward pass of one new token costs the model and the draft (a 60-token prompt in the cache), 7
interleaved blocks of 100; ``--only-forward`` runs just that.

    HF_HUB_OFFLINE=1 timeout 1800 python benchmarks/speculative.py --threads 1
"""

from __future__ import annotations

import argparse
import time
from statistics import median

import torch

from pytest_llmperf.measure.speculation import DraftCounter, figures
from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load, with_speculation
from pytest_llmperf.model.workload import format_workload, load_rows
from pytest_llmperf.run.runner import prepared
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import ASSISTED, BUILTIN, PROMPT_LOOKUP
from pytest_llmperf.strategies.base import RunContext
from pytest_llmperf.strategies.manual import ManualStrategy

MODES = ("none", ASSISTED, PROMPT_LOOKUP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--only-forward", action="store_true", help="only the cost of one forward pass")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only_forward:
        forward_cost()
        return

    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, args.max_new_tokens)
    plain = load(ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none"))
    targets = {"none": plain,
               ASSISTED: with_speculation(plain, ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none",
                                                           speculative=ASSISTED, draft=BUILTIN)),
               PROMPT_LOOKUP: with_speculation(plain, ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none",
                                                                speculative=PROMPT_LOOKUP, prompt_lookup_tokens=10))}
    workload = format_workload(spec, load_rows(spec), plain.tokenizer)
    print(f"{args.samples} prompts, max_new_tokens {args.max_new_tokens}, batch size 1, torch threads "
          f"{torch.get_num_threads()}, {args.pairs} interleaved rounds per side after one warmup round each")

    times: dict[str, list[float]] = {}
    counts: dict[str, list] = {mode: [] for mode in MODES[1:]}
    tokens: list[int] = []
    sides = [*MODES, *(f"{mode} bare" for mode in MODES[1:])]
    expected = timed_round(targets["none"], workload)[1]
    for pair in range(-1, args.pairs):  # pair -1: a warmup round per side, not kept
        order = sides[pair % len(sides):] + sides[:pair % len(sides)]  # each side leads in turn
        for name in order:
            mode, counted = name.split()[0], not name.endswith(" bare")
            counter = DraftCounter(targets[mode].model) if counted and mode != "none" else None
            seconds, generations = timed_round(targets[mode], workload, counter, counted)
            assert generations.samples == expected.samples, f"{name}: outputs differ from greedy"
            if pair >= 0:
                times.setdefault(name, []).append(seconds)
                if counter is not None:
                    counts[mode].append(counter.reading())
        if pair >= 0:
            tokens.append(expected.generated_tokens)

    none = times["none"]
    print("\n| decoding | median round | samples/s | speedup vs none (median, range over pairs) | acceptance "
          "| tokens/forward | outputs |")
    print("|---|---|---|---|---|---|---|")
    for mode in MODES:
        ratios = sorted(n / s for n, s in zip(none, times[mode]))
        if mode == "none":
            acceptance, per_forward = "-", "1.00"
        else:
            info = figures(counts[mode], tokens)
            acceptance = (f"{info['acceptance_rate']:.3f} ({info['draft_tokens_accepted']}/"
                          f"{info['draft_tokens_proposed']})")
            per_forward = f"{info['tokens_per_forward']:.2f}"
        print(f"| {mode} | {median(times[mode]):.3f} s | {args.samples / median(times[mode]):.2f} | "
              f"{median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f}) | {acceptance} | {per_forward} | "
              f"identical to none |")
    print("\n| counting draft tokens | counted round / bare round (median, range over pairs) |")
    print("|---|---|")
    for mode in MODES[1:]:
        ratios = sorted(c / b for c, b in zip(times[mode], times[f"{mode} bare"]))
        print(f"| {mode} | {median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f}) |")
    steps = round(sum(tokens) / figures(counts[ASSISTED], tokens)["tokens_per_forward"] / len(tokens))
    per_step = counting_cost()
    print(f"\nthe counting's own work per step (two wrapped calls, the comparison, the running total; best of "
          f"5 x 20,000): {1e6 * per_step:.1f} us; assisted decoding takes {steps} steps per round: "
          f"{1e3 * per_step * steps:.1f} ms per round")
    forward_cost(targets[ASSISTED])


def counting_cost() -> float:
    """Seconds of ``DraftCounter``'s own work per step: a candidate generator whose two methods do
    nothing, wrapped, and called as transformers calls them (8 candidates, the first 5 kept)."""
    import timeit

    class Nothing:
        def get_candidates(self, input_ids, **kwargs):
            return candidates, None

        def update_candidate_strategy(self, input_ids, scores, num_matches):
            pass

    prompt = torch.randint(10, 1000, (1, 60), generator=torch.Generator().manual_seed(0))
    candidates = torch.cat([prompt, torch.arange(8).unsqueeze(0)], dim=1)
    appended = torch.cat([prompt, torch.tensor([[0, 1, 2, 3, 4, 99]])], dim=1)
    class Model:
        def _get_candidate_generator(self):  # what DraftCounter wraps
            return Nothing()

    model = Model()
    with DraftCounter(model) as counter:
        generator = model._get_candidate_generator()

        def step():
            generator.get_candidates(prompt)
            generator.update_candidate_strategy(appended, None, 5)

        seconds = min(timeit.repeat(step, number=20_000, repeat=5)) / 20_000
    assert counter.reading().accepted == 5 * counter.steps  # the counting counted
    return seconds


def forward_cost(target=None, blocks: int = 7, passes: int = 100) -> None:
    """The median time of one forward pass over one new token, with a 60-token prompt in the cache,
    of the model and of its draft, in interleaved blocks."""
    if target is None:
        target = load(ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none", speculative=ASSISTED, draft=BUILTIN))
    models = {"model": target.model, "draft": target.draft.model}
    prompt = torch.randint(10, 1000, (1, 60), generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(blocks):
            for name, model in models.items():
                cache = model(prompt, use_cache=True).cache
                token = torch.tensor([[42]])
                start = time.perf_counter()
                for _ in range(passes):
                    cache = model(token, cache=cache, use_cache=True).cache
                times[name].append((time.perf_counter() - start) / passes)
    print(f"\n| one forward pass, one new token | parameters | layers | median of {blocks} blocks of {passes} |")
    print("|---|---|---|---|")
    for name, model in models.items():
        print(f"| {name} | {sum(p.numel() for p in model.parameters()):,} | {model.config.num_hidden_layers} | "
              f"{1e3 * median(times[name]):.2f} ms |")


def timed_round(target, workload, counter=None, counted=True):
    """One round of ``manual`` at batch size 1: its seconds and outputs. ``counted``: as the plugin
    runs it (``prepared``, with ``counter``); else the strategy alone, nothing counting it."""
    if not counted:
        ctx = RunContext(target, workload, 1, target.generation_config(workload.spec.max_new_tokens),
                         target.generate_kwargs())
        start = time.perf_counter()
        generations = ManualStrategy().generate(ctx)
        return time.perf_counter() - start, generations
    with prepared(target, workload, "manual", 1, counter=counter) as (one_round, _):
        start = time.perf_counter()
        generations = one_round()
        return time.perf_counter() - start, generations


if __name__ == "__main__":
    main()
