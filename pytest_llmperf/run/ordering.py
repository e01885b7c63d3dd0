"""The order perf tests run in: grouped by model configuration, then as written.

A model configuration (attention, compile mode, dtype) loads once, so its tests run together.
Within it, tests run in file order, and each test's parametrizations in the order they were
declared (strategy, then batch size). Later tests may read earlier results, as the shipped suite's
"best batch size beats bs=1" does, and speedups need bs=1 to run before the batched sizes; this
must not depend on how a given pytest version, or another plugin, reorders parametrized items
(pytest 9.1 interleaves function-scoped parametrizations across test functions).
"""

from __future__ import annotations


def in_run_order(items: list, perf_items: list, model_axes) -> None:
    """Sort ``perf_items`` in place within ``items``, into the slots they already occupy.

    Other tests keep their positions. ``model_axes``: the fixture names of the model axes.
    """
    if len(perf_items) < 2:
        return
    members = set(perf_items)
    slots = [index for index, item in enumerate(items) if item in members]
    path_rank: dict = {}
    for item in perf_items:
        path_rank.setdefault(item.path, len(path_rank))

    def as_written(item):  # file, then definition line, then declared parametrization order
        return path_rank[item.path], _definition_line(item), tuple(_indices(item).values())

    written = sorted(perf_items, key=as_written)
    group_rank: dict = {}
    for item in written:
        group_rank.setdefault(_group(item, model_axes), len(group_rank))
    ordered = sorted(written, key=lambda item: group_rank[_group(item, model_axes)])  # stable
    for slot, item in zip(slots, ordered):
        items[slot] = item


def _indices(item) -> dict:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.indices) if callspec else {}


def _group(item, model_axes) -> tuple:
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec else {}
    return tuple(params.get(name) for name in model_axes)


def _definition_line(item) -> int:
    function = getattr(item, "function", None)
    code = getattr(function, "__code__", None)
    return code.co_firstlineno if code else 0
