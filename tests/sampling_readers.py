"""Readers for the telemetry sampling process in tests (``telemetry.Sampler`` imports them by name in
its own process, so they live in a module that imports nothing from the tests)."""

import time

from pytest_llmperf.measure.telemetry import Sample


def cpu_reader():
    """A real reader where NVML is missing: the host's CPU utilisation and memory."""
    import psutil

    return lambda: Sample(time.monotonic(), psutil.cpu_percent(), psutil.virtual_memory().used / 2 ** 20, None,
                          0.0, 0.0, 0)


def broken_reader():
    raise OSError("no such sensor")
