"""What the plugin settles when pytest starts: the options read and checked (a bad value, a missing
Hub token, an output path that cannot be written or a baseline that cannot be read is a usage error
now, not a failure after an hour-long sweep), and the notes for the summary of a session that has
perf tests. Nothing here is a config-time warning: a project without perf tests (many set
``--benchmark-*`` in addopts, under ``filterwarnings = error``) must not hear of them, nor fail on them.
"""

from __future__ import annotations

import pytest

from ..settings.config import Settings
from ..settings.options import (
    OPTIONS,
    THROUGHPUT_THRESHOLDS,
    benchmark_options_that_do_not_apply,
    read_options,
)


def add_options(parser: pytest.Parser) -> None:
    """A flag and an ini key per row of the option table."""
    group = parser.getgroup("llmperf", "LLM inference performance (pytest-llmperf)")
    for option in OPTIONS:
        if option.flag_only:
            group.addoption(option.flag, dest=f"llmperf_{option.dest}", default=None, action="store_const",
                            const="true", help=f"{option.help} [ini: {option.ini} = true]")
        else:
            group.addoption(option.flag, dest=f"llmperf_{option.dest}", default=None, metavar=option.metavar,
                            help=f"{option.help} [default: {option.default_shown}; ini: {option.ini}]")
        parser.addini(option.ini, help=option.help, default=None)


def settings_and_notes(config: pytest.Config) -> tuple[Settings, list[str]]:
    try:
        values, explicit = read_options(lambda dest: config.getoption(f"llmperf_{dest}"), config.getini)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    settings = Settings.from_options(
        values, explicit, benchmark_disable_gc=bool(config.getoption("benchmark_disable_gc", False)),
        timer=str(config.getoption("benchmark_timer", None) or "time.perf_counter"))
    notes = []
    controller = not hasattr(config, "workerinput")
    if settings.threads is not None:  # before any torch work, so that inter-op threads can still be set
        from ..measure.environment import apply_threads

        notes.append(apply_threads(settings.threads))
    if settings.push_to_hub is not None and controller:
        from ..output.hub import HubError, require_token

        try:
            require_token()
        except HubError as exc:
            raise pytest.UsageError(str(exc)) from None
    if (settings.report or settings.export or settings.push_to_hub) and controller:
        from ..output.writers import unwritable

        problem = unwritable(settings, config.rootpath)
        if problem:
            raise pytest.UsageError(problem)
    if settings.baseline is not None:
        from ..verdicts.baseline import BaselineError, load

        try:
            load(settings.baseline, require_cases=True)
        except BaselineError as exc:
            raise pytest.UsageError(f"--llmperf-baseline: {exc}") from None
    ignored = benchmark_options_that_do_not_apply(config)
    if ignored:
        notes.append(f"llmperf: {', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply to perf "
                     "tests, which run a fixed number of pedantic rounds: set --llmperf-warmup and --llmperf-rounds")
    floors = sorted(set(settings.explicit_thresholds) & set(THROUGHPUT_THRESHOLDS))
    if floors and (config.getoption("benchmark_disable", False) or (
            config.getoption("numprocesses", None) and settings.xdist_timing == "off")):
        notes.append(f"llmperf: {', '.join(floors)} will not be checked: timing is disabled "
                     "(--benchmark-disable, or --llmperf-xdist-timing off under xdist -n)")
    return settings, notes


def busy_machine(config: pytest.Config) -> str | None:
    """``environment.busy_machine`` for this process: on an xdist worker, one of as many processes."""
    import os

    from ..measure.environment import busy_machine as check

    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") if hasattr(config, "workerinput") else "1"
    return check(int(workers) if workers.isdigit() else 1)


def perf_session(config: pytest.Config, settings: Settings, sweep):
    """A new ``PerfSession``: its results file (written by the xdist controller, not its workers), the
    run --benchmark-compare selected, and its progress lines."""
    from ..output.journal import Journal
    from ..verdicts.baseline import from_benchmark_compare
    from .session import PerfSession
    from .terminal import progress_writer

    writes = settings.results_file and not hasattr(config, "workerinput")
    session = None
    journal = Journal(config.rootpath / settings.results_file if writes else None,
                      lambda: journal_header(config, session.machine_info()))
    session = PerfSession(settings, lambda: from_benchmark_compare(config), journal,
                          progress=progress_writer(config, settings), sweep=sweep)
    return session


def journal_header(config: pytest.Config, machine_info: dict) -> dict:
    """The results file's session line: what a report rebuilt from it shows of the environment."""
    from pytest_benchmark.utils import get_commit_info

    return {"rootdir": str(config.rootpath), "machine_info": {"llmperf": machine_info}, "commit_info": get_commit_info()}


def say_busy(config: pytest.Config, perf_tests: int) -> None:
    """A busy machine, said as the perf tests start (and again on the first of them, as a warning), so
    that a slow run explains itself while it runs. On an xdist worker, whose output nobody sees, only
    the warning, which reaches the controller's summary."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if (not perf_tests or config.option.collectonly or reporter is None
            or hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("benchmark")):
        return
    busy = busy_machine(config)
    if busy:
        reporter.write_line(busy, yellow=True)
        reporter.flush()
