"""Executes one (loaded model, workload, strategy, batch size): set up the strategy, run the
rounds (timed through pytest-benchmark, or once untimed), compare with the bs=1 baseline (and a
quantized configuration with the unquantized model's bs=1 outputs) and record the ``RunResult`` in
the session."""

from __future__ import annotations

from contextlib import contextmanager
from statistics import fmean

from ..measure import environment, max_batch, memory, roofline
from ..measure.compare import AgainstUnquantized, compare, score_against_references
from ..measure.instruments import (
    Collector,
    CompileCounter,
    Latency,
    PeakMemory,
    SpeedProbe,
)
from ..measure.latency import mode as latency_mode
from ..measure.max_batch import BatchSearch
from ..measure.progress import Progress
from ..measure.results import RunResult
from ..measure.telemetry import Telemetry
from ..measure.timing import timed_rounds, warmup_rounds
from ..model.loading import LoadedModel
from ..model.quantization import is_quantized
from ..model.workload import Workload
from ..settings import registry
from ..settings.config import ModelSpec
from ..settings.options import MAX_BATCH
from ..strategies.base import Generations, RunContext
from ..verdicts.diagnose import diagnose
from .session import PerfSession

BASELINE_STRATEGY, BASELINE_BATCH_SIZE = "manual", 1


class Unsupported(Exception):
    """The strategy cannot run on this loaded model; the message is the skip reason."""


class StrategyError(Exception):
    """A strategy broke its contract (e.g. returned another number of outputs than prompts): one line."""


class OutOfMemoryCase(Exception):
    """The case ran out of memory (freed since); ``oom`` describes it."""

    def __init__(self, oom: memory.OutOfMemory):
        super().__init__(oom.line())
        self.oom = oom


def resolve_batch_size(session: PerfSession, target: LoadedModel, workload: Workload, strategy_name: str,
                       batch_size: int | str, test: str = "") -> tuple[int, BatchSearch | None]:
    """A batch size to run: itself, or for "max" the largest that fits, searched once per strategy
    and configuration in a session (the consistency test gets the size the timed test ran)."""
    if batch_size != MAX_BATCH:
        return int(batch_size), None
    key = (target.spec, workload.spec, strategy_name)
    found = session.batch_searches.get(key)
    if found is None:
        known = session.out_of_memory(target.spec, workload.spec, strategy_name, len(workload.texts))
        exhausted: list[memory.OutOfMemory] = []

        def fits(size: int) -> bool:
            _, oom = memory.guarded(lambda: generate_once(target, workload.longest(size), strategy_name, size),
                                    target.device, strategy_name, size, test)
            if oom is not None:
                exhausted.append(oom)
            return oom is None

        found = session.batch_searches[key] = max_batch.search(fits, len(workload.texts),
                                                               known.batch_size if known else None)
        for oom in exhausted:
            session.record_out_of_memory(target.spec, workload.spec, oom)
    if found.batch_size == 0:
        raise OutOfMemoryCase(session.out_of_memory(target.spec, workload.spec, strategy_name, 1))
    return found.batch_size, found


