"""Timing: warmup and measured rounds through pytest-benchmark's ``benchmark.pedantic``.

One round is the whole workload at one batch size. The device is synchronised before each round
(untimed, as pedantic's ``setup``) and at the end of each round (timed), so the clock measures
finished work. Tokens are counted for every measured round; tokens/s is the median tokens per round
over the median round time, the same median round that samples/s uses.

What must stay out of measured time is kept out by the instruments (``instruments.py``), which run
in pedantic's untimed ``setup``/``teardown`` around every round: the garbage collector is collected
and frozen before the rounds, and collections or torch.compile compilations that still happen in a
measured round are counted. With a torch.compile mode, the warmup is at least
``COMPILED_MIN_WARMUP`` rounds.

Per-request latency is recorded in the measured rounds themselves, or, where recording would cost
time the rounds should not pay, in extra rounds after them that pytest-benchmark does not time
(an instrument's ``extra_rounds``; ``instruments.Latency``).

Whether the measured rounds agree is judged with ``stats.steadiness``: a case whose rounds vary by
more than ``--llmperf-max-cv``, or whose first measured round is an outlier, is reported as not
steady.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any, Callable, Sequence

from ..strategies.base import Generations
from .instruments import Instrument
from .stats import Steadiness, steadiness

# reduce-overhead's CUDA graph trees run a new shape once, record it on its second call and replay
# from the third: on an H100, one warmup round left manual bs=16 rounds 2x slower than three did.
COMPILED_MIN_WARMUP = 3


def warmup_rounds(requested: int, compiled: bool) -> int:
    return max(requested, COMPILED_MIN_WARMUP) if compiled else requested


@dataclass(frozen=True)
class Timing:
    round_s: tuple[float, ...]  # measured rounds only, warmup excluded
    tokens_per_round: tuple[int, ...]
    warmup: int
    steadiness: Steadiness
    readings: dict[str, tuple] = field(default_factory=dict)  # instrument name -> reading per measured round
    instrument_info: dict[str, Any] = field(default_factory=dict)  # the instruments' extra_info fields

    @property
    def compilations(self) -> tuple[int, ...]:
        """Graphs torch.compile compiled during each measured round."""
        return self.readings.get("compilations", ())

    @property
    def median_s(self) -> float:
        return median(self.round_s)

    @property
    def tokens_per_s(self) -> float:
        """Median tokens per round over the median round time (greedy rounds generate the same tokens)."""
        return median(self.tokens_per_round) / self.median_s


def timed_rounds(benchmark, one_round: Callable[[], Generations], sync: Callable[[], None], warmup: int,
                 rounds: int, instruments: Sequence[Instrument] = (),
                 max_cv: float | None = None) -> tuple[Generations, Timing | None]:
    """Run ``warmup`` + ``rounds`` rounds through ``benchmark.pedantic``; the last round's outputs come back.

    With ``--benchmark-disable`` pedantic runs the round once and nothing is timed (``Timing`` is None).
    """
    produced: list[Generations] = []
    readings: list[list] = [[] for _ in instruments]  # per instrument, per round (warmup included)

    def round_to_finish() -> Generations:
        generations = one_round()
        sync()
        produced.append(generations)
        return generations

    def before_round() -> None:  # pedantic's setup: untimed
        sync()
        for instrument in instruments:
            instrument.before_round()

    def after_round() -> None:  # pedantic's teardown: untimed; the innermost instrument reads first
        for instrument, per_round in reversed(list(zip(instruments, readings))):
            per_round.append(instrument.after_round(produced[-1]))

    opened: list[Instrument] = []
    own: dict[str, list] = {}  # readings of the instruments' extra rounds, by instrument name
    try:
        for instrument in instruments:
            instrument.open()
            opened.append(instrument)
        generations = benchmark.pedantic(round_to_finish, setup=before_round, teardown=after_round, rounds=rounds,
                                         warmup_rounds=warmup, iterations=1)
        if not (benchmark.disabled or benchmark.stats is None):
            own = {instrument.name: extra_rounds(instrument, instruments, one_round, sync)
                   for instrument in instruments if instrument.extra_rounds}
    finally:
        for instrument in reversed(opened):
            instrument.close()
    if benchmark.disabled or benchmark.stats is None:
        return generations, None
    measured = slice(warmup, warmup + rounds)  # --benchmark-cprofile adds a call after the rounds
    kept = {instrument.name: tuple(own.get(instrument.name, per_round[measured]))
            for instrument, per_round in zip(instruments, readings)}
    info: dict[str, Any] = {}
    for instrument in instruments:
        info.update(instrument.summary(kept[instrument.name]))
    round_s = tuple(benchmark.stats.stats.data)
    return generations, Timing(
        round_s=round_s,
        tokens_per_round=tuple(g.generated_tokens for g in produced[measured]),
        warmup=warmup,
        steadiness=steadiness(round_s, max_cv),
        readings=kept,
        instrument_info=info,
    )


def extra_rounds(instrument: Instrument, instruments: Sequence[Instrument], one_round: Callable[[], Generations],
                 sync: Callable[[], None]) -> list:
    """An instrument's rounds of its own, after the measured ones (not timed by pytest-benchmark):
    its readings, one per round. Each round is prepared as a measured one (every instrument's
    ``before_round``: the collection, the heap trim...), and only this instrument reads it."""
    instrument.begin_extra_rounds()
    readings = []
    for _ in range(instrument.extra_rounds):
        sync()
        for each in instruments:
            each.before_round()
        generations = one_round()
        sync()
        readings.append(instrument.after_round(generations))
    return readings
