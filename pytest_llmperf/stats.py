"""Statistics on per-round samples, small enough to read in one sitting.

A case's measured rounds are a handful of samples (3 by default). Two questions are asked of them:

* **Are they steady?** The coefficient of variation (sample standard deviation over the mean) says
  how much the rounds disagree; pyperf warns at 10%, CodSpeed flags a relative deviation above 10%.
  A first measured round much slower than the rest says that warm-up was not over (a lazy
  initialisation, a cache, a compilation, a garbage collection) even when the CV is moderate.
* (the cross-commit gate adds its tests here, on the same samples.)

Nothing here imports numpy or scipy: these are a few numbers, and ``statistics`` computes them
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean, median, stdev
from typing import Sequence

# A first round slower than the median of the others by more than this many times the allowed CV
# is called an outlier: with max_cv 0.10, 20% slower.
FIRST_ROUND_CV_MULTIPLE = 2.0


def cv(samples: Sequence[float]) -> float | None:
    """Coefficient of variation: sample standard deviation / mean; None below two samples."""
    if len(samples) < 2:
        return None
    mean = fmean(samples)
    return stdev(samples) / mean if mean > 0 else None


def first_round_ratio(samples: Sequence[float]) -> float | None:
    """The first sample over the median of the others; None below three samples (with two, the
    "others" are one round, and the CV already says everything)."""
    if len(samples) < 3:
        return None
    rest = median(samples[1:])
    return samples[0] / rest if rest > 0 else None


@dataclass(frozen=True)
class Steadiness:
    """Whether a case's measured rounds agree well enough to be read (and judged across runs)."""

    cv: float | None
    first_round_ratio: float | None
    max_cv: float | None  # None: the check is off

    @property
    def first_round_outlier(self) -> bool:
        return (self.max_cv is not None and self.first_round_ratio is not None
                and self.first_round_ratio > 1 + FIRST_ROUND_CV_MULTIPLE * self.max_cv)

    @property
    def too_variable(self) -> bool:
        return self.max_cv is not None and self.cv is not None and self.cv > self.max_cv

    @property
    def steady(self) -> bool | None:
        """None when it cannot be told: the check is off, or there is a single round."""
        if self.max_cv is None or self.cv is None:
            return None
        return not (self.too_variable or self.first_round_outlier)

    def line(self) -> str:
        """One line for the test's report section."""
        if self.cv is None:
            return "rounds: one measured round, steadiness not judged"
        parts = [f"CV {self.cv:.1%}"]
        if self.first_round_ratio is not None:
            parts.append(f"first round {self.first_round_ratio:.2f}x the others")
        verdict = {True: "steady", False: "NOT steady", None: "not judged (--llmperf-max-cv off)"}[self.steady]
        return f"rounds: {', '.join(parts)}: {verdict}"

    def problems(self) -> list[str]:
        found = []
        if self.too_variable:
            found.append(f"round-to-round CV {self.cv:.1%} > {self.max_cv:.0%}")
        if self.first_round_outlier:
            found.append(f"the first measured round took {self.first_round_ratio:.2f}x the median of the others")
        return found


def steadiness(samples: Sequence[float], max_cv: float | None) -> Steadiness:
    return Steadiness(cv(samples), first_round_ratio(samples), max_cv)
