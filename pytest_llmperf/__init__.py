"""pytest-llmperf: LLM inference performance as ordinary pytest tests.

Public API for custom strategies (importing it loads nothing heavy)::

    from pytest_llmperf import Strategy, register_strategy

and the warnings it raises, for a strict project's filters (``warning_types``)::

    filterwarnings = error
        ignore::pytest_llmperf.NoisyMeasurementWarning
"""

from .strategies.base import Generation, Generations, RunContext, Strategy
from .strategies.registry import register_strategy
from .warning_types import LLMPerfConfigWarning, LLMPerfWarning, NoisyMeasurementWarning

__all__ = ["Generation", "Generations", "LLMPerfConfigWarning", "LLMPerfWarning", "NoisyMeasurementWarning",
           "RunContext", "Strategy", "register_strategy"]
__version__ = "0.1.0"
