"""Name -> strategy class. Built-ins are named by import path so that reading the registry
(option validation at start-up) imports nothing heavy; user strategies register classes."""

from __future__ import annotations

import importlib
from typing import Callable

_BUILTIN = {
    "manual": "pytest_llmperf.strategies.manual:ManualStrategy",
    "pipeline": "pytest_llmperf.strategies.pipeline:PipelineStrategy",
    "keydataset": "pytest_llmperf.strategies.keydataset:KeyDatasetStrategy",
    "continuous": "pytest_llmperf.strategies.continuous:ContinuousStrategy",
    "continuous_serving": "pytest_llmperf.strategies.continuous_serving:ContinuousServingStrategy",
    "bucketed": "pytest_llmperf.strategies.bucketed:BucketedStrategy",
}
_registered: dict[str, type] = {}


def register_strategy(name: str) -> Callable[[type], type]:
    """Class decorator: make a ``Strategy`` subclass selectable as ``--llmperf-strategies NAME``.

    Register in a ``conftest.py`` at the root of the perf suite (or in a plugin), so the name is
    known when the options are validated at start-up.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"strategy name {name!r} must be alphanumeric (with - or _)")
    if name in _BUILTIN:
        raise ValueError(f"strategy name {name!r} is a built-in strategy")

    def decorate(cls: type) -> type:
        _registered[name] = cls
        return cls

    return decorate


def names() -> list[str]:
    return [*_BUILTIN, *_registered]


def create(name: str):
    """A fresh strategy instance (a strategy may keep per-test state between setup and teardown)."""
    if name in _registered:
        return _registered[name]()
    if name not in _BUILTIN:
        raise ValueError(f"unknown strategy {name!r}; valid values: {', '.join(names())}")
    module_name, class_name = _BUILTIN[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()
