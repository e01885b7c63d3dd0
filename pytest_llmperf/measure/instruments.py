"""Instruments: what watches (and keeps clean) each round, always from outside the timed region.

Every instrument has the same small interface, driven by ``measure.timed_rounds``:

* ``open()`` once before the first round (warmup included), untimed;
* ``before_round()`` in pytest-benchmark's pedantic ``setup``, untimed, in the order the
  instruments are listed;
* ``after_round(generations)`` in pedantic's ``teardown``, untimed, in the reverse order (the
  innermost first), given what the round generated; returns this round's reading;
* ``close()`` once after the last round, also when a round failed.

``timed_rounds`` keeps the readings of the measured rounds only, and ``summary`` turns them into
the instrument's ``extra_info`` fields. An instrument that costs too much to run inside measured
rounds sets ``extra_rounds``: it records nothing in them, and gets that many rounds of its own
after them (``begin_extra_rounds`` is called first), whose readings its ``summary`` gets instead.
A new per-round metric is one new class here.

Measured cost (``benchmarks/instrument_cost.py``, ``docs/benchmarks/cpu-2core-hygiene-and-gates.md``):
a round inside all of them takes 1.001 to 1.006 of a bare round.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ..settings.options import GC_MODES
from . import latency


class Instrument:
    """Base class: every hook is optional."""

    name = "instrument"  # the key of its readings in ``Timing.readings``
    extra_rounds = 0  # rounds of its own after the measured ones (it costs too much inside them)

    def open(self) -> None:
        pass

    def before_round(self) -> None:
        pass

    def after_round(self, generations=None) -> Any:
        return None

    def begin_extra_rounds(self) -> None:
        pass

    def close(self) -> None:
        pass

    def summary(self, readings: Sequence[Any]) -> dict:
        """``extra_info`` fields from the measured rounds' readings."""
        return {}


class CompileCounter(Instrument):
    """Graphs torch.compile compiled during each round, whoever asked for them."""

    name = "compilations"

    def __init__(self) -> None:
        self._before = 0

    @staticmethod
    def compiled() -> int:
        dynamo_utils = sys.modules.get("torch._dynamo.utils")  # not imported: nothing was compiled
        return 0 if dynamo_utils is None else dynamo_utils.counters["stats"]["unique_graphs"]

    def before_round(self) -> None:
        self._before = self.compiled()

    def after_round(self, generations=None) -> int:
        return self.compiled() - self._before

    def summary(self, readings: Sequence[int]) -> dict:
        return {"compilations_in_measured_rounds": sum(readings)}


@dataclass(frozen=True)
class Collections:
    """Garbage collections that ran during one round, and the time they took."""

    by_generation: tuple[int, int, int]
    pause_s: float


# At least this many objects in the permanent generation before the rounds: the project froze its heap (a
# process with pytest loaded holds far more). CPython 3.12 puts its immortal objects there at every full
# collection (375 on 3.12.1 and 3.12.3), so a few hundred mean nothing was frozen.
PROJECT_FREEZE = 10_000


