"""What a session writes at its end besides the tables: the report folder (``--llmperf-report``) and
the dashboard exports (``--llmperf-export``), from the session's records as a ``saved.Run``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from . import exports, report_folder
from .saved import Run


def session_run(perf_session) -> Run:
    """This session's records, with its environment fingerprint and commit as a saved run has them."""
    from pytest_benchmark.utils import get_commit_info

    return Run(list(perf_session.records), {"llmperf": perf_session.machine_info()}, get_commit_info(),
               datetime.now(timezone.utc).isoformat(timespec="seconds"), "this session")


def write_session_outputs(perf_session, rootdir: Path) -> Iterator[tuple[str, bool]]:
    """Write what the options ask for; yields ``(line, ok)`` to print, one per output."""
    settings = perf_session.settings
    if not settings.report and not settings.export:
        return
    run = session_run(perf_session)
    if settings.report:
        folder = rootdir / settings.report
        try:
            written, note = report_folder.write(run, folder)
        except OSError as exc:
            yield f"report not written: {folder}: {exc.strerror or exc}", False
        else:
            yield f"report {folder} ({len(written)} files){f'; {note}' if note else ''}", True
    for fmt, path in settings.export or ():
        try:
            written = exports.write(fmt, run.records, rootdir / path)
        except OSError as exc:
            yield f"{fmt} export not written: {rootdir / path}: {exc.strerror or exc}", False
        else:
            yield f"{fmt} export: {', '.join(str(p) for p in written)}", True
