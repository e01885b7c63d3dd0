"""The warnings pytest-llmperf raises: one class each, under one base, so that a strict project
(``-W error``, ``filterwarnings = error``) can let through exactly what it accepts::

    [pytest]
    filterwarnings =
        error
        ignore::pytest_llmperf.NoisyMeasurementWarning

``warn`` raises one at the line of the project's code that led to it (the perf test's call), not at
a line of the plugin. Imports nothing heavy.
"""

from __future__ import annotations

import sys
import warnings

import pytest

PACKAGE = __name__.partition(".")[0]


class LLMPerfWarning(pytest.PytestWarning):
    """Base of every warning pytest-llmperf raises."""

    __module__ = PACKAGE  # named as filters write it: pytest_llmperf.LLMPerfWarning


class NoisyMeasurementWarning(LLMPerfWarning):
    """The machine's noise: measured rounds that are not steady, a verdict the rounds are too noisy to
    support (inconclusive), clocks held down, more threads than CPUs, a load above the CPU count."""

    __module__ = PACKAGE


class LLMPerfConfigWarning(LLMPerfWarning):
    """What the options, model or data set ask for can only partly be done: prompts and a generation
    budget past the model's context, empty prompts or references, fewer rows than asked, a gate with
    nothing measured to check here, torch compiling during the measured rounds, a results file that
    cannot be written."""

    __module__ = PACKAGE


def warn(warning: LLMPerfWarning) -> None:
    """``warnings.warn`` at the nearest frame outside this package: the line of the perf test (or of
    the project's own strategy) whose call raised it."""
    frame, level = sys._getframe(1), 2  # the caller's frame is warnings.warn's stacklevel 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] == PACKAGE:
        frame, level = frame.f_back, level + 1
    warnings.warn(warning, stacklevel=level)
