"""Every place pytest-llmperf reaches into pytest-benchmark's session (``config._benchmarksession``,
pytest-benchmark 5.x), which decides what goes into ``--benchmark-json`` and ``--benchmark-autosave``.

- A benchmark interrupted before its first round ended has no data and breaks pytest-benchmark's
  saving (docs/upstream/pytest-benchmark-interrupted-benchmark.md): ``drop_interrupted``.
- Under pytest-xdist pytest-benchmark disables itself in every process. Where the plugin times on
  the workers anyway (``--llmperf-xdist-timing``), a worker times its perf tests (``enable``),
  hands every benchmark it made to its controller on the test's report (``take``), and the
  controller puts them into its own session (``add``), which then writes the JSON, the autosave, the
  table and the comparison as a run without xdist does. The workers write none of these files.

docs/upstream/pytest-benchmark-xdist.md proposes the upstream change that would make this module
unnecessary.
"""

from __future__ import annotations

import bisect
import json
from types import SimpleNamespace


def of(config):
    """pytest-benchmark's session object of this process (None with ``-p no:benchmark``)."""
    return getattr(config, "_benchmarksession", None)


def disabled_for_xdist(benchmark_session) -> bool:
    """Whether pytest-benchmark disabled itself only because xdist is active (not for --benchmark-disable
    or --benchmark-skip, which the user asked for)."""
    return benchmark_session is not None and bool(benchmark_session.xdist_warning)


def enable(benchmark_fixture, benchmark_session) -> None:
    """On an xdist worker: this perf test's ``benchmark`` times its rounds. The worker's own session
    stays disabled (other tests keep pytest-benchmark's rule) and never writes a file: its
    benchmarks go to the controller (``take``), which saves them."""
    benchmark_fixture.disabled = False
    benchmark_session.json = None
    benchmark_session.save = benchmark_session.autosave = None


def silence_worker_warning(benchmark_session) -> None:
    """A worker's raw "Benchmarks are automatically disabled" lands among the controller's progress
    dots; the controller's summary says what was timed instead (``distributed.timing_under_xdist``)."""
    if benchmark_session is not None:
        benchmark_session.xdist_benchmark_found = False


def complete(bench) -> bool:
    """A failed benchmark (kept: pytest-benchmark leaves it out itself), or one whose rounds all ran
    and, for a perf test, whose figures were set."""
    return getattr(bench, "has_error", False) or (bool(bench) and not (
        getattr(bench.fixture, "llmperf_started", False) and "config_hash" not in bench.extra_info))


def drop_interrupted(benchmark_session) -> list[str]:
    """A benchmark interrupted before its first round ended has no data, and pytest-benchmark's JSON
    and autosave then fail on it (docs/upstream/pytest-benchmark-interrupted-benchmark.md), losing
    every completed one; one interrupted later has only some of its rounds, and none of our figures.
    Both are dropped from ``benchmark_session``; returns their names, for the summary."""
    if benchmark_session is None:
        return []
    kept = [bench for bench in benchmark_session.benchmarks if complete(bench)]
    dropped = [bench.fullname for bench in benchmark_session.benchmarks if not complete(bench)]
    benchmark_session.benchmarks[:] = kept
    return dropped


def take(benchmark_session, fullname=lambda name: name) -> list[dict]:
    """On a worker: every benchmark its session holds, removed from it, as JSON types (what xdist
    carries on a report). ``fullname``: the name the controller saves it under (the node id without
    loadgroup's ``@group``)."""
    from pytest_benchmark.utils import safe_dumps

    sent = []
    for bench in benchmark_session.benchmarks:
        data = bench.as_dict(include_data=True, stats=bool(bench))  # an empty one has no statistics
        data["fullname"] = fullname(data["fullname"])
        stats = data.pop("stats", {"data": [], "iterations": bench.iterations})
        profile = getattr(bench.cprofile_stats, "stats", None)  # what get_cprofile_functions reads of pstats
        sent.append(json.loads(safe_dumps({  # params may hold objects: named as in the JSON file
            "bench": data, "data": stats["data"], "iterations": stats["iterations"],
            "has_error": bench.has_error, "llmperf_started": getattr(bench.fixture, "llmperf_started", False),
            "cprofile": None if profile is None else [[list(key), list(info[:4])] for key, info in profile.items()],
        })))
    benchmark_session.benchmarks.clear()
    return sent


def add(benchmark_session, sent: list[dict], rank: dict[str, int]) -> None:
    """On the controller: a worker's benchmarks (``take``) into this session, in collection order
    (``rank``: full name -> position), so that the JSON lists them as a run without xdist does."""
    from pytest_benchmark.stats import Metadata

    if benchmark_session is None:
        return

    def position(bench) -> int:
        return rank.get(bench.fullname, len(rank))

    for item in sent:
        bench = item["bench"]
        fixture = SimpleNamespace(
            name=bench["name"], fullname=bench["fullname"], group=bench["group"], param=bench["param"],
            params=bench["params"], extra_info=bench["extra_info"], has_error=item["has_error"],
            llmperf_started=item["llmperf_started"],
            cprofile_stats=None if item["cprofile"] is None else SimpleNamespace(
                stats={tuple(key): tuple(info) for key, info in item["cprofile"]}))
        received = Metadata(fixture, item["iterations"], bench["options"])
        received.stats.data.extend(item["data"])
        bisect.insort(benchmark_session.benchmarks, received, key=position)
