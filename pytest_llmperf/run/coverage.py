"""What a coverage preset leaves out: the model configurations it names that cannot run on this
machine (``model.loading.unsupported_reason``) are dropped before collection, and the speculative
cases it names at a strategy or batch size speculative decoding does not run with
(``strategies.base.speculative_unsupported_reason``) are deselected at collection, so that
``--llmperf-coverage full`` on a CPU is not hundreds of skips; the reasons are said once, in the
summary. A configuration the user asked for axis by axis is never dropped: it skips with its reason.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

from ..settings import registry
from ..settings.config import Settings
from ..strategies.base import speculative_unsupported_reason
from .parametrize import MODEL_AXES, MODEL_PARAM, model_id


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

    def speculative_cases(self, settings: Settings, items: list, marker_keys: Callable) -> list:
        """The perf items to deselect: a speculative mode the preset named (the test's marker does not
        set ``speculative``) at a strategy or batch size it does not run with."""
        dropped, strategies = [], {}
        if "speculative" not in settings.preset_axes:  # the usual session: nothing to look at
            return dropped
        for item in items:
            params = item.callspec.params if hasattr(item, "callspec") else {}
            mode = dict(params.get(MODEL_PARAM, ())).get("speculative")
            if not mode or "strategy" not in params or "batch_size" not in params or \
                    "speculative" not in settings.preset_axes - set(marker_keys(item)):
                continue
            name = params["strategy"]
            if name not in strategies:
                strategies[name] = registry.create(name)
            reason = speculative_unsupported_reason(strategies[name], name, mode, params["batch_size"])
            if reason:
                self._ids[reason].add(item.callspec.id)
                dropped.append(item)
        return dropped

    def lines(self, coverage: str) -> list[str]:
        """A line per reason: what the preset left out, and why."""
        return [f"llmperf: --llmperf-coverage {coverage} left out {len(ids)} configuration(s) that cannot run here "
                f"({_some(sorted(ids))}): {reason}" for reason, ids in sorted(self._ids.items())]


def _some(ids: list[str], shown: int = 3) -> str:
    """The first few of a long list of ids, and how many more: a summary line stays a line."""
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 1 else f", {ids[-1]}" if more == 1 else "")
