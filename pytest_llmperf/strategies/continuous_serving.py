"""``continuous_serving``: transformers' continuous batching as a server runs it.

The same manager, sizing and concurrency limit as ``continuous``, but started once per test
(untimed) and kept running across rounds: a round submits every prompt (``add_requests``) and
collects every finished result (``get_result``). ``generate_batch``, which ``continuous`` times,
also starts and stops the manager on every call, and its stop runs ``gc.collect()``, waits for
the background thread (which polls every 0.1 s) and empties the device cache: on the 2-core CPU
that is 0.35 to 0.55 s per call whatever the workload (docs/benchmarks/). This strategy leaves that
per-call cost out, so the two side by side separate batching throughput from API overhead.
"""

from __future__ import annotations

from contextlib import ExitStack

from .base import Generations, RunContext
from .continuous import ContinuousStrategy, finish

RESULT_WAIT_S = 1.0  # one wait for a result; a stopped generation thread is checked between waits


class ContinuousServingStrategy(ContinuousStrategy):
    def setup(self, ctx: RunContext) -> None:
        super().setup(ctx)  # builds, sizes and warms up the manager (untimed), cached on the model
        stack = ExitStack()
        ctx.state["manager"] = stack.enter_context(ctx.model.continuous_batching_context_manager(
            generation_config=ctx.generation_config, continuous_batching_config=ctx.state["cb_config"],
            persistent_manager=True, warmup=False, block=True, timeout=5,
        ))
        ctx.state["running"] = stack

    def generate(self, ctx: RunContext) -> Generations:
        manager = ctx.state["manager"]
        encoded = ctx.tokenizer(list(ctx.workload.texts), add_special_tokens=ctx.workload.add_special_tokens)
        request_ids = manager.add_requests(inputs=encoded["input_ids"],
                                           max_new_tokens=ctx.generation_config.max_new_tokens,
                                           record_timestamps=ctx.latency.enabled)
        pending, finished = set(request_ids), {}
        while pending:
            result = manager.get_result(timeout=RESULT_WAIT_S)
            if result is None:
                if not manager.is_running():
                    raise RuntimeError(f"continuous batching stopped with {len(pending)} requests unfinished")
            elif result.request_id in pending and result.is_finished():
                finished[result.request_id] = result
                pending.discard(result.request_id)
        return finish(ctx, [finished[request_id] for request_id in request_ids])

    def teardown(self, ctx: RunContext) -> None:
        running = ctx.state.pop("running", None)
        if running is not None:
            running.close()  # stops the manager
        super().teardown(ctx)
