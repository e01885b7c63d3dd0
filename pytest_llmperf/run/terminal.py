"""What a session with perf tests says on the terminal: progress lines while it runs, and at the end
the tables, the notes on the options, what was left out, where the results went, and a regression
that pytest-benchmark found (a failing exit status and one line, not a traceback)."""

from __future__ import annotations

import contextlib
import os

import pytest

from ..measure.progress import INTERVAL_S


def progress_writer(config: pytest.Config, settings):
    """``(write, interval_s)`` for progress lines (``measure/progress.py``): pytest's terminal reporter,
    with capture suspended as live logging does it, and flushed, so that a CI log shows each line as
    it comes; None when progress is off (always on an xdist worker, whose output is not the user's).
    ``auto``: every 10 s on a terminal; elsewhere (a CI log) a heartbeat every --llmperf-heartbeat s."""
    mode = settings.progress
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if mode == "off" or reporter is None or hasattr(config, "workerinput"):
        return None
    interval_s = mode if isinstance(mode, float) else INTERVAL_S
    if mode == "auto" and not reporter.isatty:
        if settings.heartbeat is None:
            return None
        interval_s = settings.heartbeat
    capture = config.pluginmanager.getplugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(line)
            reporter.flush()

    return write, interval_s


def summary(terminalreporter, config: pytest.Config, perf_session, notes: list[str], dropped: list[str],
            regression: bool) -> bool:
    """Everything llmperf says after pytest-benchmark's summary. ``notes``: said only where perf tests
    were collected or ran. Returns whether the run must fail: an output asked for that could not be
    written, or ``regression`` (--benchmark-compare-fail found one)."""
    records = perf_session is not None and perf_session.records
    if records:
        write_tables(terminalreporter, perf_session)
    for note in filter(None, notes):
        terminalreporter.write_line(note, yellow=True)
    if dropped:
        terminalreporter.write_line(f"llmperf: left out of the saved run, interrupted before a round ended: "
                                    f"{', '.join(dropped)}", yellow=True)
    if records and perf_session.journal.path:
        terminalreporter.write_line(f"llmperf: results file {perf_session.journal.path}")
    written = True
    if records and not hasattr(config, "workerinput"):
        written = write_outputs(terminalreporter, config, perf_session)
    if regression:
        found = getattr(getattr(config, "_benchmarksession", None), "performance_regressions", [])
        terminalreporter.write_line("llmperf: pytest-benchmark found a performance regression "
                                    "(--benchmark-compare-fail): failing the run", red=True, bold=True)
        for name, failure in found:
            terminalreporter.write_line(f"  {name} - {failure}", red=True)
    return regression or not written


def write_outputs(terminalreporter, config: pytest.Config, perf_session) -> bool:
    """``--llmperf-report``, ``--llmperf-export`` and ``--llmperf-push-to-hub``, from the session's
    records (an xdist controller's include its workers'); paths relative to the rootdir. An output
    that cannot be written is one red line, and False: the run fails."""
    from ..output.writers import FAILED, NOTE, write_session_outputs

    written = True
    for line, status in write_session_outputs(perf_session, config.rootpath):
        terminalreporter.write_line(f"llmperf: {line}", yellow=status == NOTE, red=status == FAILED)
        written &= status != FAILED
    return written


def write_tables(terminalreporter, perf_session) -> None:
    from ..output.tables import github_summary, render, render_comparisons

    sections = [render(perf_session.records), render_comparisons(perf_session.comparison_records)]
    terminalreporter.write_sep("=", "llmperf results")
    terminalreporter.write_line(sections[0])
    if sections[1]:
        terminalreporter.write_sep("=", "llmperf vs baseline")
        terminalreporter.write_line(sections[1])
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(github_summary(sections))
