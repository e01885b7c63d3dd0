"""The process a perf session measures in: torch's threads, the CPUs it may use, how busy the machine is.

Recorded with every case (``extra_info``) and in pytest-benchmark's ``machine_info`` (the
environment identity a saved run is compared under). ``--llmperf-threads N`` sets torch's intra-op
and inter-op threads for the session.

Why pin the threads on a shared machine: torch splits each operator across its intra-op threads
(by default one per core) and waits for the slowest. When another process takes one of the cores,
every operator waits for the thread that lost its core, so rounds become several times slower and
erratic. One thread per perf session, on a machine shared with other work, degrades only in
proportion to the CPU it gets. Measured figures: ``docs/benchmarks/cpu-2core-builtin.md``.
"""

from __future__ import annotations

import os
import warnings


def apply_threads(count: int) -> None:
    """Set torch's intra-op and inter-op threads. Call before any parallel work (at start-up): torch
    refuses to change inter-op threads once they ran; that is then a warning, and the intra-op
    setting still applies."""
    import torch

    torch.set_num_threads(count)
    if torch.get_num_interop_threads() != count:
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError as exc:
            warnings.warn(UserWarning(
                f"llmperf: --llmperf-threads {count}: inter-op threads stay at {torch.get_num_interop_threads()} "
                f"({str(exc).splitlines()[0]})"), stacklevel=2)


def cpus_available() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads() -> dict:
    import torch

    return {"torch_num_threads": torch.get_num_threads(),
            "torch_num_interop_threads": torch.get_num_interop_threads()}


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def conditions() -> dict:
    """Per case, read just before its rounds: what the rounds ran with."""
    return {**threads(), "cpus_available": cpus_available(), "load_avg_1m": load_average()}


def oversubscription_warning() -> str | None:
    """A one-line warning when torch runs more intra-op threads than the process has CPUs."""
    count, cpus = threads()["torch_num_threads"], cpus_available()
    if count > cpus:
        return (f"llmperf: torch runs {count} threads on {cpus} available CPU(s): rounds will be slow and erratic; "
                f"set --llmperf-threads {cpus}")
    return None


def machine_info() -> dict:
    """The part of pytest-benchmark's ``machine_info`` that pytest-llmperf adds: threads change timings,
    so runs with different threads are different environments."""
    return {**threads(), "cpus_available": cpus_available()}
