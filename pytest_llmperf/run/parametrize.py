"""The axes as pytest parametrization: model axes vary slowest (session scope groups tests per model
load), then strategy, then batch size, so ids read like ``[sdpa-nocompile-float32-pipeline-bs16]``
(``[sdpa-nocompile-float32-assisted-manual-bs1]`` with speculative decoding; ``none`` adds nothing).

The plugin defines no fixture of these names (they are common in ML projects, whose own fixtures
must keep working): a perf test that names one in its signature is parametrized with it directly.
"""

from __future__ import annotations

import inspect
import itertools

import pytest

from ..settings.config import compile_id, speculative_id

# Axis name -> Axes field.
MODEL_AXES = {"attn_implementation": "attn_implementations", "compile_mode": "compile_modes", "dtype": "dtypes",
              "speculative": "speculative"}
RUN_AXES = {"strategy": "strategies", "batch_size": "batch_sizes"}
# an empty piece is left out of an id: speculative "none" keeps the ids they had before the axis
AXIS_IDS = {"compile_mode": compile_id, "speculative": speculative_id, "batch_size": lambda size: f"bs{size}"}
MODEL_PARAM = "_llmperf_model"  # what ``llmperf`` loads: ((axis name, value), ...) of the model axes


def axis_marks(metafunc: pytest.Metafunc, axes) -> list:
    """The ``parametrize`` markers of a perf test, in the order they go first: model axes, strategy,
    batch size (then the test's own). The model axes go to ``llmperf`` through one private parameter,
    and to the test itself only where its signature names them; the run axes likewise. A test's own
    ``parametrize`` of an axis wins."""
    own = own_parametrized_names(metafunc.definition)
    signature = set(inspect.signature(metafunc.function).parameters)
    marks = []
    model_axes = [name for name in MODEL_AXES if name not in own]
    if MODEL_PARAM in metafunc.fixturenames and model_axes:
        combos = list(itertools.product(*(getattr(axes, MODEL_AXES[name]) for name in model_axes)))
        named = [name for name in model_axes if name in signature]
        values = [(tuple(zip(model_axes, combo)), *(combo[model_axes.index(name)] for name in named))
                  for combo in combos]
        ids = [axis_id(zip(model_axes, combo)) for combo in combos]
        marks.append(pytest.mark.parametrize([MODEL_PARAM, *named] if named else MODEL_PARAM,
                                             values if named else [value[0] for value in values],
                                             ids=ids, scope="session"))
    else:  # marked, without ``llmperf``: only the axes the test names
        marks += [_axis_mark(name, getattr(axes, MODEL_AXES[name]), "session")
                  for name in model_axes if name in signature]
    marks += [_axis_mark(name, getattr(axes, field), "function")
              for name, field in RUN_AXES.items() if name in signature and name not in own]
    return marks


def axis_id(named_values) -> str:
    """``sdpa-nocompile-float32``: the id pieces of ``(axis name, value)`` pairs, empty ones left out."""
    return "-".join(piece for piece in (AXIS_IDS.get(name, str)(value) for name, value in named_values) if piece)


def _axis_mark(name: str, values, scope: str):
    return pytest.mark.parametrize(name, values, ids=[AXIS_IDS.get(name, str)(value) or name + "-none"
                                                      for value in values], scope=scope)


def own_parametrized_names(definition) -> set[str]:
    names = set()
    for marker in definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        names.update(n.strip() for n in (argnames.split(",") if isinstance(argnames, str) else argnames))
    return names


def model_axes(node, axes) -> dict:
    """The model configuration of a test: its ``_llmperf_model`` parameter, and the axes the test
    parametrizes itself; an axis neither gives takes its first configured value."""
    callspec = getattr(node, "callspec", None)
    params = callspec.params if callspec else {}
    chosen = {name: getattr(axes, field)[0] for name, field in MODEL_AXES.items()}
    chosen.update(dict(params.get(MODEL_PARAM, ())))
    chosen.update({name: params[name] for name in own_parametrized_names(node) & set(MODEL_AXES) if name in params})
    return chosen


def configuration_group(item) -> str | None:
    """``llmperf-<configuration>``, the ``xdist_group`` of a perf test's model configuration."""
    callspec = getattr(item, "callspec", None)
    model = dict(callspec.params.get(MODEL_PARAM, ())) if callspec else {}
    if not model:
        return None
    return "llmperf-" + axis_id(model.items())
