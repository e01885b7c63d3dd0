"""pytest-llmperf's pytest plugin: options, hooks and fixtures only.

The work lives in modules named for what they do: options -> config -> loading -> workload ->
strategies -> measure -> compare/gates -> report. Loading this module imports nothing heavy:
torch, transformers and datasets are imported only when a perf test runs.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import time

import pytest

from .config import Settings, compile_id
from .marks import MARKER, MARKER_HELP, marker_kwargs
from .ordering import in_run_order
from .options import OPTIONS, THROUGHPUT_THRESHOLDS, benchmark_options_that_do_not_apply, read_options
from .progress import INTERVAL_S, Sweep

SETTINGS = pytest.StashKey[Settings]()
SAVED_SCHEMA = 1  # the layout of what pytest-llmperf adds to a saved run
SESSION = pytest.StashKey[object]()
PYTEST_SESSION = pytest.StashKey[pytest.Session]()
DROPPED = pytest.StashKey[list]()  # benchmarks interrupted before their first round ended
SWEEP = pytest.StashKey[Sweep]()  # the session's perf tests, for the progress line's estimate
XDIST_UNTIMED = ("llmperf: nothing was timed: pytest-benchmark disables timing under pytest-xdist (-n), so these "
                 "tables show outputs only; time without -n (README: Parallel runs with pytest-xdist)")

# Axis name -> Axes field. Model axes vary slowest (session scope groups tests per model load),
# then strategy, then batch size, so ids read like [sdpa-nocompile-float32-pipeline-bs16].
# The plugin defines no fixture of these names (they are common in ML projects, whose own fixtures
# must keep working): a perf test that names one in its signature is parametrized with it directly.
MODEL_AXES = {"attn_implementation": "attn_implementations", "compile_mode": "compile_modes", "dtype": "dtypes"}
RUN_AXES = {"strategy": "strategies", "batch_size": "batch_sizes"}
AXIS_IDS = {"compile_mode": compile_id, "batch_size": lambda size: f"bs{size}"}  # bs16, bsmax
MODEL_PARAM = "_llmperf_model"  # what ``llmperf`` loads: ((axis name, value), ...) of the model axes

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmperf", "LLM inference performance (pytest-llmperf)")
    for option in OPTIONS:
        default = option.default_text or ("off" if option.default is None else option.default)
        if option.flag_only:
            group.addoption(option.flag, dest=f"llmperf_{option.dest}", default=None, action="store_const",
                            const="true", help=f"{option.help} [ini: {option.ini} = true]")
        else:
            group.addoption(option.flag, dest=f"llmperf_{option.dest}", default=None, metavar=option.metavar,
                            help=f"{option.help} [default: {default}; ini: {option.ini}]")
        parser.addini(option.ini, help=option.help, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        values, explicit = read_options(lambda dest: config.getoption(f"llmperf_{dest}"), config.getini)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SWEEP] = Sweep()
    settings = config.stash[SETTINGS] = Settings.from_options(
        values, explicit, benchmark_disable_gc=bool(config.getoption("benchmark_disable_gc", False)),
        timer=str(config.getoption("benchmark_timer", None) or "time.perf_counter"))
    if settings.threads is not None:  # before any torch work, so that inter-op threads can still be set
        from .environment import apply_threads

        apply_threads(settings.threads)
    if settings.push_to_hub is not None and not hasattr(config, "workerinput"):  # not after an hour-long sweep
        from .hub import HubError, require_token

        try:
            require_token()
        except HubError as exc:
            raise pytest.UsageError(str(exc)) from None
    if settings.baseline is not None:  # a bad path is a usage error now, not a failure in every test
        from .baseline import BaselineError, load

        try:
            load(settings.baseline, require_cases=True)
        except BaselineError as exc:
            raise pytest.UsageError(f"--llmperf-baseline: {exc}") from None
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        from .distributed import RecordReceiver

        config.pluginmanager.register(RecordReceiver(lambda: _perf_session(config)), "llmperf-xdist-receiver")
    ignored = benchmark_options_that_do_not_apply(config)
    if ignored:
        config.issue_config_time_warning(pytest.PytestWarning(
            f"llmperf: {', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply to perf tests, which "
            "run a fixed number of pedantic rounds: set --llmperf-warmup and --llmperf-rounds"), stacklevel=2)
    floors = sorted(set(settings.explicit_thresholds) & set(THROUGHPUT_THRESHOLDS))
    if floors and (config.getoption("benchmark_disable", False) or config.getoption("numprocesses", None)):
        config.issue_config_time_warning(pytest.PytestWarning(
            f"llmperf: {', '.join(floors)} will not be checked: timing is disabled "
            "(--benchmark-disable, or pytest-benchmark disables itself under xdist -n)"), stacklevel=2)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """The environment fingerprint of a saved run: hardware (threads included) and software versions."""
    from .environment import machine_info as llmperf_machine_info

    machine_info["llmperf"] = llmperf_machine_info(config.stash[SETTINGS].device)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict) -> None:
    """The generated token ids of every timed case, once per distinct set (cases refer to them by digest)."""
    session = config.stash.get(SESSION, None)
    if session is not None:
        output_json["llmperf"] = {"schema": SAVED_SCHEMA, "outputs": session.outputs()}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[PYTEST_SESSION] = session


@pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest-benchmark's, which writes the JSON first
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    """A benchmark interrupted before its first round ended has no data, and pytest-benchmark's JSON and
    autosave then fail on it (docs/upstream/pytest-benchmark-interrupted-benchmark.md), losing every
    completed one; one interrupted later has only some of its rounds, and none of our figures. Both
    are dropped, and named in the summary."""
    benchmark_session = getattr(session.config, "_benchmarksession", None)
    if benchmark_session is not None and SESSION in session.config.stash:  # only where perf tests ran
        completed = [bench for bench in benchmark_session.benchmarks if getattr(bench, "has_error", False) or (
            bench and not (getattr(bench.fixture, "llmperf_started", False) and "config_hash" not in bench.extra_info))]
        dropped = [bench.fullname for bench in benchmark_session.benchmarks if bench not in completed]
        benchmark_session.benchmarks[:] = completed
        session.config.stash[DROPPED] = dropped
    return (yield)


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's session object prints its xdist warning
def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()
        benchmark_session = getattr(config, "_benchmarksession", None)
        if hasattr(config, "workerinput") and benchmark_session is not None:
            # A worker's raw "Benchmarks are automatically disabled" lands among the controller's progress
            # dots; the controller's summary says it for perf tests instead (``XDIST_UNTIMED``).
            benchmark_session.xdist_benchmark_found = False


def _perf_session(config: pytest.Config):
    if SESSION not in config.stash:
        from .baseline import from_benchmark_compare
        from .journal import Journal
        from .session import PerfSession

        settings = config.stash[SETTINGS]
        writes = settings.results_file and not hasattr(config, "workerinput")  # under xdist, the controller
        journal = Journal(config.rootpath / settings.results_file if writes else None, {"rootdir": str(config.rootpath)})
        config.stash[SESSION] = PerfSession(settings, lambda: from_benchmark_compare(config), journal,
                                            progress=_progress_writer(config), sweep=config.stash[SWEEP])
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

    The model axes go to ``llmperf`` through one private parameter, and to the test itself only where
    its signature names them; the run axes likewise. A test's own ``parametrize`` of an axis wins.
    The axes are added as ``parametrize`` markers, ahead of the test's own: pytest then gives them
    precedence over a project's fixture of the same name, parametrized or not, as it does a
    decorator's, for this test only."""
    if "llmperf" not in metafunc.fixturenames and metafunc.definition.get_closest_marker(MARKER) is None:
        return
    axes = _test_settings(metafunc.config, metafunc.definition).axes
    own = _own_parametrized_names(metafunc.definition)
    signature = set(inspect.signature(metafunc.function).parameters)
    marks = []
    model_axes = [name for name in MODEL_AXES if name not in own]
    if MODEL_PARAM in metafunc.fixturenames and model_axes:
        combos = list(itertools.product(*(getattr(axes, MODEL_AXES[name]) for name in model_axes)))
        named = [name for name in model_axes if name in signature]
        values = [(tuple(zip(model_axes, combo)), *(combo[model_axes.index(name)] for name in named))
                  for combo in combos]
        ids = ["-".join(AXIS_IDS.get(name, str)(value) for name, value in zip(model_axes, combo)) for combo in combos]
        marks.append(pytest.mark.parametrize([MODEL_PARAM, *named] if named else MODEL_PARAM,
                                             values if named else [value[0] for value in values],
                                             ids=ids, scope="session"))
    else:  # marked, without ``llmperf``: only the axes the test names
        marks += [_axis_mark(name, getattr(axes, MODEL_AXES[name]), "session")
                  for name in model_axes if name in signature]
    marks += [_axis_mark(name, getattr(axes, field), "function")
              for name, field in RUN_AXES.items() if name in signature and name not in own]
    for mark in reversed(marks):  # each goes first: model axes, strategy, batch size, then the test's own
        metafunc.definition.add_marker(mark, append=False)


