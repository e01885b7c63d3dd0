"""pytest-llmperf's pytest plugin: hooks and fixtures only.

Each hook delegates to a module named for what it does (``run/startup.py``, ``run/parametrize.py``,
``run/terminal.py``, ``run/session.py``, ...). Loading this module imports nothing heavy: torch,
transformers and datasets are imported only when a perf test runs.
"""

from __future__ import annotations

import time

import pytest

from .marks import MARKER, MARKER_HELP, marker_kwargs
from .measure.progress import Sweep
from .run.coverage import LeftOut
from .run.ordering import in_run_order
from .run.parametrize import (
    MODEL_AXES,
    MODEL_PARAM,
    axis_marks,
    configuration_group,
    model_axes,
)
from .run.startup import add_options
from .settings.config import Settings

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


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from .run.startup import settings_and_notes

    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[SETTINGS], config.stash[NOTES] = settings_and_notes(config)
    config.stash[SWEEP] = Sweep()
    config.stash[LEFT_OUT] = LeftOut()
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        from .run.distributed import Controller

        config.pluginmanager.register(Controller(config, lambda: _perf_session(config), config.stash[NOTES]),
                                      "llmperf-xdist-controller")


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """The environment fingerprint of a saved run: hardware (threads included) and software versions."""
    from .measure.environment import machine_info as llmperf_machine_info

    machine_info["llmperf"] = llmperf_machine_info(config.stash[SETTINGS].device)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    """The generated token ids of every timed case, once per distinct set (cases refer to them by digest);
    on an xdist controller, its workers' cases."""
    session = config.stash.get(SESSION, None)
    if session is not None:
        output_json["llmperf"] = {"schema": SAVED_SCHEMA, "outputs": session.outputs()}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[PYTEST_SESSION] = session


@pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest-benchmark's, which writes the JSON first
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    """Benchmarks interrupted before their rounds ended are dropped before pytest-benchmark saves the
    run (``benchmark_session.drop_interrupted``), and named in the summary."""
    if SESSION in session.config.stash:  # only where perf tests ran (on an xdist controller: were received)
        from .run import benchmark_session

        session.config.stash[DROPPED] = benchmark_session.drop_interrupted(benchmark_session.of(session.config))
    return (yield)


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's session object prints its xdist warning
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()
        if hasattr(config, "workerinput"):
            from .run import benchmark_session

            benchmark_session.silence_worker_warning(benchmark_session.of(config))


def _perf_session(config: pytest.Config, node: pytest.Item | None = None):
    """The session's ``PerfSession``, created on first use: by its first perf test (``node``), which
    then carries the warning of a busy machine, if any; or on an xdist controller, by the first records."""
    if SESSION not in config.stash:
        from .run.startup import busy_machine, perf_session

        config.stash[SESSION] = perf_session(config, config.stash[SETTINGS], config.stash[SWEEP])
        busy = busy_machine(config) if node is not None else None
        if busy:
            from .settings.warning_types import NoisyMeasurementWarning

            node.warn(NoisyMeasurementWarning(busy))
    return config.stash[SESSION]


def _test_settings(config: pytest.Config, node):
    try:
        return config.stash[SETTINGS].for_test(marker_kwargs(node) or {})
    except ValueError as exc:  # unknown keyword, bad value, positional arguments
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.hookimpl(tryfirst=True)  # before pytest reads the parametrize markers this adds
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize perf tests (those using ``llmperf`` or marked ``llmperf``) over the configured axes.
    The axes are added as ``parametrize`` markers, ahead of the test's own: pytest then gives them
    precedence over a project's fixture of the same name, parametrized or not, as it does a
    decorator's, for this test only."""
    if "llmperf" not in metafunc.fixturenames and metafunc.definition.get_closest_marker(MARKER) is None:
        return
    config = metafunc.config
    keep = config.stash[LEFT_OUT].model_filter(config.stash[SETTINGS], marker_kwargs(metafunc.definition) or {})
    marks = axis_marks(metafunc, _test_settings(config, metafunc.definition).axes, keep)
    for mark in reversed(marks):  # each goes first: model axes, strategy, batch size, then the test's own
        metafunc.definition.add_marker(mark, append=False)


@pytest.fixture(name=MODEL_PARAM)
def _llmperf_model(request: pytest.FixtureRequest):
    """Stands in for the parameter ``pytest_generate_tests`` gives every test that uses ``llmperf``."""
    return ()


