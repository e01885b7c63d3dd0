"""Tracebacks of the user's bugs start in the user's code.

A custom strategy that raises is called through the fixture, the runner, the measurement loop and
pytest-benchmark's pedantic rounds: eight frames of harness between the test and the user's bug.
When the error was raised outside the harness, those frames are left out of the report; an error
raised in the harness itself (a bug of ours) keeps every frame, and so does ``--full-trace``.
"""

from __future__ import annotations

from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent.parent  # the package, this module being in run/
STRATEGIES_DIR = PLUGIN_DIR / "strategies"  # built-in strategies: their frames say what was running


def _harness_dirs() -> tuple[Path, ...]:
    import pytest_benchmark

    return PLUGIN_DIR, Path(pytest_benchmark.__file__).resolve().parent


def is_harness(path) -> bool:
    path = Path(str(path)).resolve()
    if path.is_relative_to(STRATEGIES_DIR):
        return False
    return any(path.is_relative_to(directory) for directory in _harness_dirs())


def without_harness_frames(excinfo) -> None:
    """Unlink the harness's frames from the traceback of ``excinfo`` (a pytest ``ExceptionInfo``),
    in place, when the error came from the user's code: a frame of neither the harness nor an
    installed library (a conftest strategy) below the harness's last frame; and for the harness's
    own one-line skips and failures, so that pytest reports them at the test's line. An error raised
    by a library the harness itself called (our bug, or bad input) keeps every frame. The raw chain
    is relinked (``tb_next`` is writable), since pytest rebuilds its view from it when it cuts at
    the test function."""
    nodes = []
    tb = excinfo.tb
    while tb is not None:
        nodes.append(tb)
        tb = tb.tb_next
    harness = [index for index, node in enumerate(nodes) if _in_harness(node)]
    if not harness:
        return
    import pytest

    ours = isinstance(excinfo.value, (pytest.skip.Exception, pytest.fail.Exception))  # a one-line skip or failure
    if not ours and not any(_is_users(node) for node in nodes[harness[-1] + 1:]):
        return
    kept = [node for node in nodes if not _in_harness(node)]
    for node, following in zip(kept, kept[1:] + [None]):
        node.tb_next = following
    excinfo.traceback = type(excinfo.traceback)(nodes[0])  # pytest's own frames come first: never harness


def _in_harness(tb) -> bool:
    return is_harness(tb.tb_frame.f_code.co_filename)


def _is_users(tb) -> bool:
    """Neither the harness nor an installed library (site-packages, the standard library)."""
    path = Path(tb.tb_frame.f_code.co_filename).resolve()
    return not is_harness(path) and not any(path.is_relative_to(directory) for directory in _library_dirs())


def _library_dirs() -> tuple[Path, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(Path(paths[name]).resolve() for name in ("stdlib", "platstdlib", "purelib", "platlib"))
