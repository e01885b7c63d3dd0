"""Executes one (loaded model, workload, strategy, batch size): set up the strategy, run the
rounds (timed through pytest-benchmark, or once untimed), compare with the bs=1 baseline (and a
quantized configuration with the unquantized model's bs=1 outputs) and record the ``RunResult`` in
the session."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from statistics import fmean

from ..measure import environment, max_batch, memory, roofline
from ..measure.compare import AgainstUnquantized, compare, score_against_references
from ..measure.instruments import (
    Collector,
    CompileCounter,
    CpuWait,
    Latency,
    PeakMemory,
    SpeedProbe,
)
from ..measure.latency import mode as latency_mode
from ..measure.max_batch import BatchSearch
from ..measure.progress import Progress
from ..measure.results import RunResult
from ..measure.speculation import DraftCounter, Speculation, figures
from ..measure.telemetry import Telemetry
from ..measure.timing import timed_rounds, warmup_rounds
from ..model.loading import LoadedModel
from ..model.quantization import is_quantized
from ..model.workload import Workload
from ..settings import registry
from ..settings.config import ModelSpec
from ..settings.options import MAX_BATCH
from ..strategies.base import Generations, RunContext, speculative_unsupported_reason
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
    and configuration in a session (the consistency test gets the size the timed test ran). A
    speculative case that cannot run at this size is skipped first (no search for one)."""
    reason = speculative_unsupported_reason(registry.create(strategy_name), strategy_name, target.spec.speculative,
                                            batch_size) if target.spec.speculating else None
    if reason:
        raise Unsupported(reason)
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
    generations, timing, padding_fraction, acceptance = rounds
    efficiency = None if timing is None else roofline_of(session, target, workload, generations, timing)
    if (strategy_name, batch_size) == (BASELINE_STRATEGY, BASELINE_BATCH_SIZE) and not target.spec.speculating:
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
        speculation=speculation_of(target, acceptance, timing.tokens_per_round if timing else
                                   [generations.generated_tokens]),
        non_speculative=session.find(target.spec.plain, workload.spec, strategy_name, batch_size, timed=True)
        if target.spec.speculating else None,
    )
    session.record(result)
    return result


NO_SPECULATIVE_ROOFLINE = ("not computed with speculative decoding: a forward pass of the main model verifies several "
                           "tokens, and the draft reads weights of its own")


def roofline_of(session: PerfSession, target: LoadedModel, workload: Workload, generations, timing) -> dict:
    """The case's roofline fields (``roofline.efficiency``). A fraction the best probe so far makes
    impossible (the probes ran on a loaded machine) probes once more before it is refused."""
    step = roofline.decode_bytes(target.model)

    def computed(bandwidth):
        return roofline.efficiency(step, bandwidth, timing.instrument_info,
                                   prompt_tokens=fmean(map(len, workload.input_ids)),
                                   generated_tokens=generations.generated_tokens / generations.num_samples)

    if target.spec.speculating:  # no fraction: the bandwidth only, and why
        return {**roofline.efficiency(step, session.memory_bandwidth(target), {}, 0, 0),
                "roofline_note": NO_SPECULATIVE_ROOFLINE}
    info = computed(session.memory_bandwidth(target))
    return computed(session.memory_bandwidth(target, again=True)) if info["roofline_note"] else info


def speculation_of(target: LoadedModel, acceptance, tokens_per_round) -> dict | None:
    """A speculative case's ``extra_info`` fields (``speculation.figures`` of its rounds' counts and
    tokens, and how candidates were proposed); None for any other case."""
    if acceptance is None:
        return None
    random = "the draft" if target.draft is not None and target.draft.random_weights else \
        "the model" if target.random_weights else None
    note = f"{random} has random weights (shape:): its acceptance rate says nothing of a trained one's" if random \
        else None
    return {**figures(acceptance, tokens_per_round), "acceptance_rate_note": note,
            "speculative_config": target.speculative_config()}