@pytest.fixture
def llmperf(request: pytest.FixtureRequest, benchmark, _llmperf_model):
    """Runs strategies against the model configuration of this test; see ``pytest_llmperf.fixture.LLMPerf``."""
    from .fixture import LLMPerf
    from .model.loading import unsupported_reason

    test_settings = _test_settings(request.config, request.node)
    spec = request.config.stash[SETTINGS].model_spec(**model_axes(request.node, test_settings.axes))
    reason = unsupported_reason(spec)
    if reason:
        pytest.skip(reason)
    if hasattr(request.config, "workerinput"):
        from .run.distributed import time_on_worker

        time_on_worker(request.config, request.config.stash[SETTINGS], benchmark)
    return LLMPerf(request, benchmark, _perf_session(request.config, request.node), test_settings, spec)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every perf test carries the ``llmperf`` marker, so ``-m "not llmperf"`` leaves them all out, and
    an ``xdist_group`` per model configuration, so ``-n N --dist loadgroup`` runs a configuration's
    tests on one worker, in order, where later tests see earlier results and the model loads once."""
    if not _is_perf_test(item):
        return
    if item.get_closest_marker(MARKER) is None:
        item.add_marker(MARKER)
    group = configuration_group(item)
    if group and item.get_closest_marker("xdist_group") is None and item.config.pluginmanager.hasplugin("xdist"):
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-based reordering and other plugins'
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    perf_items = [item for item in items if _is_perf_test(item)]
    config.stash[SWEEP].total = len(perf_items)
    # `llmperf` requests pytest-benchmark's fixture (so --benchmark-only/--benchmark-skip see perf
    # tests), but outputs-only tests never time anything: that is not worth a warning.
    for item in perf_items:
        item.add_marker(pytest.mark.filterwarnings("ignore:Benchmark fixture was not used at all"))
    in_run_order(items, perf_items, (MODEL_PARAM, *MODEL_AXES))


def pytest_collection_finish(session: pytest.Session) -> None:
    """A busy machine, said as the perf tests start (and again on the first of them, as a warning), so
    that a slow run explains itself while it runs. On an xdist worker, whose output nobody sees, only
    the warning, which reaches the controller's summary."""
    config = session.config
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if (not config.stash[SWEEP].total or config.option.collectonly or reporter is None
            or hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("benchmark")):
        return
    from .run.startup import busy_machine

    busy = busy_machine(config)
    if busy:
        reporter.write_line(busy, yellow=True)
        reporter.flush()


@pytest.hookimpl(tryfirst=True)  # before pytest sets up fixtures, which fails on `benchmark` in 40 lines
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _is_perf_test(item) and "benchmark" in getattr(item, "fixturenames", ()) and \
            not item.config.pluginmanager.hasplugin("benchmark"):
        pytest.fail(NO_BENCHMARK, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """How long each perf test took, for the progress line's estimate of the sweep's end."""
    if not _is_perf_test(item):
        return (yield)
    started = time.monotonic()
    try:
        return (yield)
    finally:
        item.config.stash[SWEEP].finished(time.monotonic() - started)


def _is_perf_test(item: pytest.Item) -> bool:
    return "llmperf" in getattr(item, "fixturenames", ()) or item.get_closest_marker(MARKER) is not None


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Fail a perf test whose llmperf gates failed, once its body has returned: every call in the
    body is checked, and the failure is an ordinary one (xfail, -x, junit and reruns see it)."""
    result = yield
    if _is_perf_test(pyfuncitem):
        from .fixture import gate_failures

        failures = gate_failures(pyfuncitem)
        if failures:
            pytest.fail(failures, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Every gate's measured-vs-required line, as the test report's ``llmperf`` section. An error
    raised in the user's own code (a strategy of theirs) shows its traceback from the test into their
    frames, without the plugin's and pytest-benchmark's frames in between."""
    if call.excinfo is not None and _is_perf_test(item) and not item.config.getoption("fulltrace", False):
        from .run.tracebacks import without_harness_frames

        without_harness_frames(call.excinfo)
    report = yield
    if _is_perf_test(item) and hasattr(item.config, "workerinput"):
        from .run.distributed import send_records

        send_records(item.config, item.config.stash.get(SESSION, None), report)
    if call.when == "call" and _is_perf_test(item):
        from .fixture import gate_sections

        report.sections += [("llmperf", section) for section in gate_sections(item)]
    return report


@pytest.hookimpl(wrapper=True)  # around the others: ours comes last, and after a regression too
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config):
    """The llmperf tables and lines, after pytest-benchmark's (``terminal.summary``). pytest-benchmark
    raises ``PerformanceRegression`` from its summary under --benchmark-compare-fail, which would hide
    them and pytest's final line behind a traceback: it becomes a failing exit status and one line."""
    from pytest_benchmark.session import PerformanceRegression

    from .run.terminal import summary

    regression = False
    try:
        yield
    except PerformanceRegression:
        if SESSION not in config.stash:  # no perf test ran: pytest-benchmark's behaviour, unchanged
            raise
        regression = True
    with_perf_tests = config.stash[SWEEP].total or SESSION in config.stash  # collected here, or run on workers
    notes = [*config.stash[NOTES], *config.stash[LEFT_OUT].lines(config.stash[SETTINGS].coverage)]
    fail = summary(terminalreporter, config, config.stash.get(SESSION, None),
                   notes if with_perf_tests else [], config.stash.get(DROPPED, []), regression)
    session = config.stash.get(PYTEST_SESSION, None)
    if fail and session is not None and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
