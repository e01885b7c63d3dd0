"""What a strategy calls to report its requests' times: ``RunContext.latency`` (a ``LatencyReporter``)
and the transformers streamer that feeds it. The definitions computed from these times (TTFT, ITL,
TPOT, e2e, queue) live in ``measure/latency.py``, which reads what a round reported."""

from __future__ import annotations

import time
from typing import Iterable, Sequence


class LatencyError(Exception):
    """A strategy reported token times that do not fit its outputs: one line."""


class TokenTimes:
    """The moments one round reported, per request."""

    def __init__(self, num_requests: int, round_start: float):
        self.round_start = round_start
        self.started: list[float | None] = [None] * num_requests
        self.tokens: list[list[float]] = [[] for _ in range(num_requests)]

    @property
    def reported(self) -> bool:
        return any(start is not None for start in self.started) or any(self.tokens)


class LatencyReporter:
    """``RunContext.latency``: what a strategy calls to report its requests' times.

    ``enabled`` says whether this round is recorded; when it is not, every call does nothing and
    ``streamer()`` returns None (which ``generate`` takes as "no streamer"), so an unrecorded round
    pays nothing. Requests are workload indices; ``at`` defaults to now (``time.perf_counter()``).
    """

    def __init__(self, num_requests: int):
        self.num_requests = num_requests
        self._times: TokenTimes | None = None

    @property
    def enabled(self) -> bool:
        return self._times is not None

    def start(self, requests: Iterable[int], at: float | None = None) -> None:
        """These requests start being processed (a batch enters ``generate``; the scheduler takes one)."""
        if self._times is not None:
            at = time.perf_counter() if at is None else at
            for request in requests:
                if self._times.started[request] is None:
                    self._times.started[request] = at

    def token(self, requests: Iterable[int], at: float | None = None, count: int = 1) -> None:
        """Each of these requests has ``count`` more generated tokens on the host."""
        if self._times is not None:
            at = time.perf_counter() if at is None else at
            for request in requests:
                self._times.tokens[request].extend([at] * count)

    def request(self, index: int, started_at: float, token_times: Sequence[float]) -> None:
        """One request's times at once (e.g. from a serving engine's own timestamps)."""
        if self._times is not None:
            self._times.started[index] = started_at
            self._times.tokens[index] = list(token_times)

    def streamer(self, requests: Sequence[int] | None = None):
        """A transformers streamer for ``generate(streamer=...)`` or a pipeline call: each ``generate``
        call starts its batch's requests, and each decoding step gives each row a token. ``requests``:
        the rows of the one ``generate`` call; None: consecutive batches in workload order (a
        pipeline). None when this round is not recorded."""
        if self._times is None:
            return None
        return _streamer_class()(self, requests)

    # -- driven by the instrument ------------------------------------------------------------------
    def begin(self, round_start: float) -> None:
        self._times = TokenTimes(self.num_requests, round_start)

    def end(self) -> TokenTimes | None:
        times, self._times = self._times, None
        return times


_STREAMER = None


def _streamer_class():
    """``TokenStreamer``, a ``transformers`` ``BaseStreamer``, defined on first use (transformers is
    heavy; the plugin imports nothing heavy when it loads)."""
    global _STREAMER
    if _STREAMER is None:
        from transformers.generation.streamers import BaseStreamer

        class TokenStreamer(BaseStreamer):
            """``generate`` puts the prompt ids (batch, length) once, then the new token of every row
            after each step (batch,), already copied to the host; ``end`` closes the call."""

            def __init__(self, reporter: LatencyReporter, requests: Sequence[int] | None):
                self.reporter, self.requests = reporter, requests
                self.next_request = 0
                self.rows: list[int] = []

            def put(self, value) -> None:
                now = time.perf_counter()
                if not self.rows:  # the prompt: a generate call (one batch) begins
                    size = value.shape[0]
                    if self.requests is not None:
                        self.rows = list(self.requests)
                    else:
                        self.rows = list(range(self.next_request, self.next_request + size))
                        self.next_request += size
                    if len(self.rows) != size:
                        raise LatencyError(f"the streamer was given {len(self.rows)} requests for a batch of {size}")
                    self.reporter.start(self.rows, now)
                else:  # new tokens: one per row, or several per row at once (assisted generation)
                    self.reporter.token(self.rows, now, 1 if value.dim() == 1 else value.shape[-1])

            def end(self) -> None:
                self.rows = []

        _STREAMER = TokenStreamer
    return _STREAMER
