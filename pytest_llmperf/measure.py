"""Timing: warmup and measured rounds through pytest-benchmark's ``benchmark.pedantic``.

One round is the whole workload at one batch size. The device is synchronised before each round
(untimed, as pedantic's ``setup``) and at the end of each round (timed), so the clock measures
finished work. Tokens are counted for every measured round; tokens/s is the median tokens per round
over the median round time, the same median round that samples/s uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Callable

from .strategies.base import Generations


@dataclass(frozen=True)
class Timing:
    round_s: tuple[float, ...]  # measured rounds only, warmup excluded
    tokens_per_round: tuple[int, ...]
    warmup: int

    @property
    def median_s(self) -> float:
        return median(self.round_s)

    @property
    def tokens_per_s(self) -> float:
        """Median tokens per round over the median round time (greedy rounds generate the same tokens)."""
        return median(self.tokens_per_round) / self.median_s


def timed_rounds(benchmark, one_round: Callable[[], Generations], sync: Callable[[], None], warmup: int,
                 rounds: int) -> tuple[Generations, Timing | None]:
    """Run ``warmup`` + ``rounds`` rounds through ``benchmark.pedantic``; the last round's outputs come back.

    With ``--benchmark-disable`` pedantic runs the round once and nothing is timed (``Timing`` is None).
    """
    produced: list[Generations] = []

    def round_to_finish() -> Generations:
        generations = one_round()
        sync()
        produced.append(generations)
        return generations

    generations = benchmark.pedantic(round_to_finish, setup=sync, rounds=rounds, warmup_rounds=warmup, iterations=1)
    if benchmark.disabled or benchmark.stats is None:
        return generations, None
    measured = produced[warmup:warmup + rounds]  # --benchmark-cprofile adds a call after the rounds
    return generations, Timing(
        round_s=tuple(benchmark.stats.stats.data),
        tokens_per_round=tuple(g.generated_tokens for g in measured),
        warmup=warmup,
    )