class Collector(Instrument):
    """Keeps Python's garbage collector out of measured time, and shows any collection that ran anyway.

    In a pytest process the heap is large (the model, pytest, transformers: ~420k tracked objects),
    and one automatic full collection takes 0.3-0.4 s on a 2-core CPU; where it lands depends on
    unrelated allocations. ``freeze`` (the default) collects and then ``gc.freeze()``s the heap
    before the first round, so later collections ignore everything that existed before the test,
    and collects what the previous round left in each round's untimed setup. The collector stays
    on, as in a user's process, with nothing old to scan: this is what vLLM and SGLang do after
    loading a model. ``none`` leaves the collector as Python runs it. pytest-benchmark's
    ``--benchmark-disable-gc`` additionally switches automatic collection off inside each round.

    A heap that the project froze before the rounds (vLLM's and SGLang's advice after loading a model,
    or a conftest) stays as the project left it: the collection before the rounds then scans only what
    is newer than that freeze, nothing more is frozen, and nothing is unfrozen after the rounds
    (``gc.unfreeze()`` cannot tell the project's frozen objects from this test's).

    Whatever the mode, every collection inside a round is counted per generation with its pause
    (through ``gc.callbacks``), explicit ones included: transformers' ``generate_batch`` calls
    ``gc.collect()`` on every call.
    """

    name = "gc"

    def __init__(self, mode: str, disabled_in_rounds: bool) -> None:
        if mode not in GC_MODES:
            raise ValueError(f"unknown gc mode {mode!r}; valid values: {', '.join(GC_MODES)}")
        self.mode = mode
        self.disabled_in_rounds = disabled_in_rounds
        self.frozen_objects: int | None = None
        self._froze = False
        self._counts = [0, 0, 0]
        self._pause_s = 0.0
        self._started: float | None = None
        self._snapshot: tuple[tuple[int, int, int], float] = ((0, 0, 0), 0.0)

    def _on_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self._pause_s += time.perf_counter() - self._started
            self._counts[info["generation"]] += 1
            self._started = None

    def open(self) -> None:
        if self.mode == "freeze":
            frozen_before = gc.get_freeze_count()
            gc.collect()
            self._froze = frozen_before < PROJECT_FREEZE
            if self._froze:
                gc.freeze()
            self.frozen_objects = gc.get_freeze_count() if self._froze else frozen_before
        gc.callbacks.append(self._on_collection)

    def before_round(self) -> None:
        if self.mode == "freeze":
            gc.collect()  # what the previous round left; the frozen heap is not scanned
        self._snapshot = (tuple(self._counts), self._pause_s)

    def after_round(self, generations=None) -> Collections:
        counts, pause_s = self._snapshot
        return Collections(tuple(now - before for now, before in zip(self._counts, counts)),
                           self._pause_s - pause_s)

    def close(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        if self._froze:
            gc.unfreeze()  # the frozen objects become collectable again (a closed model must be freed)
            self._froze = False

    def summary(self, readings: Sequence[Collections]) -> dict:
        return {
            "gc_mode": self.mode,
            "gc_enabled_in_rounds": not self.disabled_in_rounds,
            "gc_frozen_objects": self.frozen_objects,
            "gc_collections_in_measured_rounds": {
                f"gen{generation}": sum(r.by_generation[generation] for r in readings) for generation in range(3)},
            "gc_pause_s_in_measured_rounds": sum(r.pause_s for r in readings),
        }


class SpeedProbe(Instrument):
    """How fast the machine is right now, measured by a fixed workload that does not depend on the
    code under test: a few matrix products on the device (through torch's threads, like inference)
    and a pure-Python loop (the interpreter, which dominates small models). It runs after each
    round, untimed, about 10 ms on a 2-core CPU.

    A noisy neighbour, a throttled clock or a slower runner slows the probe as it slows the rounds,
    so the gates can tell a slower machine from slower code: they compare rates and times scaled by
    the median probe reading of each case (``metrics.rounds_at_equal_speed``).
    """

    name = "probe"
    MATMULS, SIZE, LOOP = 60, 256, 60_000

    def __init__(self, device: str, sync) -> None:
        self._device, self._sync = device, sync
        self._operands = None

    def open(self) -> None:
        import torch

        generator = torch.Generator().manual_seed(0)
        self._operands = [torch.randn(self.SIZE, self.SIZE, generator=generator).to(self._device) for _ in range(2)]

    def after_round(self, generations=None) -> float:
        a, b = self._operands
        self._sync()
        start = time.perf_counter()
        for _ in range(self.MATMULS):
            a.mm(b)
        self._sync()
        total = 0
        for i in range(self.LOOP):
            total += i * i
        return time.perf_counter() - start

    def close(self) -> None:
        self._operands = None

    def summary(self, readings: Sequence[float]) -> dict:
        return {"probe_s": list(readings)}


class CpuWait(Instrument):
    """How long the threads doing this process's work waited for a CPU during each round: Linux's
    per-thread run-queue delay (``/proc/self/task/*/schedstat``: time runnable but not running),
    summed over the threads that ran for at least ``WORKING`` of the busiest one's time in the round
    (Python's thread and torch's compute threads; not the helper threads that wake for a moment,
    whose waits delay nobody: on a quiet machine two such threads were seen waiting half of each
    bs=4 round while it ran at full speed), over the round's wall time. Near 0 on a quiet machine;
    what other processes took from the round when they hold the cores. One waiting compute thread
    stalls the others at the end of each parallel region, so the sum is about what the round lost
    to waiting or more (with one busy-looping competitor on a 2-core machine, the credited rates came
    out at 1.02x to 1.27x quiet ones, once 0.93x), and reaches 1 when each of two threads got half a
    core.

    The gates judge a slower round only after crediting it with this wait
    (``metrics.rounds_without_cpu_wait``): a shortfall that the time spent waiting for a CPU could
    explain is inconclusive, not slower code. Where the kernel does not report it (no ``/proc``) it
    records nothing and the gates judge as before. Reading the files costs about 0.1 ms per round,
    outside the timed region."""

    name = "cpu_wait"
    TASKS = "/proc/self/task"
    WORKING = 0.10

    def __init__(self) -> None:
        self._start: tuple[float, dict[str, tuple[int, int]]] | None = None

    @classmethod
    def schedstats(cls) -> dict[str, tuple[int, int]] | None:
        """``(time running, time waiting for a CPU)`` so far per thread id, in ns; None where the
        kernel does not say."""
        try:
            names = os.listdir(cls.TASKS)
        except OSError:
            return None
        found = {}
        for name in names:
            try:
                with open(f"{cls.TASKS}/{name}/schedstat") as stats:
                    running, waiting = stats.read().split()[:2]
                found[name] = (int(running), int(waiting))
            except (OSError, ValueError):
                continue  # a thread that ended in between
        return found or None

    def before_round(self) -> None:
        stats = self.schedstats()
        self._start = None if stats is None else (time.perf_counter(), stats)

    def after_round(self, generations=None) -> float | None:
        if self._start is None:
            return None
        started, before = self._start
        wall_ns, after = 1e9 * (time.perf_counter() - started), self.schedstats()
        if after is None or wall_ns <= 0:
            return None
        deltas = [(running - before.get(thread, (0, 0))[0], waiting - before.get(thread, (0, 0))[1])
                  for thread, (running, waiting) in after.items()]  # a thread started in the round counts from 0
        busiest = max(ran for ran, _ in deltas)
        return sum(waited for ran, waited in deltas if ran >= self.WORKING * busiest) / wall_ns

    def summary(self, readings: Sequence[float | None]) -> dict:
        shares = list(readings)
        return {"cpu_wait_share": None if not shares or None in shares else shares}


MiB = 2 ** 20


@dataclass(frozen=True)
class MemoryReading:
    peak_bytes: int  # during the round: torch's max allocated on CUDA, the RSS high-water mark on CPU
    reserved_bytes: int | None  # CUDA: what torch's caching allocator held at its peak


class PeakMemory(Instrument):
    """Peak memory during each measured round, and the part above the loaded model (the
    configuration's resident baseline, ``LoadedModel.ready``): activations, the KV cache and the
    strategy's buffers, including those it set up before the rounds.

    On CUDA: ``torch.cuda.max_memory_allocated`` (and ``max_memory_reserved``), with the peak reset
    in each round's untimed setup. On CPU (Linux): the process's resident-set high-water mark
    (``VmHWM``), reset through ``/proc/self/clear_refs`` before each round, after the allocator has
    returned freed memory to the system (``malloc_trim``), so a round's peak is its own and never
    the process's lifetime maximum. Elsewhere it is not available, said in ``memory_measure``.
    """

    name = "peak_memory"

    def __init__(self, device: str, model_bytes: int | None) -> None:
        self._device = device
        self._cuda = device.startswith("cuda")
        self.model_bytes = model_bytes
        self.unavailable = "" if self._cuda or _reset_rss_peak() else \
            "not available: the RSS high-water mark cannot be reset here (Linux only)"

    def before_round(self) -> None:
        if self._cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self._device)
        elif not self.unavailable:
            _trim_heap()
            _reset_rss_peak()

    def after_round(self, generations=None) -> MemoryReading | None:
        if self._cuda:
            import torch

            return MemoryReading(torch.cuda.max_memory_allocated(self._device),
                                 torch.cuda.max_memory_reserved(self._device))
        return None if self.unavailable else MemoryReading(_rss_bytes("VmHWM"), None)

    def summary(self, readings: Sequence[MemoryReading | None]) -> dict:
        measured = [reading for reading in readings if reading is not None]
        if not measured:
            return {**UNMEASURED_MEMORY, "memory_measure": self.unavailable or None}
        peak = max(reading.peak_bytes for reading in measured)
        reserved = [reading.reserved_bytes for reading in measured if reading.reserved_bytes is not None]
        return {
            "peak_memory_mb": peak / MiB,
            "peak_memory_above_model_mb": None if self.model_bytes is None else max(0, peak - self.model_bytes) / MiB,
            "peak_memory_reserved_mb": max(reserved) / MiB if reserved else None,
            "memory_measure": ("cuda max_memory_allocated, reset per round" if self._cuda
                               else "rss high-water mark (VmHWM), reset per round"),
        }


