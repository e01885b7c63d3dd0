"""Per-request latency, with one definition for every strategy.

The shipped scenario is an offline batch job: every request of a round is submitted when the round
starts. A strategy reports, per request (its index in the workload), two kinds of moment on the
``time.perf_counter`` clock, through ``RunContext.latency`` (a ``LatencyReporter``):

* when the request **starts being processed**: its batch's ``generate`` call begins (static
  batching), or the scheduler takes it (continuous batching);
* when each of its **generated tokens is available on the host**.

From these, for every request that generated ``n`` tokens (exactly the tokens of its output, up to
and including the first EOS; a padded row's steps after its EOS are not its tokens):

* **queue**: round start -> processing start;
* **TTFT**: processing start -> first token; this is also the request's **prefill** time;
* **e2e**: round start -> last token (what a client that submitted the whole workload sees);
* **ITL**: the gaps between consecutive tokens (``n - 1`` of them);
* **TPOT**: (service time - TTFT) / (n - 1), service time being processing start -> last token;
  a one-token request has none. Its inverse is the request's **decode tokens/s**.

Per round, **prefill time** is how long some request was waiting for its first token (the union of
the requests' [start, first token] intervals), **decode time** how long some request was between
its first and last token, and **aggregate decode tokens/s** the tokens after each request's first,
over the decode time.

Percentiles (p50/p90/p95/p99, numpy's linear interpolation) and means are over every request of
every recorded round; ITL's over every gap. Built-in strategies report through a transformers
streamer (``generate``, pipelines) or the request timestamps of continuous batching; a custom
strategy calls ``start``/``token`` (or ``request``) itself, and reports nothing if it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean, median
from typing import Iterable, Sequence

from ..strategies.latency_reporter import LatencyError, TokenTimes

PERCENTILES = (50, 90, 95, 99)
STATS = ("mean", *(f"p{q}" for q in PERCENTILES))
DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "queue_ms")  # each as <name>_<stat> in extra_info
PER_ROUND = ("prefill_s", "decode_s", "decode_tokens_per_s")  # medians over the recorded rounds
KEYS = ("latency_source", "latency_rounds", "latency_requests",
        *(f"{name}_{stat}" for name in DISTRIBUTIONS for stat in STATS), *PER_ROUND,
        "request_decode_tokens_per_s_mean", "request_decode_tokens_per_s_p50")

# How latency was measured (extra_info["latency_source"]).
IN_MEASURED_ROUNDS = "measured rounds"
IN_EXTRA_ROUNDS = "extra rounds"
NOT_REPORTED = "not reported by the strategy"
OFF = "off"


def mode(requested: str, device: str) -> str:
    """Where latency is recorded (``--llmperf-latency``): ``auto`` is the measured rounds on CPU, where
    reporting a token was measured to cost nothing visible (docs/benchmarks/), and extra rounds on
    CUDA, where copying each step's tokens to the host adds a transfer the measured rounds do not
    need."""
    if requested != "auto":
        return requested
    return "extra" if device.startswith("cuda") else "rounds"


@dataclass(frozen=True)
class RequestLatency:
    """One request of one round (seconds, relative to the round's start)."""

    start: float
    tokens: tuple[float, ...]  # one per generated token, in order

    @property
    def queue_s(self) -> float:
        return self.start

    @property
    def ttft_s(self) -> float:
        return self.tokens[0] - self.start

    @property
    def e2e_s(self) -> float:
        return self.tokens[-1]

    @property
    def itl_s(self) -> list[float]:
        return [b - a for a, b in zip(self.tokens, self.tokens[1:])]

    @property
    def tpot_s(self) -> float | None:
        return (self.tokens[-1] - self.tokens[0]) / (len(self.tokens) - 1) if len(self.tokens) > 1 else None


def round_latency(times: TokenTimes | None, token_counts: Sequence[int],
                  strategy: str) -> list[RequestLatency] | None:
    """Each request's latency in one round, its token times cut to the tokens it really generated;
    None when the strategy reported nothing. Raises ``LatencyError`` when what it reported does not
    cover its outputs."""
    if times is None or not times.reported:
        return None
    requests = []
    for index, (start, tokens, count) in enumerate(zip(times.started, times.tokens, token_counts)):
        if count == 0:
            continue
        if start is None or len(tokens) < count:
            raise LatencyError(
                f"strategy {strategy!r} reported {'no start and ' if start is None else ''}{len(tokens)} token time(s) "
                f"for request {index}, which generated {count} token(s): report a start and a time for every token "
                "(RunContext.latency), or none at all")
        kept = tokens[:count]
        if kept != sorted(kept) or kept[0] < start:
            raise LatencyError(f"strategy {strategy!r} reported token times for request {index} that go back in time")
        requests.append(RequestLatency(start - times.round_start, tuple(t - times.round_start for t in kept)))
    return requests


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """``mean``, ``p50``... of ``values`` (numpy's default linear interpolation)."""
    import numpy

    points = numpy.percentile(numpy.asarray(values, dtype=float), PERCENTILES)
    return {"mean": fmean(values), **{f"p{q}": float(v) for q, v in zip(PERCENTILES, points)}}


def _union_s(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by the intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def round_figures(requests: Sequence[RequestLatency]) -> dict[str, float | None]:
    """One round's prefill time, decode time and aggregate decode tokens/s."""
    decode_s = _union_s((r.tokens[0], r.tokens[-1]) for r in requests)
    decode_tokens = sum(len(r.tokens) - 1 for r in requests)
    return {"prefill_s": _union_s((r.start, r.tokens[0]) for r in requests), "decode_s": decode_s,
            "decode_tokens_per_s": decode_tokens / decode_s if decode_s > 0 else None}


def distributions(requests: Sequence[RequestLatency]) -> dict[str, list[float]]:
    """Every request's (or gap's) value of each distribution, in ms."""
    tpots = [r.tpot_s for r in requests if r.tpot_s is not None]
    return {
        "ttft_ms": [1e3 * r.ttft_s for r in requests],
        "itl_ms": [1e3 * gap for r in requests for gap in r.itl_s],
        "tpot_ms": [1e3 * tpot for tpot in tpots],
        "e2e_ms": [1e3 * r.e2e_s for r in requests],
        "queue_ms": [1e3 * r.queue_s for r in requests],
    }


def summary(rounds: Sequence[list[RequestLatency] | None], source: str) -> dict:
    """The ``extra_info`` latency fields from the recorded rounds (None entries: not reported)."""
    recorded = [requests for requests in rounds if requests]
    info: dict = dict.fromkeys(KEYS)
    info["latency_source"] = source if recorded or source == OFF else NOT_REPORTED
    if not recorded:
        return info
    everyone = [r for requests in recorded for r in requests]
    info["latency_rounds"], info["latency_requests"] = len(recorded), len(everyone)
    for name, values in distributions(everyone).items():
        if values:
            info.update({f"{name}_{stat}": value for stat, value in percentiles(values).items()})
    figures = [round_figures(requests) for requests in recorded]
    for name in PER_ROUND:
        values = [f[name] for f in figures if f[name] is not None]
        info[name] = median(values) if values else None
    per_request = [1 / r.tpot_s for r in everyone if r.tpot_s]
    if per_request:
        info["request_decode_tokens_per_s_mean"] = fmean(per_request)
        info["request_decode_tokens_per_s_p50"] = median(per_request)
    return info


def per_round_percentile(reading: tuple | None, name: str, stat: str) -> float | None:
    """One round's ``stat`` of distribution ``name`` (a metric's per-round sample), from the round's
    reading (``instruments.Latency``: its ``TokenTimes`` and token counts)."""
    requests = round_latency(*reading, strategy="") if reading is not None else None
    if not requests:
        return None
    values = distributions(requests)[name]
    return percentiles(values)[stat] if values else None
