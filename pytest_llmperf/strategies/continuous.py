"""``continuous``: transformers' continuous batching (``generate_batch``); batch size = concurrency limit.

The manager persists across the rounds of one test, so its set-up (cache allocation, warm-up,
CUDA graph capture) lands in the warmup round, and is destroyed in teardown.
"""

from __future__ import annotations

from .base import Generations, RunContext, Strategy

SUPPORTED_ATTN = ("eager", "sdpa", "flash_attention_2")


class ContinuousStrategy(Strategy):
    name = "continuous"

    def unsupported_reason(self, target) -> str | None:
        if target.spec.attn_implementation not in SUPPORTED_ATTN:
            return (
                f"continuous batching does not support attn_implementation={target.spec.attn_implementation} "
                f"(supported: {', '.join(SUPPORTED_ATTN)})"
            )
        if target.spec.compile_mode != "none" and not target.device.startswith("cuda"):
            return ("continuous batching with torch.compile on CPU recompiles for every batch shape and did not "
                    "finish a round within minutes; run compiled continuous batching on CUDA")
        if not hasattr(target.model, "generate_batch"):
            return "this transformers version has no continuous batching (model.generate_batch)"
        return None

    def setup(self, ctx: RunContext) -> None:
        from transformers import ContinuousBatchingConfig

        compile_config = ctx.target.compile_config()
        ctx.state["cb_config"] = ContinuousBatchingConfig(
            max_requests_per_batch=ctx.batch_size,
            auto_switch_to_flash=False,  # run the attention that was asked for, never a silent switch
            varlen_compile_config=compile_config,
            decode_compile_config=compile_config,
        )

    def generate(self, ctx: RunContext) -> Generations:
        encoded = ctx.tokenizer(list(ctx.workload.texts), add_special_tokens=ctx.workload.add_special_tokens)
        results = ctx.model.generate_batch(
            inputs=encoded["input_ids"],
            generation_config=ctx.generation_config,
            continuous_batching_config=ctx.state["cb_config"],
            persistent_manager=True,
            progress_bar=False,
        )
        outputs = list(results.values())  # ordered like the inputs
        failed = [output.error for output in outputs if getattr(output, "error", None)]
        if failed or len(outputs) != len(ctx.workload.texts):
            raise RuntimeError(f"continuous batching returned {len(outputs)} results; errors: {failed[:3]}")
        return ctx.finish([output.generated_tokens for output in outputs])

    def teardown(self, ctx: RunContext) -> None:
        ctx.model.destroy_cached_continuous_batching_manager()