def run(session: PerfSession, target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int | str,
        benchmark=None, test: str = "") -> RunResult:
    """Timed through ``benchmark`` when given, else one untimed round. ``test``: the test function's
    node id, which keys its row in the tables. ``batch_size`` "max": the largest that fits."""
    settings = session.settings
    batch_size, search = resolve_batch_size(session, target, workload, strategy_name, batch_size, test)
    prompts = len(workload.texts)
    if batch_size > prompts:  # never report a batch size that was not run
        raise Unsupported(f"batch size {batch_size} is larger than the workload ({prompts} prompts): it would run as "
                          f"one batch of {prompts}; raise --llmperf-num-samples or drop this batch size")
    known = session.out_of_memory(target.spec, workload.spec, strategy_name, batch_size)
    if known is not None:
        raise Unsupported(known.skip_reason(batch_size))
    conditions = {**environment.conditions(), "timer": settings.timer}
    warmup = warmup_rounds(settings.warmup, compiled=target.spec.compile_mode != "none")
    telemetry = session.telemetry(target) if benchmark is not None else None
    progress = None
    if session.progress is not None and benchmark is not None:
        write, interval_s = session.progress
        progress = Progress(write, f"{strategy_name} bs={batch_size} [{target.spec.id}]", warmup, settings.rounds,
                            prompts, session.sweep, interval_s)
    rounds, oom = memory.guarded(lambda: _rounds(target, workload, strategy_name, batch_size, benchmark, settings,
                                                 warmup, telemetry, progress),
                                 target.device, strategy_name, batch_size, test)
    if oom is not None:
        session.record_out_of_memory(target.spec, workload.spec, oom)
        raise OutOfMemoryCase(oom)
    generations, timing, padding_fraction = rounds
    efficiency = None if timing is None else roofline_of(session, target, workload, generations, timing)
    if (strategy_name, batch_size) == (BASELINE_STRATEGY, BASELINE_BATCH_SIZE):
        session.set_baseline(target, workload, generations)
    result = RunResult(
        spec=target.spec,
        workload=workload.spec,
        strategy=strategy_name,
        batch_size=batch_size,
        device=target.device,
        dtype=target.dtype,
        attn_implementation=target.model.config._attn_implementation,
        load_time_s=target.load_time_s,
        compile_time_s=target.compile_time_s,
        generations=generations,
        timing=timing,
        conditions=conditions,
        causes=session.causes(target, workload),
        prompts_digest=workload.prompts_digest,
        consistency=compare(generations, baseline(session, target, workload)),
        # random weights' outputs carry no meaning: nothing to score against a reference (the table says n/a)
        reference=None if target.random_weights else score_against_references(generations, workload.references),
        bs1=session.find(target.spec, workload.spec, strategy_name, 1, timed=True) if batch_size > 1 else None,
        test=test,
        batch_size_search=search.info() if search else None,
        efficiency=efficiency,
        padding_fraction=padding_fraction,
        weight_bytes=target.weight_bytes,
        quantization_config=target.quantization_config,
        unquantized=against_unquantized(session, target, workload, generations),
    )
    session.record(result)
    return result


def roofline_of(session: PerfSession, target: LoadedModel, workload: Workload, generations, timing) -> dict:
    """The case's roofline fields (``roofline.efficiency``). A fraction the best probe so far makes
    impossible (the probes ran on a loaded machine) probes once more before it is refused."""
    step = roofline.decode_bytes(target.model)

    def computed(bandwidth):
        return roofline.efficiency(step, bandwidth, timing.instrument_info,
                                   prompt_tokens=fmean(map(len, workload.input_ids)),
                                   generated_tokens=generations.generated_tokens / generations.num_samples)

    info = computed(session.memory_bandwidth(target))
    return computed(session.memory_bandwidth(target, again=True)) if info["roofline_note"] else info


def _rounds(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int, benchmark, settings,
            warmup: int, telemetry=None, progress=None):
    """``(generations, timing, padding fraction)``: timed through ``benchmark`` when given (after
    ``warmup`` rounds), else one untimed round (timing None). The padding fraction is the last round's
    prefill (``PaddingCounter``), counted after the rounds. ``telemetry``: the device's
    ``telemetry.Source``; ``progress``: a ``progress.Progress``, outermost."""
    if benchmark is None:
        generations, padding_fraction = _once(target, workload, strategy_name, batch_size)
        return generations, None, padding_fraction
    with prepared(target, workload, strategy_name, batch_size) as (one_round, ctx):
        instruments = round_instruments(target, settings.gc, settings.benchmark_disable_gc, telemetry)
        instruments = ((progress,) if progress is not None else ()) + instruments
        instruments += (Latency(ctx.latency, strategy_name, latency_mode(settings.latency, target.device),
                                settings.rounds),)
        generations, timing = timed_rounds(benchmark, one_round, target.sync, warmup, settings.rounds, instruments,
                                           settings.max_cv)
        return generations, timing, ctx.padding.fraction()


