"""Statistics on per-round samples, small enough to read in one sitting.

A case's measured rounds are a handful of samples (3 by default). Two questions are asked of them:

* **Are they steady?** The coefficient of variation (sample standard deviation over the mean) says
  how much the rounds disagree; pyperf warns at 10%, CodSpeed flags a relative deviation above 10%.
  A first measured round much slower than the rest says that warm-up was not over (a lazy
  initialisation, a cache, a compilation, a garbage collection) even when the CV is moderate.
* **Did a metric change between two runs?** (``compare``, for the cross-commit gate.) A change
  counts only when it is both larger than a tolerance and statistically significant, as asv
  decides: the ratio of the medians, and a one-sided Mann-Whitney U test on the per-round samples
  at ``alpha``. When the rounds are too few for the test to ever reach ``alpha`` (3 against 3
  cannot go below p = 0.05), the verdict is "low power" and rests on the confidence interval of
  the ratio instead: the whole interval must lie beyond the tolerance (with 3 rounds a side the
  interval is about the span of the two runs' ranges, and those fail to overlap by chance 1 time
  in 20). The interval is a bootstrap percentile interval of the ratio of medians.

Steadiness uses ``statistics`` only; ``compare`` imports scipy and numpy when it is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb, fsum, inf, nan, sqrt
from statistics import fmean, median
from typing import Sequence

# A first round slower than the median of the others by more than this many times the allowed CV
# is called an outlier: with max_cv 0.10, 20% slower.
FIRST_ROUND_CV_MULTIPLE = 2.0


def cv(samples: Sequence[float]) -> float | None:
    """Coefficient of variation: sample standard deviation / mean; None below two samples."""
    if len(samples) < 2:
        return None
    mean = fmean(samples)
    if mean <= 0:
        return None
    return sqrt(fsum((sample - mean) ** 2 for sample in samples) / (len(samples) - 1)) / mean  # float math: 30x
    # faster than statistics.stdev's exact fractions, and a history report judges 10,000 pairs


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


# -- comparing two runs -----------------------------------------------------------------------------

REGRESSED, IMPROVED, UNCHANGED, INCONCLUSIVE = "regressed", "improved", "unchanged", "inconclusive"
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Change:
    """One metric, now against a baseline."""

    ratio: float  # median(now) / median(baseline)
    ci: tuple[float, float]  # confidence interval of the ratio, at 1 - alpha
    p_value: float | None  # one-sided Mann-Whitney U, in the direction of the observed change
    low_power: bool  # too few rounds for the test to reach alpha: the interval decides
    verdict: str  # regressed, improved, unchanged, inconclusive
    reason: str = ""  # why inconclusive


def min_attainable_p(m: int, n: int) -> float:
    """The smallest one-sided p-value an exact Mann-Whitney U test can give for m and n samples."""
    return 1 / comb(m + n, m)


def ratio_ci(baseline, now, confidence: float) -> tuple[float, float]:
    """Bootstrap percentile interval of median(now) / median(baseline) (fixed seed: reproducible).

    ``scipy.stats.bootstrap(..., method="percentile", paired=False, rng=default_rng(0))`` computed
    directly: the same resamples drawn in the same order, so the same interval (to 1e-12), without its
    generic machinery, which took 20 times as long (a history report judges 10,000 pairs)."""
    import numpy as np

    if len(baseline) < 2 or len(now) < 2:  # nothing to resample: the range of pairwise ratios
        return min(now) / max(baseline), max(now) / min(baseline) if min(baseline) > 0 else inf
    rng = _seeded()
    medians = [_resampled_medians(np.asarray(values, float), rng.integers(0, len(values), (BOOTSTRAP_RESAMPLES,
                                                                                            len(values))))
               for values in (baseline, now)]
    with np.errstate(divide="ignore", invalid="ignore"):  # a baseline round of 0: resamples of it bound nothing
        return _percentiles(medians[1] / medians[0], (1 - confidence) / 2)


_GENERATOR: list = []  # numpy's generator seeded with 0, and that state: creating one costs 25 times resetting it


def _seeded():
    import numpy as np

    if not _GENERATOR:
        generator = np.random.default_rng(0)
        _GENERATOR.extend((generator, generator.bit_generator.state))
    generator, state = _GENERATOR
    generator.bit_generator.state = state
    return generator


def _resampled_medians(values, picks):
    """The median of ``values[picks]``, row by row. A case has a few rounds: with up to 8, the columns
    of picked values are sorted element-wise (odd-even transposition, min and max of whole columns)
    rather than 2,000 tiny rows one by one."""
    import numpy as np

    count = len(values)
    if count > 8:
        return np.median(values[picks], axis=1)
    columns = [values[picks[:, index]] for index in range(count)]
    for step in range(count):
        for index in range(step % 2, count - 1, 2):
            low, high = columns[index], columns[index + 1]
            columns[index], columns[index + 1] = np.minimum(low, high), np.maximum(low, high)
    middle = count // 2
    return columns[middle] if count % 2 else (columns[middle - 1] + columns[middle]) / 2


def _percentiles(values, tail: float) -> tuple[float, float]:
    """The ``tail`` and ``1 - tail`` quantiles of ``values``, linearly interpolated (numpy's default)."""
    import numpy as np

    last = len(values) - 1
    positions = (tail * last, (1 - tail) * last)
    below = [int(position) for position in positions]
    ordered = np.partition(values, sorted({*below, *(min(index + 1, last) for index in below)}))
    low, high = (float(ordered[index] + (ordered[min(index + 1, last)] - ordered[index]) * (position - index))
                 for index, position in zip(below, positions))
    return low, high


def compare(baseline, now, *, higher_is_better: bool, tolerance: float, alpha: float = 0.01,
            interval: bool = True) -> Change:
    """Is ``now`` worse (or better) than ``baseline`` by more than ``tolerance``, and is it significant?
    ``interval=False``: a change within the tolerance gets no interval (``(nan, nan)``): it decides
    nothing there, and a history of 10,000 points is mostly such changes."""
    from scipy.stats import mannwhitneyu

    if median(baseline) <= 0:  # no ratio (callers pass positive quantities: a 0 measured nothing)
        return Change(nan, (nan, nan), None, False, INCONCLUSIVE, "the baseline's median is 0: no ratio to it")
    ratio = median(now) / median(baseline)
    worse = ratio < 1 - tolerance if higher_is_better else ratio > 1 + tolerance
    better = ratio > 1 + tolerance if higher_is_better else ratio < 1 - tolerance
    if not (worse or better):
        return Change(ratio, ratio_ci(baseline, now, 1 - alpha) if interval else (nan, nan), None, False, UNCHANGED)
    ci = ratio_ci(baseline, now, 1 - alpha)
    if min(len(now), len(baseline)) < 2:
        return Change(ratio, ci, None, True, INCONCLUSIVE, "one round on a side: no measure of its noise")
    low_power = min_attainable_p(len(now), len(baseline)) > alpha
    now_smaller = ratio < 1  # the direction of the change: test that one
    p_value = float(mannwhitneyu(now, baseline, alternative="less" if now_smaller else "greater",
                                 method="exact" if len(now) + len(baseline) <= 40 else "auto").pvalue)
    if low_power:  # the interval must lie beyond the tolerance, not just beyond 1: with 3 rounds a side,
        # two runs' ranges fail to overlap by chance 1 time in 20 (one-sided), far above alpha
        significant = ci[1] < 1 - tolerance if now_smaller else ci[0] > 1 + tolerance
    else:
        significant = p_value < alpha
    if not significant:
        return Change(ratio, ci, p_value, low_power, INCONCLUSIVE,
                      "the rounds overlap too much to tell" if low_power else f"p = {p_value:.3g} >= {alpha:g}")
    return Change(ratio, ci, p_value, low_power, REGRESSED if worse else IMPROVED)