class Latency(Instrument):
    """Per-request latency (``latency.py``): the round's start is stamped as the last thing before it,
    the strategy reports its requests' times through ``RunContext.latency``, and the reading is each
    request's latency cut to the tokens it generated.

    ``mode`` says where it records: ``rounds`` in the measured rounds themselves; ``extra`` in as many
    rounds of its own after them, so the throughput comes from uninstrumented rounds (where reporting
    a token costs more than ``benchmarks/latency_cost.py`` allows); ``off`` nowhere. The
    ``latency_source`` field says which.
    """

    name = "latency"

    def __init__(self, reporter, strategy: str, mode: str, rounds: int) -> None:
        self._reporter, self._strategy = reporter, strategy
        self._recording = mode == "rounds"
        self.extra_rounds = rounds if mode == "extra" else 0
        self.source = {"rounds": latency.IN_MEASURED_ROUNDS, "extra": latency.IN_EXTRA_ROUNDS, "off": latency.OFF}[mode]

    def before_round(self) -> None:
        if self._recording:
            self._reporter.begin(time.perf_counter())

    def after_round(self, generations=None):
        """The round's raw times and its requests' token counts; turned into latencies in ``summary``,
        so nothing is computed (or allocated) between the round and the other instruments' readings."""
        times = self._reporter.end()
        if times is None or generations is None:
            return None
        return times, [len(sample.token_ids) for sample in generations.samples]

    def begin_extra_rounds(self) -> None:
        self._recording = True

    def close(self) -> None:
        self._reporter.end()

    def summary(self, readings: Sequence) -> dict:
        return latency.summary([None if reading is None else latency.round_latency(*reading, self._strategy)
                                for reading in readings], self.source)


def resident_bytes(device: str) -> int | None:
    """What is resident now: torch's allocated bytes on CUDA; on CPU the live RSS (after a collection
    and a heap trim), or None where it cannot be read. Taken once a configuration is ready."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
        return torch.cuda.memory_allocated(device)
    gc.collect()
    _trim_heap()
    try:
        return _rss_bytes("VmRSS")
    except OSError:
        return None


UNMEASURED_MEMORY = {"peak_memory_mb": None, "peak_memory_above_model_mb": None, "peak_memory_reserved_mb": None}


def _rss_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise OSError(f"no {field} in /proc/self/status")


def _reset_rss_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0: ``echo 5 > clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        _rss_bytes("VmHWM")
    except OSError:
        return False
    return True


def _trim_heap() -> None:
    """Give the heap's free memory back to the system (glibc), so RSS is the live set."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS keeps what the allocator holds
        pass