def round_instruments(target: LoadedModel, gc_mode: str, gc_disabled_in_rounds: bool, telemetry=None) -> tuple:
    """The instruments around a case's rounds, outermost first: ``before_round`` runs in this order
    and ``after_round`` in the reverse, so the speed probe (work of its own) runs after every other
    reading, the collection before the energy window opens and the heap trim, and nothing but the
    latency stamp (which the runner adds innermost) separates the peak-memory reset from the round.
    ``telemetry``: the device's ``telemetry.Source``, if any."""
    return (SpeedProbe(target.device, target.sync), CompileCounter(), Collector(gc_mode, gc_disabled_in_rounds),
            *((Telemetry(telemetry),) if telemetry is not None else ()), PeakMemory(target.device, target.model_bytes))


def baseline(session: PerfSession, target: LoadedModel, workload: Workload) -> Generations:
    """The bs=1 outputs of this configuration: plain ``generate``, one prompt at a time, computed once."""
    generations = session.baseline(target, workload)
    if generations is None:
        generations = generate_once(target, workload, BASELINE_STRATEGY, BASELINE_BATCH_SIZE)
        session.set_baseline(target, workload, generations)
    return generations


def unquantized_reference(session: PerfSession, spec: ModelSpec) -> None:
    """For a quantized configuration, before it loads: the unquantized model's bs=1 outputs (same model,
    dtype, attention and compile mode), what its outputs are compared with. The session's own when its
    unquantized configuration ran first (``--llmperf-quantization none,...``); else the unquantized model
    is loaded now and generates them, once per session."""
    if not is_quantized(spec.quantization) or session.baseline_of(spec.unquantized, session.settings.workload):
        return
    target = session.target(spec.unquantized)
    baseline(session, target, session.workload(target))


def against_unquantized(session: PerfSession, target: LoadedModel, workload: Workload,
                        generations: Generations) -> AgainstUnquantized | None:
    """A quantized configuration's outputs against the unquantized bs=1 outputs, each differing sample
    diagnosed at its first differing token under the quantized model (near-tie or confident change, at
    --llmperf-near-tie; untimed: after the rounds). None without quantization."""
    if not is_quantized(target.spec.quantization):
        return None
    reference = session.baseline_of(target.spec.unquantized, workload.spec)
    if reference is None:
        raise RuntimeError("no unquantized reference for a quantized configuration: runner.unquantized_reference "
                           "runs before the quantized model loads")
    consistency = compare(generations, reference)
    divergences = tuple(diagnose(target, sample.index, workload.input_ids[sample.index],
                                 reference.samples[sample.index].token_ids,
                                 generations.samples[sample.index].token_ids, session.settings.near_tie)
                        for sample in consistency.samples if not sample.exact)
    return AgainstUnquantized(consistency, reference, divergences)


@contextmanager
def prepared(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int):
    """Set the strategy up (untimed), yield its one-round function, tear it down (also on failure)."""
    strategy = registry.create(strategy_name)
    reason = strategy.unsupported_reason(target)
    if reason:
        raise Unsupported(reason)
    ctx = RunContext(target, workload, batch_size,
                     target.generation_config(workload.spec.max_new_tokens, workload.spec.ignore_eos))
    strategy.setup(ctx)
    expected = len(workload.texts)

    def one_round() -> Generations:
        ctx.padding.begin()
        generations = strategy.generate(ctx)
        if generations.num_samples != expected:  # a len(): nothing to see in a round's time
            raise StrategyError(f"strategy {strategy_name!r} returned {generations.num_samples} outputs for "
                                f"{expected} prompts (batch size {batch_size})")
        return generations

    try:
        yield one_round, ctx
    finally:
        strategy.teardown(ctx)


def generate_once(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int) -> Generations:
    """One untimed round of a strategy over the workload."""
    return _once(target, workload, strategy_name, batch_size)[0]


def _once(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int
          ) -> tuple[Generations, float | None]:
    """One untimed round, and its padding fraction."""
    with prepared(target, workload, strategy_name, batch_size) as (one_round, ctx):
        generations = one_round()
    target.sync()
    return generations, ctx.padding.fraction()