def _axis_mark(name: str, values, scope: str):
    return pytest.mark.parametrize(name, values, ids=[AXIS_IDS.get(name, str)(value) for value in values], scope=scope)


def _own_parametrized_names(definition) -> set[str]:
    names = set()
    for marker in definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        names.update(n.strip() for n in (argnames.split(",") if isinstance(argnames, str) else argnames))
    return names


def _model_axes(request: pytest.FixtureRequest) -> dict:
    """The model configuration of this test: its ``_llmperf_model`` parameter, and the axes the test
    parametrizes itself; an axis neither gives takes its first configured value."""
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec else {}
    axes = _test_settings(request.config, request.node).axes
    chosen = {name: getattr(axes, field)[0] for name, field in MODEL_AXES.items()}
    chosen.update(dict(params.get(MODEL_PARAM, ())))
    chosen.update({name: params[name] for name in _own_parametrized_names(request.node) & set(MODEL_AXES)
                   if name in params})
    return chosen


@pytest.fixture(name=MODEL_PARAM)
def _llmperf_model(request: pytest.FixtureRequest):
    """Stands in for the parameter ``pytest_generate_tests`` gives every test that uses ``llmperf``."""
    return ()


@pytest.fixture
def llmperf(request: pytest.FixtureRequest, benchmark, _llmperf_model):
    """Runs strategies against the model configuration of this test; see ``pytest_llmperf.fixture.LLMPerf``."""
    from .fixture import LLMPerf
    from .loading import unsupported_reason

    settings = request.config.stash[SETTINGS]
    spec = settings.model_spec(**_model_axes(request))
    reason = unsupported_reason(spec)
    if reason:
        pytest.skip(reason)
    return LLMPerf(request, benchmark, _perf_session(request.config), _test_settings(request.config, request.node),
                   spec)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every perf test carries the ``llmperf`` marker, so ``-m "not llmperf"`` leaves them all out, and
    an ``xdist_group`` per model configuration, so ``-n N --dist loadgroup`` runs a configuration's
    tests on one worker, in order, where later tests see earlier results and the model loads once."""
    if not _is_perf_test(item):
        return
    if item.get_closest_marker(MARKER) is None:
        item.add_marker(MARKER)
    callspec = getattr(item, "callspec", None)
    model = dict(callspec.params.get(MODEL_PARAM, ())) if callspec else {}
    if model and item.get_closest_marker("xdist_group") is None and item.config.pluginmanager.hasplugin("xdist"):
        configuration = "-".join(AXIS_IDS.get(name, str)(value) for name, value in model.items())
        item.add_marker(pytest.mark.xdist_group(f"llmperf-{configuration}"))


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-based reordering and other plugins'
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    perf_items = [item for item in items if _is_perf_test(item)]
    config.stash[SWEEP].total = len(perf_items)
    # `llmperf` requests pytest-benchmark's fixture (so --benchmark-only/--benchmark-skip see perf
    # tests), but outputs-only tests never time anything: that is not worth a warning.
    for item in perf_items:
        item.add_marker(pytest.mark.filterwarnings("ignore:Benchmark fixture was not used at all"))
    in_run_order(items, perf_items, (MODEL_PARAM, *MODEL_AXES))


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


def _progress_writer(config: pytest.Config):
    """``(write, interval_s)`` for progress lines (``progress.py``): pytest's terminal reporter, with
    capture suspended as live logging does it; None when progress is off (``auto``: off unless the
    output is a terminal, and always on an xdist worker, whose output is not the user's terminal)."""
    mode = config.stash[SETTINGS].progress
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if mode == "off" or reporter is None or hasattr(config, "workerinput") or (mode == "auto" and not reporter.isatty):
        return None
    capture = config.pluginmanager.getplugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(line)

    return write, (mode if isinstance(mode, float) else INTERVAL_S)


def _is_perf_test(item: pytest.Item) -> bool:
    return "llmperf" in getattr(item, "fixturenames", ()) or item.get_closest_marker(MARKER) is not None


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Fail a perf test whose llmperf gates failed, once its body has returned: every call in the
    body is checked, and the failure is an ordinary one (xfail, -x, junit and reruns see it)."""
    result = yield
    if _is_perf_test(pyfuncitem):
        from .fixture import GATE_REPORTS

        failures = [text for _, text in pyfuncitem.stash.get(GATE_REPORTS, []) if text]
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Every gate's measured-vs-required line, as the test report's ``llmperf`` section. An error
    raised in the user's own code (a strategy of theirs) shows its traceback from the test into their
    frames, without the plugin's and pytest-benchmark's frames in between."""
    if call.excinfo is not None and _is_perf_test(item) and not item.config.getoption("fulltrace", False):
        from .tracebacks import without_harness_frames

        without_harness_frames(call.excinfo)
    report = yield
    if _is_perf_test(item) and hasattr(item.config, "workerinput"):
        from .distributed import send_records

        send_records(item.config.stash.get(SESSION, None), item.config.stash, report)
    if call.when == "call" and _is_perf_test(item):
        from .fixture import GATE_REPORTS

        for gate_report, _ in item.stash.get(GATE_REPORTS, []):
            lines = [gate.line() for gate in gate_report.gates] or ["no gates"]
            timing = gate_report.result.timing
            if timing is not None:
                lines.append(timing.steadiness.line())
            report.sections.append(("llmperf", "\n".join(lines)))
    return report


@pytest.hookimpl(wrapper=True)  # around the others: ours comes last, and after a regression too
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config):
    """The llmperf tables, after pytest-benchmark's. pytest-benchmark raises ``PerformanceRegression``
    from its summary under --benchmark-compare-fail, which would hide these tables and pytest's
    final line behind a traceback: it becomes a failing exit status and one line instead."""
    from pytest_benchmark.session import PerformanceRegression

    regression = False
    try:
        yield
    except PerformanceRegression:
        if SESSION not in config.stash:  # no perf test ran: pytest-benchmark's behaviour, unchanged
            raise
        regression = True
    _write_tables(terminalreporter, config)
    perf_session = config.stash.get(SESSION, None)
    if perf_session is not None and perf_session.records and config.getoption("dist", "no") != "no":
        terminalreporter.write_line(XDIST_UNTIMED, yellow=True)
    dropped = config.stash.get(DROPPED, [])
    if dropped:
        terminalreporter.write_line(f"llmperf: left out of the saved run, interrupted before a round ended: "
                                    f"{', '.join(dropped)}", yellow=True)
    if perf_session is not None and perf_session.records and perf_session.journal.path:
        terminalreporter.write_line(f"llmperf: results file {perf_session.journal.path}")
    if perf_session is not None and perf_session.records and not hasattr(config, "workerinput"):
        _write_report_and_exports(terminalreporter, config, perf_session)
    session = config.stash.get(PYTEST_SESSION, None)
    if regression:
        found = getattr(getattr(config, "_benchmarksession", None), "performance_regressions", [])
        terminalreporter.write_line("llmperf: pytest-benchmark found a performance regression "
                                    "(--benchmark-compare-fail): failing the run", red=True, bold=True)
        for name, failure in found:
            terminalreporter.write_line(f"  {name} - {failure}", red=True)
        if session is not None and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_report_and_exports(terminalreporter, config: pytest.Config, perf_session) -> None:
    """``--llmperf-report`` and ``--llmperf-export``, from the session's records (an xdist controller's
    include its workers'); paths relative to the rootdir. A file that cannot be written is one line."""
    from .outputs import write_session_outputs

    for line, ok in write_session_outputs(perf_session, config.rootpath):
        terminalreporter.write_line(f"llmperf: {line}", yellow=not ok)


def _write_tables(terminalreporter, config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is None or not session.records:
        return
    import os

    from .report import github_summary, render, render_comparisons

    sections = [render(session.records), render_comparisons(session.comparison_records)]
    terminalreporter.write_sep("=", "llmperf results")
    terminalreporter.write_line(sections[0])
    if sections[1]:
        terminalreporter.write_sep("=", "llmperf vs baseline")
        terminalreporter.write_line(sections[1])
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(github_summary(sections))
