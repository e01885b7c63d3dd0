"""What a session writes at its end besides the tables: the report folder (``--llmperf-report``),
the dashboard exports (``--llmperf-export``) and the Hub dataset rows (``--llmperf-push-to-hub``),
from the session's records as a ``saved.Run``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from . import exports, hub, report_folder
from .saved import Run


def session_run(perf_session) -> Run:
    """This session's records, with its environment fingerprint and commit as a saved run has them."""
    from pytest_benchmark.utils import get_commit_info

    return Run(list(perf_session.records), {"llmperf": perf_session.machine_info()}, get_commit_info(),
               datetime.now(timezone.utc).isoformat(timespec="seconds"), "this session")


def write_session_outputs(perf_session, rootdir: Path) -> Iterator[tuple[str, bool]]:
    """Write what the options ask for; yields ``(line, ok)`` to print, one per output."""
    settings = perf_session.settings
    if not (settings.report or settings.export or settings.push_to_hub):
        return
    run = session_run(perf_session)
    if settings.report:
        folder = rootdir / settings.report
        try:
            written, note = report_folder.write(run, folder)
        except Exception as exc:  # a full disk, a figure matplotlib refuses: one line, the rest still written
            yield f"report not written: {folder}: {_reason(exc)}", False
        else:
            yield f"report {folder} ({len(written)} files){f'; {note}' if note else ''}", True
    for fmt, path in settings.export or ():
        try:
            written = exports.write(fmt, run.records, rootdir / path)
        except Exception as exc:
            yield f"{fmt} export not written: {rootdir / path}: {_reason(exc)}", False
        else:
            if written:
                yield f"{fmt} export: {', '.join(str(p) for p in written)}", True
            else:
                yield f"{fmt} export: nothing to export, no case was timed (nothing written)", False
    if settings.push_to_hub:
        try:
            path = hub.write_rows(run, rootdir / HUB_ROWS)
        except Exception as exc:
            yield f"Hub rows not written: {_reason(exc)}", False
            return
        try:
            url = hub.upload(path, settings.push_to_hub)
        except hub.HubError as exc:
            yield (f"{exc}; the rows are kept in {path}: retry with "
                   f"`pytest-llmperf push-to-hub {path} {settings.push_to_hub}`"), False
        else:
            yield f"pushed {len(run.records)} cases to the Hub dataset {settings.push_to_hub}: {url}", True


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


HUB_ROWS = Path(".llmperf") / "hub"  # the rows of each push, kept locally (relative to the rootdir)
