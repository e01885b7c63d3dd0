"""Progress while a long case runs: round k of n, samples done and samples/s so far, and an ETA for
the whole sweep, written through pytest's terminal reporter (as live logging is: capture suspended
for the line), so it sits with pytest's own output.

It is an instrument (``instruments.Instrument``) whose only work is in ``after_round``, pytest-
benchmark's untimed teardown: a clock read per round, and a line at most every ``interval_s``
seconds, so a short case prints nothing and a round is never slowed. ``--llmperf-progress``:
``auto`` (the default) shows it every 10 s on a terminal, and where the output is not one (a CI
log, where pytest's dots only show when a file's tests are all done) it is a heartbeat, every
``--llmperf-heartbeat`` seconds (60; ``off`` silences it); ``on``; ``off``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .instruments import Instrument

INTERVAL_S = 10.0


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass
class Sweep:
    """The session's perf tests: how many there are, how long the finished ones took, and when the
    last progress line was written (the interval runs across cases, so short cases still get one)."""

    total: int = 0
    finished_s: list[float] = field(default_factory=list)
    shown: float | None = None  # the progress clock's time of the last line (or of the first case's start)

    def finished(self, seconds: float) -> None:
        self.finished_s.append(seconds)

    def eta_s(self, this_case_left_s: float) -> float | None:
        """This case's remaining rounds, plus the tests not started at the mean of those finished."""
        if not self.finished_s:
            return None
        waiting = max(0, self.total - len(self.finished_s) - 1)
        return this_case_left_s + waiting * sum(self.finished_s) / len(self.finished_s)


class Progress(Instrument):
    name = "progress"

    def __init__(self, write: Callable[[str], None], label: str, warmup: int, rounds: int, samples: int,
                 sweep: Sweep, interval_s: float = INTERVAL_S, clock=time.monotonic):
        self._write, self._label, self._warmup, self._rounds = write, label, warmup, rounds
        self._samples, self._sweep, self._interval_s, self._clock = samples, sweep, interval_s, clock
        self._done = 0
        self._started = 0.0

    def open(self) -> None:
        self._started = self._clock()
        if self._sweep.shown is None:
            self._sweep.shown = self._started

    def after_round(self, generations=None) -> None:
        self._done += 1
        now = self._clock()
        if now - self._sweep.shown < self._interval_s or self._done > self._warmup + self._rounds:
            return None  # (--benchmark-cprofile runs one more call after the rounds)
        self._sweep.shown = now
        try:
            self._write(self.line(now))
        except Exception:  # a closed terminal: progress is never worth failing a measured case
            pass
        return None

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        total = self._warmup + self._rounds
        phase = (f"warmup {self._done}/{self._warmup}" if self._done <= self._warmup
                 else f"measured {self._done - self._warmup}/{self._rounds}")
        samples = self._done * self._samples
        text = (f"llmperf: {self._label}: round {self._done} of {total} ({phase}), {samples} samples in "
                f"{duration(elapsed)}, {samples / elapsed:.1f} samples/s")
        eta = self._sweep.eta_s((total - self._done) * elapsed / self._done)
        if eta is not None:
            text += (f" | sweep: test {len(self._sweep.finished_s) + 1} of {self._sweep.total}, "
                     f"about {duration(eta)} left")
        return text
