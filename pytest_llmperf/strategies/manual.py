"""``manual``: slice the prompts into batches and call ``model.generate`` on each, padded on the left."""

from __future__ import annotations

from .base import Generations, RunContext, Strategy


class ManualStrategy(Strategy):
    speculative = True

    def generate(self, ctx: RunContext) -> Generations:
        generated = []
        streamer = ctx.latency.streamer()  # None unless this round's latency is recorded
        for texts in ctx.batches():
            inputs = ctx.tokenizer(
                texts, padding=True, add_special_tokens=ctx.workload.add_special_tokens, return_tensors="pt"
            )
            generated.extend(self.generate_batch(ctx, inputs, streamer))
        return ctx.finish(generated)

    @staticmethod
    def generate_batch(ctx: RunContext, inputs, streamer) -> list[list[int]]:
        """One padded batch (a tokenizer's ``BatchEncoding``, on the host) through ``model.generate``,
        its attention mask reported to ``ctx.padding``: each row's new token ids."""
        ctx.padding.sent(inputs["attention_mask"])
        inputs = inputs.to(ctx.target.device)
        sequences = ctx.model.generate(**inputs, generation_config=ctx.generation_config, streamer=streamer,
                                       **ctx.generate_kwargs)
        return sequences[:, inputs["input_ids"].shape[1] :].tolist()
