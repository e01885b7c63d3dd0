"""Timing: warmup and measured rounds through pytest-benchmark's ``benchmark.pedantic``.

One round is the whole workload at one batch size. The device is synchronised before each round
(untimed, as pedantic's ``setup``) and at the end of each round (timed), so the clock measures
finished work. Tokens are counted for every measured round; tokens/s is the median tokens per round
over the median round time, the same median round that samples/s uses.

With a torch.compile mode, compilation must stay out of measured time: the warmup is at least
``COMPILED_MIN_WARMUP`` rounds, and graphs torch.compile still compiles during a measured round
are counted (``Timing.compilations``), so a run that was not warm says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from statistics import median
from typing import Callable

from .strategies.base import Generations

# reduce-overhead's CUDA graph trees run a new shape once, record it on its second call and replay
# from the third: on an H100, one warmup round left manual bs=16 rounds 2x slower than three did.
COMPILED_MIN_WARMUP = 3


def warmup_rounds(requested: int, compiled: bool) -> int:
    return max(requested, COMPILED_MIN_WARMUP) if compiled else requested


def compilations() -> int:
    """Graphs torch.compile has compiled in this process so far, whoever asked for them."""
    dynamo_utils = sys.modules.get("torch._dynamo.utils")  # not imported: nothing was compiled
    return 0 if dynamo_utils is None else dynamo_utils.counters["stats"]["unique_graphs"]


@dataclass(frozen=True)
class Timing:
    round_s: tuple[float, ...]  # measured rounds only, warmup excluded
    tokens_per_round: tuple[int, ...]
    warmup: int
    compilations: tuple[int, ...] = ()  # graphs torch.compile compiled during each measured round

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
    compiled_before: list[int] = []  # the count before each round (warmup included), then after the last

    def round_to_finish() -> Generations:
        generations = one_round()
        sync()
        produced.append(generations)
        return generations

    def before_round() -> None:  # pedantic's setup: untimed
        compiled_before.append(compilations())
        sync()

    generations = benchmark.pedantic(round_to_finish, setup=before_round, rounds=rounds, warmup_rounds=warmup,
                                     iterations=1)
    compiled_before.append(compilations())
    if benchmark.disabled or benchmark.stats is None:
        return generations, None
    measured = slice(warmup, warmup + rounds)  # --benchmark-cprofile adds a call after the rounds
    compiled_per_round = [after - before for before, after in zip(compiled_before, compiled_before[1:])]
    return generations, Timing(
        round_s=tuple(benchmark.stats.stats.data),
        tokens_per_round=tuple(g.generated_tokens for g in produced[measured]),
        warmup=warmup,
        compilations=tuple(compiled_per_round[measured]),
    )
