"""The table of metrics the cross-commit gate compares: each with its direction, its default
tolerance and its per-round samples.

A metric is one row: a new one (latency, memory, energy) plugs in by adding a ``Metric`` whose
``per_round`` reads it from a ``Timing``. The samples are saved with every case
(``extra_info["metric_samples"]``) so that a later run can test its own rounds against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .measure import Timing


@dataclass(frozen=True)
class Metric:
    name: str  # the extra_info key of its summary value, and of its samples in metric_samples
    label: str
    unit: str
    higher_is_better: bool
    tolerance: float  # default: a change worse than this fraction may fail, if the evidence is significant
    per_round: Callable[[Timing, int], list[float]]  # (timing, samples per round) -> one value per measured round
    machine_bound: bool = True  # scales with the machine's speed (a time or a rate), so the speed probe applies

    def at_reference_speed(self, values, probe_s, reference_s: float) -> list[float]:
        """``values`` as if each round had run on a machine whose probe takes ``reference_s``: a
        machine twice as slow (probe twice as long) halves a rate and doubles a time."""
        if not self.machine_bound:
            return list(values)
        factors = [probe / reference_s for probe in probe_s]
        return [v * f if self.higher_is_better else v / f for v, f in zip(values, factors)]


METRICS: tuple[Metric, ...] = (
    Metric("tokens_per_s", "tokens/s", "tokens/s", True, 0.10,
           lambda timing, _: [tokens / s for tokens, s in zip(timing.tokens_per_round, timing.round_s)]),
    Metric("samples_per_s", "samples/s", "samples/s", True, 0.10,
           lambda timing, samples: [samples / s for s in timing.round_s]),
)
METRICS_BY_NAME = {metric.name: metric for metric in METRICS}


def samples(timing: Timing | None, num_samples: int) -> dict[str, list[float]] | None:
    """Every metric's per-round samples, for ``extra_info["metric_samples"]``."""
    if timing is None:
        return None
    return {metric.name: metric.per_round(timing, num_samples) for metric in METRICS}
