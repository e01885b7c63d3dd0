"""``continuous``: transformers' continuous batching (``generate_batch``); batch size = concurrency limit.

The manager is built, sized for the workload and warmed up in ``setup`` (untimed), persists across
the rounds of one test, and is destroyed in ``teardown``. It is sized for the batch, as a server
would be for its concurrency limit (``cache_sizing``): transformers' default sizes the paged KV cache
from free device memory (on an H100, 69 GB for the 1M-parameter built-in model, with bs=1 rounds 1.25x
slower; on CPU, 14 GB of RAM and 3x slower rounds), and its eager/sdpa attention mask, a buffer of
``max_batch_tokens`` (default 8,192) by every cache token, grows with the cache: a cache sized for
the whole workload made continuous batching hold 3.6 GB of mask for 200 prompts of the built-in
model (docs/benchmarks/cpu-2core-continuous-memory.md). Prefix-block sharing is off, so a round
cannot reuse KV blocks cached by the previous round for the very same prompts (the other
strategies get no such reuse either).
"""

from __future__ import annotations

from .base import Generations, RunContext, Strategy

SUPPORTED_ATTN = ("eager", "sdpa", "flash_attention_2")


class ContinuousStrategy(Strategy):
    speculative = "transformers' continuous batching has no speculative decoding (generate_batch takes no draft)"

    def unsupported_reason(self, target) -> str | None:
        if target.spec.attn_implementation not in SUPPORTED_ATTN:
            return (
                f"continuous batching does not support attn_implementation={target.spec.attn_implementation} "
                f"(supported: {', '.join(SUPPORTED_ATTN)})"
            )
        if target.spec.compile_mode != "none" and not target.device.startswith("cuda"):
            return ("continuous batching with torch.compile on CPU recompiles for every batch shape and did not "
                    "finish a round within minutes; run compiled continuous batching on CUDA")
        if not hasattr(target.model, "continuous_batching_context_manager"):
            return "this transformers version has no continuous batching (model.generate_batch)"
        return None

    def setup(self, ctx: RunContext) -> None:
        from transformers import ContinuousBatchingConfig
        from transformers.generation.continuous_batching.utils import WorkloadHints

        compile_config = ctx.target.compile_config()
        on_cuda = ctx.target.device.startswith("cuda")
        hints = WorkloadHints(
            max_prompt_length=max(map(len, ctx.workload.input_ids)),
            max_generated_length=ctx.generation_config.max_new_tokens,
            num_requests=len(ctx.workload.input_ids),
        )
        ctx.state["cb_config"] = config = ContinuousBatchingConfig(
            max_requests_per_batch=ctx.batch_size,
            auto_switch_to_flash=False,  # run the attention that was asked for, never a silent switch
            allow_block_sharing=False,  # no prefix-cache hits on prompts an earlier round already ran
            varlen_compile_config=compile_config,
            decode_compile_config=compile_config,
            **self.cache_sizing(ctx, hints),
        )
        # Create and size the manager now; generate_batch(persistent_manager=True) reuses it. Its warmup
        # captures CUDA graphs / triggers compilation, which only exist on CUDA or with a compile mode.
        warmup = on_cuda or compile_config is not None
        with ctx.model.continuous_batching_context_manager(
            generation_config=ctx.generation_config, continuous_batching_config=config, persistent_manager=True,
            warmup=warmup, workload_hints=hints,
        ):
            pass

    def cache_sizing(self, ctx: RunContext, hints) -> dict:
        """``num_blocks`` and ``max_batch_tokens`` of the manager (None: transformers' default)."""
        return batch_sized(hints, ctx.batch_size)

    def generate(self, ctx: RunContext) -> Generations:
        encoded = ctx.tokenizer(list(ctx.workload.texts), add_special_tokens=ctx.workload.add_special_tokens)
        results = ctx.model.generate_batch(
            inputs=encoded["input_ids"],
            generation_config=ctx.generation_config,
            continuous_batching_config=ctx.state["cb_config"],
            persistent_manager=True,
            progress_bar=False,
            record_timestamps=ctx.latency.enabled,
        )
        return finish(ctx, list(results.values()))  # ordered like the inputs

    def teardown(self, ctx: RunContext) -> None:
        ctx.model.destroy_cached_continuous_batching_manager()


def workload_sized_blocks(hints, concurrency: int | None = None) -> int:
    """KV-cache blocks for ``concurrency`` requests at once (default: every request of the workload),
    twice over. The scheduler activates at most ``max_requests_per_batch`` requests, so with the batch
    size as ``concurrency`` no request waits for blocks or is evicted, and the cache stays above
    the scheduler's safety margin (15% free) that would hold back prefills."""
    from transformers import ContinuousBatchingConfig

    page_size = ContinuousBatchingConfig.page_size
    blocks_per_request = -(-(hints.max_prompt_length + hints.max_generated_length) // page_size)
    return 2 * min(concurrency or hints.num_requests, hints.num_requests) * blocks_per_request


def batch_sized(hints, batch_size: int) -> dict:
    """A cache for ``batch_size`` requests at once (``workload_sized_blocks``), and as many batch
    tokens as ``batch_size`` whole prompts (every prefill in one step, as static batching does), at
    most transformers' default of 8,192 (beyond it, prefills are chunked as they are by default)."""
    from transformers.generation.continuous_batching.cache import (
        PagedAttentionMemoryHandler,
    )

    concurrency = min(batch_size, hints.num_requests)
    return {"num_blocks": workload_sized_blocks(hints, concurrency),
            "max_batch_tokens": min(concurrency * max(hints.max_prompt_length, 1),
                                    PagedAttentionMemoryHandler._default_max_batch_tokens)}


def _timed_through(output) -> bool:
    """Whether a request's stamps describe it whole: a request evicted and rescheduled (no KV blocks
    left) is stamped again when it restarts, and its earlier tokens lose their stamps. The round's
    latency is then not reported rather than half reported."""
    stamps = output.timestamps
    return stamps is not None and len(stamps) == len(output.generated_tokens) and (
        not stamps or output.lifespan[0] <= stamps[0])


def finish(ctx: RunContext, outputs: list) -> Generations:
    """transformers' ``GenerationOutput`` per prompt, in workload order -> ``Generations``."""
    failed = [output.error for output in outputs if getattr(output, "error", None)]
    if failed or len(outputs) != len(ctx.workload.texts):
        raise RuntimeError(f"continuous batching returned {len(outputs)} results; errors: {failed[:3]}")
    if ctx.latency.enabled and all(_timed_through(output) for output in outputs):
        for index, output in enumerate(outputs):  # scheduled when it left the queue; a stamp per token on the host
            ctx.latency.request(index, output.lifespan[0], output.timestamps)
    return ctx.finish([output.generated_tokens for output in outputs])
