"""``keydataset``: ``KeyDataset`` over the ``datasets.Dataset``, streamed through the pipeline."""

from __future__ import annotations

from .base import RunContext
from .pipeline import PipelineStrategy


class KeyDatasetStrategy(PipelineStrategy):
    def inputs(self, ctx: RunContext):
        from transformers.pipelines.pt_utils import KeyDataset

        return KeyDataset(ctx.workload.dataset, "text")  # the pipeline streams it lazily
