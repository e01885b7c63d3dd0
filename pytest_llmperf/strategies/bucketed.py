"""``bucketed``: length-bucketed ``manual``. The prompts are tokenized, ordered by token length
(longest first; equal lengths keep workload order) and cut into batches of ``batch_size``, so each
batch holds prompts of similar length and pads less; each batch goes through ``model.generate``,
padded on the left, and the outputs are put back in workload order. Tokenizing, ordering and
restoring are inside the timed round, as ``manual``'s tokenizing is.

Longest first: the batch that needs the most memory runs first, so a batch size that does not fit
fails at the first batch (the ``max`` batch-size search probes the longest prompts too).
"""

from __future__ import annotations

from .base import Generations, RunContext
from .manual import ManualStrategy


class BucketedStrategy(ManualStrategy):
    def generate(self, ctx: RunContext) -> Generations:
        prompt_ids = ctx.tokenizer(list(ctx.workload.texts), add_special_tokens=ctx.workload.add_special_tokens)
        prompt_ids = prompt_ids["input_ids"]
        order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))  # stable: ties keep their order
        generated: list = [None] * len(prompt_ids)
        for start in range(0, len(order), ctx.batch_size):
            requests = order[start : start + ctx.batch_size]
            inputs = ctx.tokenizer.pad({"input_ids": [prompt_ids[i] for i in requests]}, return_tensors="pt")
            streamer = ctx.latency.streamer(requests)  # its rows are these workload indices
            for request, ids in zip(requests, self.generate_batch(ctx, inputs, streamer)):
                generated[request] = ids
        return ctx.finish(generated)
