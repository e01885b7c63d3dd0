"""What a session writes at its end besides the tables: the report folder (``--llmperf-report``),
the dashboard exports (``--llmperf-export``) and the Hub dataset rows (``--llmperf-push-to-hub``),
from the session's records as a ``saved.Run``.

Their paths are checked at start-up (``unwritable``: a usage error, before an hour-long sweep), and
an output that still cannot be written at the end, or a failed upload, fails the run (exit status
1) with one line; the tables, the JSON and the results file are written all the same.
"""

from __future__ import annotations

import os
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


OK, NOTE, FAILED = "ok", "note", "failed"  # how an output went: written, nothing to write, not written


def unwritable(settings, rootdir: Path) -> str | None:
    """Why an output the options ask for could not be written where they put it, in one line; None
    when every path can be (as far as can be told before writing: a full disk cannot)."""
    wanted = [("--llmperf-report", rootdir / settings.report, True)] if settings.report else []
    wanted += [(f"--llmperf-export {fmt}", rootdir / path, fmt == "github-action-benchmark")
               for fmt, path in settings.export or ()]
    if settings.push_to_hub:
        wanted.append(("--llmperf-push-to-hub", rootdir / HUB_ROWS, True))
    for option, path, folder in wanted:
        why = _blocked(Path(path), folder)
        if why:
            return f"{option}: cannot write {path}: {why}"
    return None


def _blocked(path: Path, folder: bool) -> str | None:
    if path.exists():
        if folder and not path.is_dir():
            return "a file is in the way of the folder"
        if not folder and path.is_dir():
            return "it is a folder, not a file"
        return None if os.access(path, os.W_OK) else "not writable"
    parent = next(p for p in path.parents if p.exists())  # the filesystem root exists
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not writable"


def write_session_outputs(perf_session, rootdir: Path) -> Iterator[tuple[str, str]]:
    """Write what the options ask for; yields ``(line, OK/NOTE/FAILED)`` to print, one per output."""
    settings = perf_session.settings
    if not (settings.report or settings.export or settings.push_to_hub):
        return
    run = session_run(perf_session)
    if settings.report:
        folder = rootdir / settings.report
        try:
            written, note = report_folder.write(run, folder, settings.price)
        except Exception as exc:  # a full disk, a figure matplotlib refuses: one line, the rest still written
            yield f"report not written: {folder}: {_reason(exc)}", FAILED
        else:
            yield f"report {folder} ({len(written)} files){f'; {note}' if note else ''}", OK
    for fmt, path in settings.export or ():
        try:
            written = exports.write(fmt, run.records, rootdir / path)
        except Exception as exc:
            yield f"{fmt} export not written: {rootdir / path}: {_reason(exc)}", FAILED
        else:
            if written:
                yield f"{fmt} export: {', '.join(str(p) for p in written)}", OK
            else:
                yield f"{fmt} export: nothing to export, no case was timed (nothing written)", NOTE
    if settings.push_to_hub:
        try:
            path = hub.write_rows(run, rootdir / HUB_ROWS)
        except Exception as exc:
            yield f"Hub rows not written: {_reason(exc)}", FAILED
            return
        try:
            url = hub.upload(path, settings.push_to_hub)
        except hub.HubError as exc:
            yield (f"{exc}; the rows are kept in {path}: retry with "
                   f"`pytest-llmperf push-to-hub {path} {settings.push_to_hub}`"), FAILED
        else:
            yield f"pushed {len(run.records)} cases to the Hub dataset {settings.push_to_hub}: {url}", OK


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


HUB_ROWS = Path(".llmperf") / "hub"  # the rows of each push, kept locally (relative to the rootdir)