def _rounds(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int, benchmark, settings,
            warmup: int, telemetry=None, progress=None):
    """``(generations, timing, padding fraction, acceptance)``: timed through ``benchmark`` when given
    (after ``warmup`` rounds), else one untimed round (timing None). The padding fraction is the last
    round's prefill (``PaddingCounter``), counted after the rounds; ``acceptance``: with speculative
    decoding, the counts of the measured rounds (``speculation.Acceptance``), else None.
    ``telemetry``: the device's ``telemetry.Source``; ``progress``: a ``progress.Progress``, outermost."""
    counter = DraftCounter(target.model) if target.spec.speculating else None
    if benchmark is None:
        generations, padding_fraction = _once(target, workload, strategy_name, batch_size, counter=counter)
        return generations, None, padding_fraction, None if counter is None else [counter.reading()]
    with prepared(target, workload, strategy_name, batch_size, counter=counter) as (one_round, ctx):
        instruments = round_instruments(target, settings.gc, settings.benchmark_disable_gc, telemetry)
        instruments = ((progress,) if progress is not None else ()) + instruments
        if counter is not None:  # read after each round, before the instruments that measure the round's end
            instruments += (Speculation(counter),)
        instruments += (Latency(ctx.latency, strategy_name, latency_mode(settings.latency, target.device),
                                settings.rounds),)
        generations, timing = timed_rounds(benchmark, one_round, target.sync, warmup, settings.rounds, instruments,
                                           settings.max_cv)
        padding_fraction = ctx.padding.fraction()
    if counter is None:
        acceptance = None
    elif timing is None:  # --benchmark-disable: the one round pedantic ran
        acceptance = [counter.reading()]
    else:
        acceptance = list(timing.readings["speculation"])
    return generations, timing, padding_fraction, acceptance


def round_instruments(target: LoadedModel, gc_mode: str, gc_disabled_in_rounds: bool, telemetry=None) -> tuple:
    """The instruments around a case's rounds, outermost first: ``before_round`` runs in this order
    and ``after_round`` in the reverse, so the speed probe (work of its own) runs after every other
    reading, the collection before the energy window opens and the heap trim, the CPU-wait window
    closes around the round and the peak-memory reset, and nothing but the latency stamp (which the
    runner adds innermost) separates the peak-memory reset from the round.
    ``telemetry``: the device's ``telemetry.Source``, if any."""
    return (SpeedProbe(target.device, target.sync), CompileCounter(), Collector(gc_mode, gc_disabled_in_rounds),
            *((Telemetry(telemetry),) if telemetry is not None else ()), CpuWait(),
            PeakMemory(target.device, target.model_bytes))


def baseline(session: PerfSession, target: LoadedModel, workload: Workload) -> Generations:
    """The bs=1 outputs of this configuration: plain ``generate``, one prompt at a time, without
    speculative decoding, computed once (a speculative configuration shares them)."""
    generations = session.baseline(target, workload)
    if generations is None:
        generations = generate_once(target, workload, BASELINE_STRATEGY, BASELINE_BATCH_SIZE, speculate=False)
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
def prepared(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int, speculate: bool = True,
             counter: DraftCounter | None = None):
    """Set the strategy up (untimed), yield its one-round function, tear it down (also on failure).
    With speculative decoding (unless ``speculate`` is False: the non-speculative outputs), what it
    proposes and keeps is counted (``counter``, made here when not given), and a round that did not
    go through it fails."""
    strategy = registry.create(strategy_name)
    speculating = speculate and target.spec.speculating
    reason = speculative_unsupported_reason(strategy, strategy_name, target.spec.speculative, batch_size) \
        if speculating else None
    reason = reason or strategy.unsupported_reason(target)
    if reason:
        raise Unsupported(reason)
    ctx = RunContext(target, workload, batch_size,
                     target.generation_config(workload.spec.max_new_tokens, workload.spec.ignore_eos, speculate),
                     target.generate_kwargs(speculate))
    counter = (counter or DraftCounter(target.model)) if speculating else None
    expected = len(workload.texts)

    def one_round() -> Generations:
        ctx.padding.begin()
        calls = counter.calls if counter is not None else 0
        generations = strategy.generate(ctx)
        if generations.num_samples != expected:  # a len(): nothing to see in a round's time
            raise StrategyError(f"strategy {strategy_name!r} returned {generations.num_samples} outputs for "
                                f"{expected} prompts (batch size {batch_size})")
        if counter is not None and counter.calls == calls:
            raise StrategyError(f"strategy {strategy_name!r} declares speculative = True but ran without speculative "
                                f"decoding ({target.spec.speculative}): it must pass ctx.generation_config and "
                                "ctx.generate_kwargs to every generate call")
        return generations

    with counter if counter is not None else nullcontext():
        strategy.setup(ctx)
        try:
            yield one_round, ctx
        finally:
            strategy.teardown(ctx)


def generate_once(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int,
                  speculate: bool = True, counter: DraftCounter | None = None) -> Generations:
    """One untimed round of a strategy over the workload (``prepared``'s ``speculate`` and ``counter``)."""
    return _once(target, workload, strategy_name, batch_size, speculate, counter)[0]


def _once(target: LoadedModel, workload: Workload, strategy_name: str, batch_size: int, speculate: bool = True,
          counter: DraftCounter | None = None) -> tuple[Generations, float | None]:
    """One untimed round, and its padding fraction."""
    with prepared(target, workload, strategy_name, batch_size, speculate, counter) as (one_round, ctx):
        generations = one_round()
    target.sync()
    return generations, ctx.padding.fraction()
