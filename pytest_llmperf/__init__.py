"""pytest-llmperf: LLM inference performance as ordinary pytest tests.

The public surface (importing it loads nothing heavy); everything else may move between releases::

    from pytest_llmperf import Strategy, register_strategy, RunContext, Generation, Generations
    from pytest_llmperf import read_results  # the results file: (header, [case record, ...])

and the warnings it raises, for a strict project's filters (``settings/warning_types.py``)::

    filterwarnings =
        error
        ignore::pytest_llmperf.NoisyMeasurementWarning

Inside, the sub-packages are layers that read like the data flow, each importing only from those
below it (checked by import-linter, ``[tool.importlinter]`` in pyproject.toml):

    plugin.py, cli.py, recipes/   the pytest face (hooks only), the console script, build scripts
    fixture.py, marks.py          the ``llmperf`` fixture and marker
    run/                          a session's state, the runner of one case, what hooks delegate to
    output/                       tables, report folder, exports, Hub rows, results file
    verdicts/                     gates, the cross-commit comparison, drift diagnosis
    measure/                      timing, instruments, roofline, outputs compared, RunResult
    strategies/                   one file per batching strategy behind ``base.Strategy``
    model/                        loading, the workload, the shipped model and dataset
    settings/                     the option table, frozen settings, the strategy registry, warnings
"""

from .output.journal import read as read_results
from .settings.registry import register_strategy
from .settings.warning_types import (
           LLMPerfConfigWarning,
           LLMPerfWarning,
           NoisyMeasurementWarning,
)
from .strategies.base import Generation, Generations, RunContext, Strategy

__all__ = ["Generation", "Generations", "LLMPerfConfigWarning", "LLMPerfWarning", "NoisyMeasurementWarning",
           "RunContext", "Strategy", "read_results", "register_strategy"]
__version__ = "0.1.0"
