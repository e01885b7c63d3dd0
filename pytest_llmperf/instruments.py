"""Instruments: what watches (and keeps clean) each round, always from outside the timed region.

Every instrument has the same small interface, driven by ``measure.timed_rounds``:

* ``open()`` once before the first round (warmup included), untimed;
* ``before_round()`` in pytest-benchmark's pedantic ``setup``, untimed;
* ``after_round()`` in pedantic's ``teardown``, untimed; returns this round's reading;
* ``close()`` once after the last round, also when a round failed.

``timed_rounds`` keeps the readings of the measured rounds only, and ``summary`` turns them into
the instrument's ``extra_info`` fields. A new per-round metric is one new class here.

Measured cost (``benchmarks/instrument_cost.py``, ``docs/benchmarks/cpu-2core-hygiene-and-gates.md``):
a round inside all of them takes 1.001 to 1.006 of a bare round.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from .options import GC_MODES


class Instrument:
    """Base class: every hook is optional."""

    name = "instrument"  # the key of its readings in ``Timing.readings``

    def open(self) -> None:
        pass

    def before_round(self) -> None:
        pass

    def after_round(self) -> Any:
        return None

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

    def after_round(self) -> int:
        return self.compiled() - self._before

    def summary(self, readings: Sequence[int]) -> dict:
        return {"compilations_in_measured_rounds": sum(readings)}


@dataclass(frozen=True)
class Collections:
    """Garbage collections that ran during one round, and the time they took."""

    by_generation: tuple[int, int, int]
    pause_s: float


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
            gc.collect()
            gc.freeze()
            self.frozen_objects = gc.get_freeze_count()
        gc.callbacks.append(self._on_collection)

    def before_round(self) -> None:
        if self.mode == "freeze":
            gc.collect()  # what the previous round left; the frozen heap is not scanned
        self._snapshot = (tuple(self._counts), self._pause_s)

    def after_round(self) -> Collections:
        counts, pause_s = self._snapshot
        return Collections(tuple(now - before for now, before in zip(self._counts, counts)),
                           self._pause_s - pause_s)

    def close(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        if self.mode == "freeze":
            gc.unfreeze()  # the frozen objects become collectable again (a closed model must be freed)

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

    def after_round(self) -> float:
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
