"""pytest-xdist: a worker's results reach the controller, which prints the same tables and writes
the same results file as a run without xdist.

A worker puts the records its test added (``RunResult.record()``, ``report.comparison_record()``:
JSON types only) on the test's report; xdist carries a report's own attributes to the controller,
where ``RecordReceiver`` adds them to the controller's session.
"""

from __future__ import annotations

import pytest

SENT = pytest.StashKey[tuple]()  # on a worker: how many records (results, comparisons) were sent so far


def send_records(session, stash, report) -> None:
    """On a worker: the records added since the last test's report, on ``report.llmperf``."""
    if session is None:
        return
    sent = stash.get(SENT, (0, 0))
    report.llmperf = {"records": session.records[sent[0]:], "comparisons": session.comparison_records[sent[1]:]}
    stash[SENT] = (len(session.records), len(session.comparison_records))


class RecordReceiver:
    """On the controller (a registered plugin): adds each worker's records to this process's session."""

    def __init__(self, perf_session):
        self._perf_session = perf_session  # () -> session.PerfSession, created on first use

    def pytest_runtest_logreport(self, report) -> None:
        received = getattr(report, "llmperf", None)
        if received and (received["records"] or received["comparisons"]):
            self._perf_session().add_records(received["records"], received["comparisons"])
