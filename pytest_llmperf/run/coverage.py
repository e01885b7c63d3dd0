"""What a coverage preset leaves out: the model configurations it names that cannot run on this
machine (``model.loading.unsupported_reason``) are dropped before collection, so that
``--llmperf-coverage full`` on a CPU is not hundreds of skips, and the reasons are said once, in the
summary. A configuration the user asked for axis by axis is never dropped: it skips with its reason.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

from ..settings.config import Settings
from .parametrize import AXIS_IDS, MODEL_AXES


class LeftOut:
    """The session's dropped configurations, by reason."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = defaultdict(set)

    def model_filter(self, settings: Settings, marker_keys) -> Callable[[dict], bool] | None:
        """``keep(chosen model axes)`` for a test whose marker sets ``marker_keys``, or None where no
        model axis came from the preset."""
        from_preset = settings.preset_axes - set(marker_keys)
        if not from_preset & set(MODEL_AXES.values()):
            return None
        from ..model.loading import unsupported_reason

        def keep(chosen: dict) -> bool:
            reason = unsupported_reason(settings.model_spec(**chosen))
            if reason:
                self._ids[reason].add("-".join(AXIS_IDS.get(name, str)(value) for name, value in chosen.items()))
            return reason is None

        return keep

    def lines(self, coverage: str) -> list[str]:
        """A line per reason: what the preset left out, and why."""
        return [f"llmperf: --llmperf-coverage {coverage} left out {len(ids)} configuration(s) that cannot run here "
                f"({', '.join(sorted(ids))}): {reason}" for reason, ids in sorted(self._ids.items())]
