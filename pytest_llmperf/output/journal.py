"""The results file: one JSON line per finished perf case, appended as it finishes, so that what was
measured survives an interrupt, a crash or a hard kill (``--llmperf-results-file``).

pytest-benchmark writes its JSON and autosave files once, at the end of the session; a session that
never reaches its end leaves nothing there. This file is written as the session goes:

- the first case of a session truncates it and writes a header line (``"kind": "session"``) with the
  environment fingerprint (``machine_info``: ``{"llmperf": environment.machine_info()}``, as
  pytest-benchmark's JSON holds it) and the commit (``commit_info``), so a report rebuilt from this
  file alone shows the CPU, GPUs and package versions a live one does; a session that runs no perf
  test leaves the previous file alone;
- each case is one line (``"kind": "case"``): ``RunResult.record()``, i.e. the test id, whether it
  was timed, the same ``extra_info`` as the JSON, and the generated token ids;
- each line is one ``write`` on a file opened for appending, then flushed to disk, so a reader
  sees whole lines only, and a kill loses at most the case it interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

from ..settings.warning_types import LLMPerfConfigWarning, warn

SCHEMA = 1


class Journal:
    def __init__(self, path: Path | None, header: dict | Callable[[], dict] | None = None):
        """``path``: where to write (None: off). ``header``: extra fields for the session line, or a
        function that returns them, called when that line is written."""
        self.path = path
        self._header = header or {}
        self._fd: int | None = None
        self._started = False  # the session's header is written: later opens append, never truncate

    def append(self, record: dict) -> None:
        if self.path is None:
            return
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if self._started else os.O_TRUNC)
                self._fd = os.open(self.path, flags, 0o644)
                if not self._started:
                    self._started = True
                    self._write({"kind": "session", "schema": SCHEMA,
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
                                 "argv": sys.argv[1:],
                                 **(self._header() if callable(self._header) else self._header)})
            self._write({"kind": "case", **record})
        except OSError as exc:  # a read-only rootdir or a full disk must not fail the perf tests
            warn(LLMPerfConfigWarning(f"llmperf: cannot write the results file {self.path} ({exc.strerror or exc}); "
                                      "it is off for this session (--llmperf-results-file sets another path)"))
            self.close()
            self.path = None

    def _write(self, record: dict) -> None:
        os.write(self._fd, (json.dumps(record, default=str) + "\n").encode())
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read(path: Path | str) -> tuple[dict, list[dict]]:
    """``(session header, case records)`` of a results file; a torn last line (a kill mid-write) is
    left out."""
    header, cases = {}, []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "session":
            header = record
        elif record.get("kind") == "case":
            cases.append(record)
    return header, cases
