"""The axes as pytest parametrization: model axes vary slowest (session scope groups tests per model
load), then strategy, then batch size, so ids read like ``[sdpa-nocompile-float32-pipeline-bs16]``
(``[sdpa-nocompile-float32-assisted-manual-bs1]`` with speculative decoding; ``none`` adds nothing).

The plugin defines no fixture of these names (they are common in ML projects, whose own fixtures
must keep working): a perf test that names one in its signature is parametrized with it directly.
"""

from __future__ import annotations

import inspect
import itertools
import re
from typing import Callable

import pytest

from ..settings.config import compile_id, quantization_id, speculative_id
from ..settings.options import (
    ATTN_IMPLEMENTATIONS,
    COMPILE_MODES,
    DTYPES,
    NO_QUANTIZATION,
    QUANTIZATIONS,
    SPECULATIVE,
)

# Axis name -> Axes field. The speculative mode goes last: what decodes, after what is loaded.
MODEL_AXES = {"attn_implementation": "attn_implementations", "compile_mode": "compile_modes", "dtype": "dtypes",
              "quantization": "quantizations", "speculative": "speculative"}
RUN_AXES = {"strategy": "strategies", "batch_size": "batch_sizes"}
# bs16, bsmax; int8weight. An empty piece is left out of an id: quantization and speculative "none" keep
# the ids (and the saved runs that hold them) they had before those axes.
AXIS_IDS = {"compile_mode": compile_id, "quantization": quantization_id, "speculative": speculative_id,
            "batch_size": lambda size: f"bs{size}"}
MODEL_PARAM = "_llmperf_model"  # what ``llmperf`` loads: ((axis name, value), ...) of the model axes
GROUP_PREFIX = "llmperf-"  # a model configuration's ``xdist_group``: llmperf-sdpa-nocompile-float32


def axis_marks(metafunc: pytest.Metafunc, axes, keep: Callable[[list[dict]], list[bool]] | None = None) -> list:
    """The ``parametrize`` markers of a perf test, in the order they go first: model axes, strategy,
    batch size (then the test's own). The model axes go to ``llmperf`` through one private parameter,
    and to the test itself only where its signature names them; the run axes likewise. A test's own
    ``parametrize`` of an axis wins. ``keep([model axes, ...])`` says which model configurations to keep
    (``coverage.LeftOut``)."""
    own = own_parametrized_names(metafunc.definition)
    signature = set(inspect.signature(metafunc.function).parameters)
    marks = []
    model_axes = [name for name in MODEL_AXES if name not in own]
    if MODEL_PARAM in metafunc.fixturenames and model_axes:
        combos = list(itertools.product(*(getattr(axes, MODEL_AXES[name]) for name in model_axes)))
        if keep is not None:
            first = first_model_axes(axes)
            kept = keep([{**first, **dict(zip(model_axes, combo))} for combo in combos])
            combos = [combo for combo, kept_one in zip(combos, kept) if kept_one]
        named = [name for name in model_axes if name in signature]
        values = [(tuple(zip(model_axes, combo)), *(combo[model_axes.index(name)] for name in named))
                  for combo in combos]
        ids = [model_id(zip(model_axes, combo)) for combo in combos]
        marks.append(pytest.mark.parametrize([MODEL_PARAM, *named] if named else MODEL_PARAM,
                                             values if named else [value[0] for value in values],
                                             ids=ids, scope="session"))
    else:  # marked, without ``llmperf``: only the axes the test names
        marks += [_axis_mark(name, getattr(axes, MODEL_AXES[name]), "session")
                  for name in model_axes if name in signature]
    marks += [_axis_mark(name, getattr(axes, field), "function")
              for name, field in RUN_AXES.items() if name in signature and name not in own]
    return marks


def _axis_mark(name: str, values, scope: str):
    return pytest.mark.parametrize(name, values, ids=[AXIS_IDS.get(name, str)(value) or name + "-none"
                                                      for value in values], scope=scope)


def model_id(axes) -> str:
    """``sdpa-nocompile-float32``, ``sdpa-nocompile-bfloat16-int8weight``: the id of (axis name, value) pairs."""
    return "-".join(piece for piece in (AXIS_IDS.get(name, str)(value) for name, value in axes) if piece)


def own_parametrized_names(definition) -> set[str]:
    names = set()
    for marker in definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        names.update(n.strip() for n in (argnames.split(",") if isinstance(argnames, str) else argnames))
    return names


def first_model_axes(axes) -> dict:
    """Each model axis at its first configured value: what an axis a test does not vary takes."""
    return {name: getattr(axes, field)[0] for name, field in MODEL_AXES.items()}


def model_axes(node, axes) -> dict:
    """The model configuration of a test: its ``_llmperf_model`` parameter, and the axes the test
    parametrizes itself; an axis neither gives takes its first configured value."""
    callspec = getattr(node, "callspec", None)
    params = callspec.params if callspec else {}
    chosen = first_model_axes(axes)
    chosen.update(dict(params.get(MODEL_PARAM, ())))
    chosen.update({name: params[name] for name in own_parametrized_names(node) & set(MODEL_AXES) if name in params})
    return chosen


def configuration_group(item) -> str | None:
    """``llmperf-<configuration>``, the ``xdist_group`` of a perf test's model configuration."""
    callspec = getattr(item, "callspec", None)
    model = dict(callspec.params.get(MODEL_PARAM, ())) if callspec else {}
    if not model:
        return None
    return GROUP_PREFIX + model_id(model.items())


# A model configuration's id, as the parametrization writes it first in a perf test's id (a quantization
# piece only where the configuration is quantized, a speculative one only where it speculates).
CONFIGURATION_ID = re.compile("(?:{})-(?:{})-(?:{})(?:-(?:{}))?(?:-(?:{}))?(?=-|$)".format(
    *("|".join(map(re.escape, values)) for values in (
        ATTN_IMPLEMENTATIONS, [compile_id(mode) for mode in COMPILE_MODES], DTYPES,
        [quantization_id(method) for method in QUANTIZATIONS if method != NO_QUANTIZATION],
        [speculative_id(mode) for mode in SPECULATIVE if speculative_id(mode)]))))


def nodeid_group(nodeid: str) -> str | None:
    """``configuration_group`` read back from a node id alone (an xdist controller has no items): the
    configuration whose id starts the parameters, ``[sdpa-nocompile-float32-manual-bs16]``; None for
    a test whose id does not start with one (one that parametrizes a model axis itself)."""
    match = CONFIGURATION_ID.match(case_id(nodeid).partition("[")[2].rpartition("]")[0])
    return GROUP_PREFIX + match.group(0) if match else None


def case_id(nodeid: str) -> str:
    """The node id without the ``@group`` suffix xdist's ``--dist loadgroup`` appends (pytest < 9.2),
    so a case keeps its id, and its baseline, however it is distributed."""
    head, at, group = nodeid.rpartition("@")
    return head if at and head.endswith("]") and "]" not in group else nodeid


def mark_perf_item(item, marker: str) -> None:
    """Every perf test carries the ``llmperf`` marker, so ``-m "not llmperf"`` leaves them all out, and
    an ``xdist_group`` per model configuration, so ``-n N --dist loadgroup`` runs a configuration's
    tests on one worker, in order, where later tests see earlier results and the model loads once."""
    if item.get_closest_marker(marker) is None:
        item.add_marker(marker)
    group = configuration_group(item)
    if group and item.get_closest_marker("xdist_group") is None and item.config.pluginmanager.hasplugin("xdist"):
        item.add_marker(pytest.mark.xdist_group(group))
