"""``pipeline``: the whole prompt list through ``transformers.pipeline("text-generation")`` with ``batch_size``."""

from __future__ import annotations

from functools import cache

from .base import Generations, RunContext, Strategy, generated_part


class PipelineStrategy(Strategy):
    speculative = True

    def setup(self, ctx: RunContext) -> None:
        from transformers import pipeline

        pipe = pipeline("text-generation", model=ctx.model, tokenizer=ctx.tokenizer,
                        pipeline_class=padding_reporting_pipeline())
        pipe.padding = ctx.padding
        ctx.state["pipe"] = pipe

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


@cache
def padding_reporting_pipeline() -> type:
    """transformers' ``TextGenerationPipeline``, reporting each batch's attention mask as its collator
    padded it (what the model is sent) to ``ctx.padding``. Defined on first use: transformers is heavy."""
    from transformers import TextGenerationPipeline

    class PaddingReportingPipeline(TextGenerationPipeline):
        padding = None  # the test's ``PaddingCounter``, set after the pipeline is built

        def forward(self, model_inputs, **forward_params):
            self.padding.sent(model_inputs["attention_mask"])
            return super().forward(model_inputs, **forward_params)

    return PaddingReportingPipeline
