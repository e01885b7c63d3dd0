"""Coverage presets: ``--llmperf-coverage quick|standard|full`` picks a matrix of axes with one flag,
as transformers' benchmark_v2 picks one with its coverage levels.

A preset names raw values for axis options, parsed by the option's own parser as if the user had
written them; an axis the user sets (command line, ini or a test's marker) overrides the preset's.
``EVERY`` is every value the option accepts. The configurations a preset names that cannot run on this
machine (flash-attention without CUDA, a backend that is not installed) are left out before
collection, and said once in the summary (``run/coverage.py``); asked for explicitly, the same
configuration is a skip that gives its reason. Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

from .options import (
    ATTN_IMPLEMENTATIONS,
    COMPILE_MODES,
    COVERAGE,
    DTYPES,
    QUANTIZATIONS,
    SPECULATIVE,
    registered_strategy_names,
)

EVERY = "every"  # every value the axis option accepts (``every_value``)

# preset -> {option dest: raw value}; an axis a preset does not name keeps the option's default.
PRESETS: dict[str, dict[str, str]] = {  # in the order of COVERAGE
    "quick": {},  # the option table's defaults: what `pytest perf_tests` runs
    "standard": {
        "dtype": "float32,bfloat16",
        "attn": "sdpa,eager",
        "compile": "none,default",
        "strategies": "manual,pipeline,keydataset,continuous",
    },
    "full": {"dtype": EVERY, "attn": EVERY, "compile": EVERY, "quantization": EVERY, "speculative": EVERY,
             "strategies": EVERY},
}
assert tuple(PRESETS) == COVERAGE, "a preset per --llmperf-coverage value, in its order"
PRESET_HELP = {
    "quick": "the options' defaults: what `pytest perf_tests` runs",
    "standard": "adds eager attention, compile `default`, bfloat16 and continuous batching",
    "full": "every value of every axis that can run on this machine, quantization and speculative decoding "
            "included",
}
# the axes a preset may set, in the reference's order
AXIS_OPTIONS = ("dtype", "attn", "compile", "quantization", "speculative", "strategies")


def every_value(dest: str) -> str:
    """Every value the axis option ``dest`` accepts, as a list it parses: its choices, less ``auto``
    (a dtype already in the list), and every registered strategy."""
    choices = {"dtype": tuple(d for d in DTYPES if d != "auto"), "attn": ATTN_IMPLEMENTATIONS,
               "compile": COMPILE_MODES, "quantization": QUANTIZATIONS,
               "speculative": SPECULATIVE}
    values = choices[dest] if dest in choices else registered_strategy_names()
    return ",".join(values)


def preset_values(coverage: str, explicit: dict[str, Any]) -> dict[str, str]:
    """The raw values ``coverage`` gives the axes the user did not set: ``{option dest: raw}``."""
    return {dest: every_value(dest) if raw == EVERY else raw
            for dest, raw in PRESETS[coverage].items() if dest not in explicit}
