"""pytest-xdist: each worker runs, and where it is honest times, its own cases; the controller prints
the same tables and writes the same files as a run without xdist.

A worker puts on each test's report what that test added: its records (``RunResult.record()``,
``report.comparison_record()``), its pytest-benchmark benchmarks (``benchmark_session.take``) and
whether it timed (``timing_under_xdist``); xdist carries a report's own attributes to the controller,
where ``Controller`` adds them to the controller's sessions. Under ``--dist loadgroup`` the controller
keeps a model configuration's tests on one worker (``scheduling.ConfigurationGroups``).
"""

from __future__ import annotations

import os

import pytest

from . import benchmark_session
from .parametrize import case_id

SENT = pytest.StashKey[tuple]()  # on a worker: how many records (results, comparisons) were sent so far
TIMING = pytest.StashKey[tuple]()  # on a worker: (timed, the summary's line or None), decided once


def timing_under_xdist(mode: str, device: str, workers: int, gpus: int) -> tuple[bool, str | None]:
    """Whether ``workers`` xdist workers time their cases, and what the summary says about it (None:
    nothing). ``mode``: --llmperf-xdist-timing; ``device``: --llmperf-device as requested; ``gpus``:
    the CUDA devices this machine shows. Worker k runs on ``cuda:k % gpus`` (device auto or cuda), so
    ``auto`` times only where no two workers share a device: at most one worker per GPU, or a single
    worker on the CPU."""
    if device in ("auto", "cuda") and gpus > 0:
        shared, devices = f"{gpus} GPU{'s' if gpus > 1 else ''}", gpus
    elif device.startswith("cuda"):
        shared, devices = device, 1
    else:
        shared, devices = "this machine's CPU cores", 1
    sharing = workers > devices
    if mode == "off":
        return False, "llmperf: nothing was timed: --llmperf-xdist-timing off, so these tables show outputs only"
    if mode == "on":
        return True, (f"llmperf: {workers} pytest-xdist workers timed their cases at the same time on {shared} "
                      "(--llmperf-xdist-timing on): each time includes the others' load (docs/parallel.md)"
                      if sharing else None)
    if sharing:
        return False, (f"llmperf: nothing was timed: {workers} pytest-xdist workers share {shared}, so these "
                       "tables show outputs only; time without -n, or with --llmperf-xdist-timing on where each "
                       "worker has a device or cores of its own (docs/parallel.md)")
    return True, None


def time_on_worker(config: pytest.Config, settings, benchmark) -> None:
    """On an xdist worker, as a perf test starts: decide once whether this worker times
    (``timing_under_xdist``; never against --benchmark-disable), and if so time this test."""
    session = benchmark_session.of(config)
    if TIMING not in config.stash:
        if benchmark_session.disabled_for_xdist(session):
            import torch

            workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            config.stash[TIMING] = timing_under_xdist(settings.xdist_timing, settings.device,
                                                      int(workers) if workers.isdigit() else 1, gpus)
        else:  # the user's --benchmark-disable or --benchmark-skip
            config.stash[TIMING] = (False, None)
    if config.stash[TIMING][0]:
        benchmark_session.enable(benchmark, session)


def send_records(config: pytest.Config, perf_session, report) -> None:
    """On a worker: what the test added since the last report, on ``report.llmperf``."""
    if perf_session is None:
        return
    sent = config.stash.get(SENT, (0, 0))
    session = benchmark_session.of(config)
    report.llmperf = {"records": perf_session.records[sent[0]:],
                      "comparisons": perf_session.comparison_records[sent[1]:],
                      "benchmarks": benchmark_session.take(session, case_id) if session is not None else [],
                      "timing": list(config.stash.get(TIMING, (False, None)))}
    config.stash[SENT] = (len(perf_session.records), len(perf_session.comparison_records))


class Controller:
    """On the controller (a registered plugin): adds each worker's records to this process's
    ``PerfSession`` and its benchmarks to pytest-benchmark's session, says once what was timed, and
    under ``--dist loadgroup`` schedules a model configuration's tests on one worker."""

    def __init__(self, config: pytest.Config, perf_session, notes: list[str]):
        self._config = config
        self._perf_session = perf_session  # () -> session.PerfSession, created on first use
        self._notes = notes  # the summary's lines about the options
        self._rank: dict[str, int] = {}  # a case's position in the collection

    @pytest.hookimpl(tryfirst=True)  # before xdist's own, which would give its loadgroup
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        if config.getvalue("dist") == "loadgroup":
            from .scheduling import ConfigurationGroups

            return ConfigurationGroups(config, log)
        return None

    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if not self._rank:
            self._rank = {case_id(nodeid): position for position, nodeid in enumerate(ids)}

    def pytest_runtest_logreport(self, report) -> None:
        received = getattr(report, "llmperf", None)
        if not received:
            return
        if received["records"] or received["comparisons"]:
            self._perf_session().add_records(received["records"], received["comparisons"])
        if received.get("benchmarks"):
            benchmark_session.add(benchmark_session.of(self._config), received["benchmarks"], self._rank)
        note = (received.get("timing") or (False, None))[1]
        if note and note not in self._notes:
            self._notes.append(note)
