"""GPU telemetry and energy during the measured rounds.

* **Telemetry** (NVIDIA, through nvidia-ml-py): a separate process (spawned, not a thread, so
  sampling never competes with the rounds for the interpreter) samples NVML at about 20 Hz for the
  whole session: utilisation, memory used, power, SM clock, temperature and the clock-event
  (throttle) reasons. Each round's window is two clock reads in its untimed setup and teardown;
  the samples inside the windows of the measured rounds are fetched once the case's rounds are
  over, so nothing crosses the process boundary during them.
* **Energy**: the GPU's energy counter (``nvmlDeviceGetTotalEnergyConsumption``) read at each
  window's ends; where the counter is missing, or did not advance over one of a case's rounds
  (rounds shorter than its update period), the power samples integrated over each window.
  On CPU, Intel RAPL's package counters (``/sys/class/powercap``) where they are readable.
  Per round, energy over its generated tokens and over its samples; the case's figures are the
  medians over its measured rounds.
* **Throttling**: a thermal or power clock event during a measured round warns on the test: a
  throttled measurement is not a clean measurement.

On a machine without an NVIDIA GPU (or without nvidia-ml-py) telemetry is "not available",
said once per session, and nothing fails. Nothing here is imported when the plugin loads.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import astuple, dataclass
from statistics import fmean, median
from typing import Callable, Sequence

from .instruments import Instrument

SAMPLE_HZ = 20

# nvmlClocksEventReason* bits (nvml.h) that mean the clock was held down by heat or power.
THROTTLE_REASONS = {
    0x0000000000000004: "power cap (software)",
    0x0000000000000008: "hardware slowdown",
    0x0000000000000020: "thermal (software)",
    0x0000000000000040: "thermal (hardware)",
    0x0000000000000080: "power brake (hardware)",
}

KEYS = ("telemetry", "telemetry_samples", "gpu_utilization_pct_mean", "gpu_memory_used_mb_max",
        "gpu_power_w_mean", "gpu_sm_clock_mhz_mean", "gpu_sm_clock_mhz_min", "gpu_temperature_c_max",
        "gpu_throttle_reasons", "energy_measure", "energy_j_per_round", "energy_per_token_j", "energy_per_sample_j",
        "energy_j_rounds")


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic(), the same clock in every process of the machine
    utilization_pct: float
    memory_used_mb: float
    power_w: float | None
    sm_clock_mhz: float
    temperature_c: float
    reasons: int  # clock-event reason bits


def throttle_reasons(bits: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if bits & bit]


def integrate_power_j(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """Energy over [start, end] from power samples (trapezoids, the window's ends held at the
    nearest sample); None with fewer than two samples with power in or around the window."""
    points = [(s.t, s.power_w) for s in samples if s.power_w is not None]
    before = [p for p in points if p[0] <= start][-1:]
    after = [p for p in points if p[0] >= end][:1]
    inside = before + [p for p in points if start < p[0] < end] + after
    if len(inside) < 2:
        return None
    clipped = [(min(max(t, start), end), w) for t, w in inside]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(clipped, clipped[1:]))


# -- the sampling process ---------------------------------------------------------------------------

def nvml_reader(uuid: str | None, index: int) -> Callable[[], Sample]:
    """A function reading one NVML sample of the GPU (by UUID, else, or when that fails, by NVML index)."""
    import pynvml

    pynvml.nvmlInit()
    handle = _nvml_handle(pynvml, uuid, index)
    reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        pynvml.nvmlDeviceGetCurrentClocksThrottleReasons

    def optional(read, default=None):
        try:
            return read()
        except pynvml.NVMLError:  # not supported on this GPU (MIG, vGPU...)
            return default

    def read() -> Sample:
        return Sample(time.monotonic(),
                      optional(lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu, 0.0),
                      pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2 ** 20,
                      optional(lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3),  # mW
                      optional(lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM), 0.0),
                      optional(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU), 0.0),
                      optional(lambda: reasons(handle), 0))

    return read


def _nvml_handle(pynvml, uuid: str | None, index: int):
    if uuid:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(uuid)
        except pynvml.NVMLError:
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def sample_forever(reader: str, reader_args: Sequence, hz: float, commands=None, out=None) -> None:
    """The sampling process: build the reader (``module:function`` called with ``reader_args``), say
    ready (or why not), then sample at ``hz``; on a "fetch" line answer every sample since the last
    one, as one JSON line; end on "stop" or when the parent goes."""
    import select

    commands, out = commands or sys.stdin, out or sys.stdout

    def answer(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    try:
        module, name = reader.split(":")
        read = getattr(importlib.import_module(module), name)(*reader_args)
        samples = [read()]
    except Exception as exc:
        answer({"error": f"{type(exc).__name__}: {exc}"})
        return
    answer({"ready": True})
    failure, period, next_at = None, 1.0 / hz, time.monotonic() + 1.0 / hz
    while True:
        waiting, _, _ = select.select([commands], [], [], max(0.0, next_at - time.monotonic()))
        if waiting:
            command = commands.readline().strip()
            if command in ("stop", ""):  # "" : end of input, the parent is gone
                return
            answer({"error": failure} if failure else {"samples": [list(astuple(s)) for s in samples]})
            samples = []
            continue
        if failure is None:
            try:
                samples.append(read())
            except Exception as exc:  # answered at the next fetch
                failure = f"{type(exc).__name__}: {exc}"
        next_at = max(next_at + period, time.monotonic())  # fell behind (a stalled machine): no burst


class Sampler:
    """The sampling process (``python -m pytest_llmperf.measure.telemetry``), started once per device and
    session, and stopped at its end. A plain subprocess: it shares nothing with the test process
    (no fork of a CUDA context, no re-import of a script's ``__main__``)."""

    def __init__(self, reader: str, reader_args: Sequence = (), hz: float = SAMPLE_HZ, timeout: float = 60.0):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pytest_llmperf.measure.telemetry", reader, json.dumps(list(reader_args)), str(hz)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        first = self._answer(timeout)
        if "error" in first:
            self.stop()
            raise RuntimeError(first["error"])

    def _answer(self, timeout: float) -> dict:
        import select

        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else None
        if line is None:
            raise TimeoutError(f"the telemetry process did not answer within {timeout:g} s")
        if not line:
            raise RuntimeError(f"the telemetry process ended (exit status {self._process.wait()})")
        return json.loads(line)

    def fetch(self, timeout: float = 10.0) -> list[Sample]:
        """Every sample taken since the last fetch."""
        self._process.stdin.write("fetch\n")
        self._process.stdin.flush()
        answer = self._answer(timeout)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return [Sample(*row) for row in answer["samples"]]

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        try:
            self._process.stdin.write("stop\n")
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()


# -- energy counters --------------------------------------------------------------------------------

class RaplCounter:
    """Intel RAPL package energy (all packages), from ``/sys/class/powercap``; joules, wrap-around handled."""

    name = "rapl package energy counter"

    def __init__(self, paths: Sequence[str]):
        self._paths = list(paths)
        self._ranges = [int(open(path.replace("energy_uj", "max_energy_range_uj")).read()) for path in self._paths]
        self._last = self._raw()
        self._total = 0.0

    @classmethod
    def find(cls, root: str = "/sys/class/powercap") -> "RaplCounter | None":
        """The package zones (not ``psys``, which already holds them) when their counters are readable."""
        try:
            paths = [f"{zone}/energy_uj" for zone in sorted(glob.glob(f"{root}/intel-rapl:[0-9]*"))
                     if ":" not in zone.rsplit("intel-rapl:", 1)[1]
                     and open(f"{zone}/name").read().startswith("package-")]
            return cls(paths) if paths else None
        except (OSError, ValueError):  # present but not readable (since 2020, root only by default)
            return None

    def _raw(self) -> list[int]:
        return [int(open(path).read()) for path in self._paths]

    def joules(self) -> float:
        now = self._raw()
        for i, (before, value) in enumerate(zip(self._last, now)):
            self._total += ((value - before) % self._ranges[i]) / 1e6
        self._last = now
        return self._total


class NvmlEnergyCounter:
    name = "nvml energy counter"

    def __init__(self, uuid: str | None, index: int):
        import pynvml

        pynvml.nvmlInit()
        self._pynvml = pynvml
        self._handle = _nvml_handle(pynvml, uuid, index)
        self.joules()  # raises NVMLError_NotSupported where the GPU has no counter (before Volta)

    def joules(self) -> float:
        return self._pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3  # mJ


# -- what a session holds, per device ----------------------------------------------------------------

@dataclass
class Source:
    """A device's telemetry for the session: the sampler and energy counter, or why there are none."""

    sampler: Sampler | None = None
    counter: object | None = None  # .joules(), .name
    unavailable: str = ""

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None


def open_source(device: str) -> Source:
    """Start what can be measured on ``device``: NVML telemetry and energy on an NVIDIA GPU, RAPL
    energy on CPU where readable."""
    if not device.startswith("cuda"):
        return Source(counter=RaplCounter.find(),
                      unavailable=f"not available: no NVIDIA GPU in use (device {device})")
    if importlib.util.find_spec("pynvml") is None:  # nvidia-ml-py
        return Source(unavailable="not available: nvidia-ml-py is not installed (pip install pytest-llmperf[gpu])")
    uuid, index = _nvml_identity(device)
    try:
        sampler = Sampler("pytest_llmperf.measure.telemetry:nvml_reader", (uuid, index))
    except (RuntimeError, TimeoutError, OSError) as exc:  # NVML missing from the driver, no permission...
        return Source(unavailable=f"not available: NVML failed ({exc})")
    return Source(sampler=sampler, counter=_energy_counter(uuid, index))


def _nvml_identity(device: str) -> tuple[str | None, int]:
    """torch's device -> NVML's: by UUID (CUDA_VISIBLE_DEVICES renumbers torch's indices), else by index."""
    import torch

    index = torch.device(device).index or 0
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return (f"GPU-{uuid}" if uuid is not None else None), index


def _energy_counter(uuid, index):
    try:
        return NvmlEnergyCounter(uuid, index)
    except Exception:  # no counter on this GPU: power samples are integrated instead
        return None


# -- the instrument ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    start: float
    end: float
    joules: float | None  # from the counter; None: integrate the power samples
    tokens: int
    samples: int


class Telemetry(Instrument):
    """Each round's window and energy-counter readings; the samples in the measured rounds' windows
    are fetched from the sampling process in ``summary``."""

    name = "telemetry"

    def __init__(self, source: Source):
        self._source = source
        self._start = self._joules = None

    def _read_joules(self) -> float | None:
        return None if self._source.counter is None else self._source.counter.joules()

    def before_round(self) -> None:
        self._joules = self._read_joules()
        self._start = time.monotonic()

    def after_round(self, generations=None) -> Window | None:
        end = time.monotonic()
        joules = self._read_joules()
        if generations is None or self._start is None:
            return None
        used = None if joules is None or self._joules is None else joules - self._joules
        return Window(self._start, end, used, generations.generated_tokens, generations.num_samples)

    def summary(self, readings: Sequence[Window | None]) -> dict:
        windows = [w for w in readings if w is not None]
        samples: list[Sample] = []
        if self._source.sampler is not None:
            try:
                samples = self._source.sampler.fetch()
            except (RuntimeError, TimeoutError, OSError) as exc:  # it died: no telemetry from here on
                self._source.close()
                self._source.unavailable = f"not available: the telemetry process stopped ({exc})"
        return summarize(windows, samples, self._source.unavailable,
                         self._source.counter.name if self._source.counter is not None else None)


def summarize(windows: Sequence[Window], samples: Sequence[Sample], unavailable: str,
              counter_name: str | None) -> dict:
    """The ``extra_info`` telemetry fields of a case from its measured rounds' windows."""
    info: dict = dict.fromkeys(KEYS)
    inside = [s for s in samples if any(w.start <= s.t <= w.end for w in windows)]
    info["telemetry"] = unavailable or f"nvml, {SAMPLE_HZ} Hz in a separate process"
    if inside:
        power = [s.power_w for s in inside if s.power_w is not None]
        bits = 0
        for sample in inside:
            bits |= sample.reasons
        info.update(
            telemetry_samples=len(inside),
            gpu_utilization_pct_mean=fmean(s.utilization_pct for s in inside),
            gpu_memory_used_mb_max=max(s.memory_used_mb for s in inside),
            gpu_power_w_mean=fmean(power) if power else None,
            gpu_sm_clock_mhz_mean=fmean(s.sm_clock_mhz for s in inside),
            gpu_sm_clock_mhz_min=min(s.sm_clock_mhz for s in inside),
            gpu_temperature_c_max=max(s.temperature_c for s in inside),
            gpu_throttle_reasons=throttle_reasons(bits),
        )
    elif not unavailable:
        info["telemetry_samples"] = 0  # rounds shorter than a sampling period
    # A device never draws nothing: a counter that did not advance over a round updates less often than
    # the rounds last (an H200's NVML counter read 0 J over some of a case's 30 to 55 ms rounds and a
    # step of several joules over the others), so its readings are not the rounds' energy: every
    # round's power samples are integrated instead.
    stalled = any(w.joules is not None and w.joules <= 0 for w in windows)
    energies = []
    for window in windows:
        counted = window.joules is not None and not stalled
        energies.append((window.joules if counted else integrate_power_j(samples, window.start, window.end), window))
    measured = [(j, w) for j, w in energies if j is not None]
    if measured and len(measured) == len(windows):
        info["energy_measure"] = (f"integrated power ({counter_name} did not advance over a round)" if stalled
                                  else counter_name if all(w.joules is not None for w in windows)
                                  else "integrated power")
        info["energy_j_rounds"] = [j for j, _ in measured]
        info["energy_j_per_round"] = median(info["energy_j_rounds"])
        info["energy_per_token_j"] = median(j / w.tokens for j, w in measured) if all(w.tokens for w in windows) \
            else None
        info["energy_per_sample_j"] = median(j / w.samples for j, w in measured)
    return info


if __name__ == "__main__":  # the sampling process: python -m pytest_llmperf.measure.telemetry READER ARGS_JSON HZ
    sample_forever(sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]))
