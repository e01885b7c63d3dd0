"""What the plugin keeps in pytest's stash for a session, and the lookups its hooks share: whether an
item is a perf test, a test's settings after its marker, the session's ``PerfSession`` (created on
first use), and the ``llmperf`` fixture's value. ``plugin.py`` holds the hooks, and this module what
they have in common. Loading it imports nothing heavy.
"""

from __future__ import annotations

import pytest

from .marks import MARKER, marker_kwargs
from .measure.progress import Sweep
from .run.coverage import LeftOut
from .run.ordering import in_run_order
from .run.parametrize import MODEL_AXES, MODEL_PARAM, model_axes
from .settings.config import Settings, TestSettings

SETTINGS = pytest.StashKey[Settings]()
SAVED_SCHEMA = 1  # the layout of what pytest-llmperf adds to a saved run
SESSION = pytest.StashKey[object]()
PYTEST_SESSION = pytest.StashKey[pytest.Session]()
DROPPED = pytest.StashKey[list]()  # benchmarks interrupted before their first round ended
SWEEP = pytest.StashKey[Sweep]()  # the session's perf tests, for the progress line's estimate
NOTES = pytest.StashKey[list]()  # lines about the options, for the summary of a session with perf tests
LEFT_OUT = pytest.StashKey[LeftOut]()  # configurations the coverage preset named that cannot run here
NO_BENCHMARK = ("pytest-llmperf times perf tests through pytest-benchmark, which -p no:benchmark switched off; "
                "to check outputs without timing, use --benchmark-disable instead")


def is_perf_test(item: pytest.Item) -> bool:
    return "llmperf" in getattr(item, "fixturenames", ()) or item.get_closest_marker(MARKER) is not None


def collected(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The perf tests counted for the sweep's estimate, and put in run order (``ordering.in_run_order``),
    less the speculative cases a coverage preset named that cannot run (``LeftOut.speculative_cases``)."""
    dropped = config.stash[LEFT_OUT].speculative_cases(config.stash[SETTINGS], items,
                                                       lambda item: marker_kwargs(item) or {})
    if dropped:
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]
        config.hook.pytest_deselected(items=dropped)
    perf_items = [item for item in items if is_perf_test(item)]
    config.stash[SWEEP].total = len(perf_items)
    # `llmperf` requests pytest-benchmark's fixture (so --benchmark-only/--benchmark-skip see perf
    # tests), but outputs-only tests never time anything: that is not worth a warning.
    for item in perf_items:
        item.add_marker(pytest.mark.filterwarnings("ignore:Benchmark fixture was not used at all"))
    in_run_order(items, perf_items, (MODEL_PARAM, *MODEL_AXES))


def require_benchmark(item: pytest.Item) -> None:
    """A perf test with pytest-benchmark switched off fails in one line, before pytest's own 40-line
    error about the missing ``benchmark`` fixture."""
    if is_perf_test(item) and "benchmark" in getattr(item, "fixturenames", ()) and \
            not item.config.pluginmanager.hasplugin("benchmark"):
        pytest.fail(NO_BENCHMARK, pytrace=False)


def test_settings(config: pytest.Config, node) -> TestSettings:
    """The session's settings after ``node``'s marker; a bad marker fails the test in one line."""
    try:
        return config.stash[SETTINGS].for_test(marker_kwargs(node) or {})
    except ValueError as exc:  # unknown keyword, bad value, positional arguments
        message = str(exc)
    pytest.fail(message, pytrace=False)


def perf_session(config: pytest.Config, node: pytest.Item | None = None):
    """The session's ``PerfSession``, created on first use: by its first perf test (``node``), which
    then carries the warning of a busy machine, if any; or on an xdist controller, by the first records."""
    if SESSION not in config.stash:
        from .run.startup import busy_machine
        from .run.startup import perf_session as new_perf_session

        config.stash[SESSION] = new_perf_session(config, config.stash[SETTINGS], config.stash[SWEEP])
        busy = busy_machine(config) if node is not None else None
        if busy:
            from .settings.warning_types import NoisyMeasurementWarning

            node.warn(NoisyMeasurementWarning(busy))
    return config.stash[SESSION]


def llmperf_fixture(request: pytest.FixtureRequest, benchmark):
    """The ``llmperf`` fixture's value for this test's model configuration; a configuration this
    machine cannot run is a skip that gives its reason."""
    from .fixture import LLMPerf
    from .model.loading import unsupported_reason

    config = request.config
    settings = test_settings(config, request.node)
    spec = config.stash[SETTINGS].model_spec(**model_axes(request.node, settings.axes))
    reason = unsupported_reason(spec)
    if reason:
        pytest.skip(reason)
    if hasattr(config, "workerinput"):
        from .run.distributed import time_on_worker

        time_on_worker(config, config.stash[SETTINGS], benchmark)
    return LLMPerf(request, benchmark, perf_session(config, request.node), settings, spec)


def summary_notes(config: pytest.Config) -> list[str]:
    """The lines about the options and the coverage preset, said where perf tests were collected here
    or ran on workers, and nowhere else."""
    if not (config.stash[SWEEP].total or SESSION in config.stash):
        return []
    return [*config.stash[NOTES], *config.stash[LEFT_OUT].lines(config.stash[SETTINGS].coverage)]
