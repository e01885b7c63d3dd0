"""pytest-llmperf's pytest plugin: hooks and fixtures only.

Each hook delegates to a module named for what it does (``run/startup.py``, ``run/parametrize.py``,
``run/terminal.py``, ``run/distributed.py``, ...); what the hooks share, the session's state in pytest's
stash, is ``state.py``. Loading this module imports nothing heavy: torch, transformers and datasets
are imported only when a perf test runs.
"""

from __future__ import annotations

import time

import pytest

from . import state
from .marks import MARKER, MARKER_HELP, marker_kwargs
from .measure.progress import Sweep
from .run.coverage import LeftOut
from .run.parametrize import MODEL_PARAM, axis_marks, mark_perf_item
from .run.startup import add_options, say_busy
from .state import SESSION, SETTINGS, SWEEP, is_perf_test


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from .run.startup import settings_and_notes

    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[SETTINGS], config.stash[state.NOTES] = settings_and_notes(config)
    config.stash[SWEEP], config.stash[state.LEFT_OUT] = Sweep(), LeftOut()
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        from .run.distributed import Controller

        config.pluginmanager.register(Controller(config, lambda: state.perf_session(config), config.stash[state.NOTES]),
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
        output_json["llmperf"] = {"schema": state.SAVED_SCHEMA, "outputs": session.outputs()}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[state.PYTEST_SESSION] = session


@pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest-benchmark's, which writes the JSON first
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    """Benchmarks interrupted before their rounds ended are dropped before pytest-benchmark saves the
    run (``benchmark_session.drop_interrupted``), and named in the summary."""
    if SESSION in session.config.stash:  # only where perf tests ran (on an xdist controller: were received)
        from .run import benchmark_session

        session.config.stash[state.DROPPED] = benchmark_session.drop_interrupted(benchmark_session.of(session.config))
    return (yield)


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's session object prints its xdist warning
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()
        if hasattr(config, "workerinput"):
            from .run import benchmark_session

            benchmark_session.silence_worker_warning(benchmark_session.of(config))


@pytest.hookimpl(tryfirst=True)  # before pytest reads the parametrize markers this adds
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize perf tests (those using ``llmperf`` or marked ``llmperf``) over the configured axes,
    less what a coverage preset names that cannot run here. The axes go ahead of the test's own
    ``parametrize`` markers, so pytest gives them precedence over a project's fixture of the same name."""
    if "llmperf" not in metafunc.fixturenames and metafunc.definition.get_closest_marker(MARKER) is None:
        return
    config = metafunc.config
    keep = config.stash[state.LEFT_OUT].model_filter(config.stash[SETTINGS], marker_kwargs(metafunc.definition) or {})
    marks = axis_marks(metafunc, state.test_settings(config, metafunc.definition).axes, keep)
    for mark in reversed(marks):  # each goes first: model axes, strategy, batch size, then the test's own
        metafunc.definition.add_marker(mark, append=False)


@pytest.fixture(name=MODEL_PARAM)
def _llmperf_model(request: pytest.FixtureRequest):
    """Stands in for the parameter ``pytest_generate_tests`` gives every test that uses ``llmperf``."""
    return ()


@pytest.fixture
def llmperf(request: pytest.FixtureRequest, benchmark, _llmperf_model):
    """Runs strategies against the model configuration of this test; see ``pytest_llmperf.fixture.LLMPerf``."""
    return state.llmperf_fixture(request, benchmark)


def pytest_itemcollected(item: pytest.Item) -> None:
    if is_perf_test(item):
        mark_perf_item(item, MARKER)


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-based reordering and other plugins'
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state.collected(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    say_busy(session.config, session.config.stash[SWEEP].total)


@pytest.hookimpl(tryfirst=True)  # before pytest sets up fixtures, which fails on `benchmark` in 40 lines
def pytest_runtest_setup(item: pytest.Item) -> None:
    state.require_benchmark(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """How long each perf test took, for the progress line's estimate of the sweep's end."""
    if not is_perf_test(item):
        return (yield)
    started = time.monotonic()
    try:
        return (yield)
    finally:
        item.config.stash[SWEEP].finished(time.monotonic() - started)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Fail a perf test whose llmperf gates failed, once its body has returned: every call in the
    body is checked, and the failure is an ordinary one (xfail, -x, junit and reruns see it)."""
    result = yield
    if is_perf_test(pyfuncitem):
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
    perf = is_perf_test(item)
    if call.excinfo is not None and perf and not item.config.getoption("fulltrace", False):
        from .run.tracebacks import without_harness_frames

        without_harness_frames(call.excinfo)
    report = yield
    if perf and hasattr(item.config, "workerinput"):
        from .run.distributed import send_records

        send_records(item.config, item.config.stash.get(SESSION, None), report)
    if perf and call.when == "call":
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
    fail = summary(terminalreporter, config, config.stash.get(SESSION, None), state.summary_notes(config),
                   config.stash.get(state.DROPPED, []), regression)
    session = config.stash.get(state.PYTEST_SESSION, None)
    if fail and session is not None and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
