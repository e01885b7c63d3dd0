"""What a coverage preset leaves out: the model configurations it names that cannot run on this
machine (``model.loading.unsupported_reason``) are dropped before collection, so that
``--llmperf-coverage full`` on a CPU is not hundreds of skips, and the reasons are said once, in the
summary. A configuration the user asked for axis by axis is never dropped: it skips with its reason.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

from ..settings.config import Settings
from .parametrize import MODEL_AXES, model_id


class LeftOut:
    """The session's dropped configurations, by reason."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = defaultdict(set)

    def model_filter(self, settings: Settings, marker_keys) -> Callable[[list[dict]], list[bool]] | None:
        """``keep([chosen model axes, ...])`` for a test whose marker sets ``marker_keys``: which of its
        model configurations to keep, or None where no model axis came from the preset. Where none of
        them can run, all are kept: asked for that way, they skip, each with its reason."""
        from_preset = settings.preset_axes - set(marker_keys)
        if not from_preset & set(MODEL_AXES.values()):
            return None
        from ..model.loading import unsupported_reason

        def keep(configurations: list[dict]) -> list[bool]:
            reasons = [unsupported_reason(settings.model_spec(**chosen)) for chosen in configurations]
            if all(reasons):
                return [True] * len(configurations)
            for chosen, reason in zip(configurations, reasons):
                if reason:
                    self._ids[reason].add(model_id(chosen.items()))
            return [reason is None for reason in reasons]

        return keep

    def lines(self, coverage: str) -> list[str]:
        """A line per reason: what the preset left out, and why."""
        return [f"llmperf: --llmperf-coverage {coverage} left out {len(ids)} configuration(s) that cannot run here "
                f"({_some(sorted(ids))}): {reason}" for reason, ids in sorted(self._ids.items())]


def _some(ids: list[str], shown: int = 3) -> str:
    """The first few of a long list of ids, and how many more: a summary line stays a line."""
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 1 else f", {ids[-1]}" if more == 1 else "")
