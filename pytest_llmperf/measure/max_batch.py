"""The largest batch size that fits (``--llmperf-batch-sizes max``): doubling from 1 until a size
runs out of memory or reaches the workload's size, then bisecting between the last size that fit
and the first that did not.

accelerate's ``find_executable_batch_size`` only halves down from a starting size, so it needs a
guess of the upper end and lands on a power-of-two fraction of it; this finds the boundary itself,
in about 2 log2(answer) probes. Each probe is one batch of the longest prompts at that size: the
batch that needs the most memory in a round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class BatchSearch:
    batch_size: int  # the largest size that fit; 0 when not even 1 did
    tried: tuple[tuple[int, bool], ...]  # (size, fit) in the order tried
    cap: int  # the workload's size: no larger batch exists
    out_of_memory_at: int | None  # the smallest size seen not to fit (tried here, or earlier in the session)

    @property
    def limited_by(self) -> str:
        return "memory" if self.out_of_memory_at is not None else "workload"

    def describe(self) -> str:
        tried = ", ".join(f"{size}{'' if fit else ' out of memory'}" for size, fit in self.tried)
        limit = (f"the workload's {self.cap} prompts" if self.limited_by == "workload"
                 else f"out of memory at {self.out_of_memory_at}")
        return f"largest batch size that fits: {self.batch_size}, limited by {limit} (tried {tried})"

    def info(self) -> dict:
        return {"requested": "max", "found": self.batch_size, "summary": self.describe(), "limited_by": self.limited_by,
                "out_of_memory_at": self.out_of_memory_at, "tried": [[size, fit] for size, fit in self.tried]}


def search(fits: Callable[[int], bool], cap: int, known_too_large: int | None = None) -> BatchSearch:
    """``fits(size)``: whether one batch of that size runs. ``known_too_large``: a size already seen
    to run out of memory in this session; the search stays below it."""
    upper = cap if known_too_large is None else min(cap, known_too_large - 1)
    tried: list[tuple[int, bool]] = []

    def probe(size: int) -> bool:
        fit = fits(size)
        tried.append((size, fit))
        return fit

    fitted, failed = 0, None
    size = 1
    while size <= upper:  # doubling
        if not probe(size):
            failed = size
            break
        fitted = size
        if size == upper:
            break
        size = min(size * 2, upper)
    if failed is None and known_too_large is not None and fitted == upper < cap:
        failed = known_too_large
    if failed is not None:
        while failed - fitted > 1:  # bisecting
            middle = (fitted + failed) // 2
            if probe(middle):
                fitted = middle
            else:
                failed = middle
    return BatchSearch(fitted, tuple(tried), cap, failed)
