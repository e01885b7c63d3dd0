"""Shared set-up for the plugin's own tests: each test writes a small perf suite and runs it with
pytester, the way a user runs `pytest`, on the real embedded tiny model (no mocks, no network)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def one_share_of_the_cpus_per_xdist_worker() -> None:
    """Under ``pytest tests -n 2`` each worker gets its share of the CPUs for torch's intra-op threads,
    as the plugin advises a user whose workers oversubscribe the machine (``measure/environment.py:
    busy_machine``: "set --llmperf-threads N"). With torch's own default, one thread per core in each
    worker, two workers run four spinning OpenMP threads on two cores, and every round waits for the
    other worker's: the same files took 52.7 s with it and 23.0 s with one thread each
    (``docs/benchmarks/cpu-2core-test-suite.md``). Set before torch is imported (here, and in the
    processes the tests start, which inherit the environment); a project that set its own is kept."""
    from pytest_llmperf.measure.environment import cpus_available

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpus_available() // workers)))


one_share_of_the_cpus_per_xdist_worker()


def bind_transformers_logging_to_this_session() -> None:
    """transformers binds its log handler to the ``sys.stderr`` of its first use. Done inside a
    pytester inline run, that stream is closed after the run, and every later transformers warning
    prints "--- Logging error ---" with a traceback into the next runs' output."""
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers")


bind_transformers_logging_to_this_session()


def freeze_the_heap_of_the_libraries() -> None:
    """Freeze the heap once the libraries every run imports are loaded, as a project that follows vLLM's
    and SGLang's advice does after loading its model: the plugin keeps a heap frozen before its rounds
    as it is (``measure/instruments.py: Collector``), so the collections around each pytester run's
    rounds scan only what is newer. This process runs hundreds of sessions over a heap of about 400,000
    objects, where each full collection costs 0.2 to 0.4 s on 2 cores: a fifth of the suite's time
    before. ``test_hygiene.py`` unfreezes it for the tests of a project that froze nothing.

    Done once the tests are collected (their modules frozen too), so only where tests run: a run
    without ``-n``, and each xdist worker. The controller of ``-n 2`` collects nothing, and so no longer
    spends 4 s importing these before it starts its workers."""
    import gc

    import datasets  # noqa: F401
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM  # noqa: F401

    import pytest_llmperf.plugin  # noqa: F401

    gc.collect()
    gc.freeze()


def pytest_collection_finish(session):
    freeze_the_heap_of_the_libraries()


def resolved_auto_device() -> str:
    """What ``--llmperf-device auto`` (the default) resolves to here: the tests also run on a GPU machine."""
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def latency_rounds(rounds: int) -> int:
    """The strategy calls the default latency mode (auto) adds after ``rounds`` measured rounds here: as
    many again where it records latency in rounds of its own (CUDA), none where it records it in the
    measured rounds (CPU)."""
    from pytest_llmperf.measure import latency

    return rounds if latency.mode("auto", resolved_auto_device()) == "extra" else 0


# Small and quick: 4 prompts, 8 new tokens, one measured round. A test whose point needs more work (a
# planted slowdown timed against noise, memory that grows with the batch) asks for it itself.
FAST = ("--llmperf-num-samples=4", "--llmperf-max-new-tokens=8", "--llmperf-warmup=0", "--llmperf-rounds=1",
        "-p", "no:cacheprovider", "-p", "no:randomly")

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''

MARKED_SUITE = '''
import pytest

@pytest.mark.llmperf({overrides})
def test_marked(llmperf, strategy, batch_size):
    pass

def test_default(llmperf, strategy, batch_size):
    pass
'''


def marked_suite(**overrides) -> str:
    """Two perf tests that only collect: one marked with these axis overrides, one with the session's axes."""
    return MARKED_SUITE.format(overrides=", ".join(f"{key}={value!r}" for key, value in overrides.items()))


RIGHT_PADDING_CONFTEST = '''
from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("rightpad")
class RightPadding(ManualStrategy):
    """The classic batched-generation bug: padding a decoder-only model on the right."""

    def generate(self, ctx):
        ctx.tokenizer.padding_side = "right"
        try:
            return super().generate(ctx)
        finally:
            ctx.tokenizer.padding_side = "left"
'''


def busy_warnings(result) -> int:
    """1 when the run's first perf test carried the busy-machine warning (a CPU hog on every core, a
    shared CI runner), else 0: a test that counts warnings adds it, as a user would read it."""
    return int("NoisyMeasurementWarning: llmperf: the machine is busy" in result.stdout.str()
               or "NoisyMeasurementWarning: llmperf: torch runs" in result.stdout.str())


@pytest.fixture
def torch_threads_put_back():
    """For a test whose in-process sessions set torch's threads (``--llmperf-threads``, or a fixture on
    top of this one): this process's threads as they were, after it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def judged_as_measured(monkeypatch):
    """For tests that check what a floor or a ceiling does with the rounds as measured: as on a kernel
    that does not report the time threads wait for a CPU (macOS). Where it does (Linux), a floor
    missed on a machine so busy that the rounds' threads waited as long as they ran has no bound, and a
    latency ceiling missed while they waited 5% of the time is not judged: both are inconclusive, and
    the busier `pytest tests -n 2` makes these runs, the likelier that is. Those rules are tested on
    measured rounds in test_stats.py and under load in test_gates.py's busy test."""
    from pytest_llmperf.measure.instruments import CpuWait

    monkeypatch.setattr(CpuWait, "schedstats", classmethod(lambda cls: None))


@pytest.fixture(autouse=True)
def keep_libraries_loaded_between_inline_runs(monkeypatch):
    """pytester's in-process runs restore ``sys.modules`` afterwards, deleting every module first
    imported during the run. transformers' lazy modules do not survive that (the next run fails
    with "Could not import module 'LlamaConfig'"), so only the test's own modules are dropped."""
    from _pytest import pytester as pytester_module

    original_init = pytester_module.SysModulesSnapshot.__init__

    def init(self, preserve=None):
        def keep(name):
            return not (name.startswith("test_") or name == "conftest") or bool(preserve and preserve(name))

        original_init(self, preserve=keep)

    monkeypatch.setattr(pytester_module.SysModulesSnapshot, "__init__", init)


@pytest.fixture(scope="session", autouse=True)
def a_users_session_is_not_an_xdist_worker():
    """Under ``pytest tests -n 2`` each test runs in an xdist worker, whose environment says so
    (``PYTEST_XDIST_WORKER``: pytest-benchmark then switches timing off). The sessions a test runs
    with pytester are a user's own, in-process or in a subprocess, from a test or a module's
    fixture: they must not inherit it (session scope: set up before any other fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
def run_suite(pytester):
    """Write `suite` (default: one benchmarked test) and run pytest on it with the fast flags."""

    def run(*args, suite=SUITE, conftest=None, **kwargs):
        if conftest is not None:
            pytester.makeconftest(conftest)
        pytester.makepyfile(test_perf=suite)
        return pytester.runpytest(*FAST, *args, **kwargs)

    return run
