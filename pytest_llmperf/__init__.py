"""pytest-llmperf: LLM inference performance as ordinary pytest tests.

Public API for custom strategies (importing it loads nothing heavy)::

    from pytest_llmperf import Strategy, register_strategy
"""

from .strategies.base import Generation, Generations, RunContext, Strategy
from .settings.registry import register_strategy

__all__ = ["Generation", "Generations", "RunContext", "Strategy", "register_strategy"]
__version__ = "0.1.0"
