"""Where continuous batching's memory goes: the paged KV cache against transformers' own buffers.

For each batch size, runs the plugin's ``continuous`` strategy (set-up, one round, tear-down) in one
process and lists what the manager holds, read from its objects: the paged cache tensor, the attention
masks that eager/sdpa need (``[1, 1, max_batch_tokens, cache tokens + max_batch_tokens]`` in the model's
dtype), the other input/output buffers, and the process's memory above the loaded model (CPU: the RSS
high-water mark of set-up plus the round, reset before; CUDA: ``max_memory_allocated``). Beside it,
the same for ``manual``. ``--sizing old`` sizes the cache as the plugin did before issue 16 (every
request of the workload, twice over, transformers' default 8,192 batch tokens). Run:
``HF_HUB_OFFLINE=1 python benchmarks/continuous_memory.py --samples 200 --batch-sizes 1,16,64``.
"""

from __future__ import annotations

import argparse
import gc
import time

import torch

from pytest_llmperf.measure.instruments import (
    MiB,
    _reset_rss_peak,
    _rss_bytes,
    _trim_heap,
)
from pytest_llmperf.model.builtin import PROMPT_COLUMN, REFERENCE_COLUMN
from pytest_llmperf.model.loading import load
from pytest_llmperf.settings.config import ModelSpec, WorkloadSpec
from pytest_llmperf.settings.options import BUILTIN
from pytest_llmperf.strategies.base import RunContext
from pytest_llmperf.strategies.continuous import (
    ContinuousStrategy,
    workload_sized_blocks,
)
from pytest_llmperf.strategies.manual import ManualStrategy


class OldSizing(ContinuousStrategy):
    """The sizing before issue 16: the whole workload twice over, transformers' default batch tokens."""

    def cache_sizing(self, ctx, hints) -> dict:
        return {"num_blocks": workload_sized_blocks(hints), "max_batch_tokens": None}


def tensor_bytes(value, seen: set) -> int:
    """Bytes of the distinct storages held by ``value`` (a tensor, or a dict/list/tuple of them)."""
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(item, seen) for item in value)
    return 0


def manager_buffers(model) -> dict:
    """MB held by the persistent manager: paged cache, attention masks, other IO buffers."""
    processor = model._cached_continuous_batching_manager.batch_processor
    seen: set = set()
    cache = tensor_bytes(processor.cache.cache_tensor, seen)
    ios = processor.inputs_and_outputs
    io_objects = [ios] + [getattr(ios, name) for name in ("host_ios", "device_ios", "io_pairs") if hasattr(ios, name)]
    masks = others = 0
    for io in io_objects:
        for candidate in (io if isinstance(io, (list, tuple)) else [io]):
            for name, value in vars(candidate).items():
                size = tensor_bytes(value, seen)
                if name == "attention_mask":
                    masks += size
                else:
                    others += size
    config = processor.cb_config
    return {"cache": cache / MiB, "masks": masks / MiB, "io": others / MiB, "blocks": processor.cache.num_blocks,
            "batch_tokens": processor.cache.max_batch_tokens, "requests": config.max_requests_per_batch}


def peak_above(target, run) -> float:
    """MB above the loaded model at the peak of ``run()``."""
    gc.collect()
    if target.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(target.device)
        run()
        return (torch.cuda.max_memory_allocated(target.device) - target.model_bytes) / MiB
    _trim_heap()
    _reset_rss_peak()
    run()
    return (_rss_bytes("VmHWM") - target.model_bytes) / MiB


def measure(strategy, target, workload, batch_size) -> tuple[dict, float]:
    ctx = RunContext(target, workload, batch_size, target.generation_config(workload.spec.max_new_tokens))
    held = {}

    def run():
        strategy.setup(ctx)
        try:
            target.sync()
            start = time.perf_counter()
            strategy.generate(ctx)
            target.sync()
            held["round_s"] = time.perf_counter() - start
            if isinstance(strategy, ContinuousStrategy):
                held.update(manager_buffers(target.model))
        finally:
            strategy.teardown(ctx)

    return held, peak_above(target, run)


def main() -> None:
    from pytest_llmperf.model.workload import format_workload, load_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,16,64")
    parser.add_argument("--sizing", choices=("old", "new", "both"), default="both")
    args = parser.parse_args()

    spec = WorkloadSpec(BUILTIN, "test", PROMPT_COLUMN, REFERENCE_COLUMN, args.samples, args.max_new_tokens)
    target = load(ModelSpec(BUILTIN, args.device, args.dtype, args.attn, "none"))
    workload = format_workload(spec, load_rows(spec), target.tokenizer)
    lengths = list(map(len, workload.input_ids))
    sizings = {"old": OldSizing, "new": ContinuousStrategy}
    chosen = list(sizings) if args.sizing == "both" else [args.sizing]
    print(f"{target.device}, {target.dtype}, attn {args.attn}: {len(lengths)} prompts of {min(lengths)}-{max(lengths)} "
          f"tokens, max_new_tokens {args.max_new_tokens}; model resident {target.model_bytes / MiB:,.0f} MB; "
          "MB = 2**20 bytes; peak above the model = set-up + one round")
    print("| batch size | strategy | sizing | blocks | batch tokens | KV cache MB | attention masks MB "
          "| other buffers MB | peak above the model MB | round s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch_size in map(int, args.batch_sizes.split(",")):
        for name in chosen:
            try:
                held, above = measure(sizings[name](), target, workload, batch_size)
            except MemoryError as exc:  # transformers' own check of its footprint against free memory
                print(f"| {batch_size} | continuous | {name} | did not start: {exc} |||||||", flush=True)
                continue
            print(f"| {batch_size} | continuous | {name} | {held['blocks']:,} | {held['batch_tokens']:,} | "
                  f"{held['cache']:,.1f} | {held['masks']:,.1f} | {held['io']:,.1f} | {above:,.1f} | {held['round_s']:.2f} |", flush=True)
        held, above = measure(ManualStrategy(), target, workload, batch_size)
        print(f"| {batch_size} | manual | - | - | - | - | - | - | {above:,.1f} | {held['round_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
