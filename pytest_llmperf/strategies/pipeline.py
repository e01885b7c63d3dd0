"""``pipeline``: the whole prompt list through ``transformers.pipeline("text-generation")`` with ``batch_size``."""

from __future__ import annotations

from .base import Generations, RunContext, Strategy, generated_part


class PipelineStrategy(Strategy):
    speculative = True

    def setup(self, ctx: RunContext) -> None:
        from transformers import pipeline

        ctx.state["pipe"] = pipeline("text-generation", model=ctx.model, tokenizer=ctx.tokenizer)

    def inputs(self, ctx: RunContext):
        return list(ctx.workload.texts)

    def generate(self, ctx: RunContext) -> Generations:
        streamer = ctx.latency.streamer()  # None unless this round's latency is recorded
        outputs = ctx.state["pipe"](
            self.inputs(ctx),
            batch_size=ctx.batch_size,
            return_tensors=True,  # token ids, so generated tokens are counted exactly
            add_special_tokens=ctx.workload.add_special_tokens,
            generation_config=ctx.generation_config,
            **ctx.generate_kwargs,
            **({"streamer": streamer} if streamer else {}),  # the pipeline's batches come in workload order
        )
        pad = ctx.tokenizer.pad_token_id
        generated = [
            generated_part(output[0]["generated_token_ids"], prompt_ids, pad)
            for output, prompt_ids in zip(outputs, ctx.workload.input_ids)
        ]
        return ctx.finish(generated)
