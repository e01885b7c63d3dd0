"""GPU telemetry and energy during the measured rounds.

* **Telemetry** (NVIDIA, through nvidia-ml-py): a separate process (spawned, not a thread, so
  sampling never competes with the rounds for the interpreter) samples NVML at about 20 Hz for the
  whole session: utilisation, memory used, power, SM clock, temperature and the clock-event
  (throttle) reasons. Each round's window is two clock reads in its untimed setup and teardown;
  the samples inside the windows of the measured rounds are fetched once the case's rounds are
  over, so nothing crosses the process boundary during them.
* **Energy**: the GPU's energy counter (``nvmlDeviceGetTotalEnergyConsumption``) read at each
  window's ends; where the counter is missing, the power samples integrated over the window.
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
import importlib.util
import time
from dataclasses import dataclass
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
    """A function reading one NVML sample of the GPU (by UUID, else by NVML index)."""
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(index)
    reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        pynvml.nvmlDeviceGetCurrentClocksThrottleReasons

    def read() -> Sample:
        try:
            power = pynvml.nvmlDeviceGetPowerUsage(handle) / 1e3  # mW
        except pynvml.NVMLError:
            power = None
        return Sample(time.monotonic(), pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                      pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2 ** 20, power,
                      pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                      pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU), reasons(handle))

    return read


def sample_forever(connection, make_reader, reader_args, hz: float) -> None:
    """The child process: sample at ``hz``; on "fetch" send and forget the samples so far; stop on "stop"."""
    read = make_reader(*reader_args)
    samples: list[Sample] = []
    period = 1.0 / hz
    next_at = time.monotonic()
    while True:
        samples.append(read())
        next_at += period
        while connection.poll(max(0.0, next_at - time.monotonic())):
            command = connection.recv()
            if command == "stop":
                return
            connection.send(samples)
            samples = []
        if time.monotonic() - next_at > period:  # fell behind (a stalled machine): do not burst
            next_at = time.monotonic()


class Sampler:
    """The sampling process, started once and stopped at the end of the session."""

    def __init__(self, make_reader, reader_args: tuple = (), hz: float = SAMPLE_HZ):
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # never fork a process that holds a CUDA context
        self._connection, child = context.Pipe()
        self._process = context.Process(target=sample_forever, args=(child, make_reader, reader_args, hz),
                                        name="llmperf-telemetry", daemon=True)
        self._process.start()
        child.close()

    def fetch(self, timeout: float = 10.0) -> list[Sample]:
        """Every sample taken since the last fetch."""
        self._connection.send("fetch")
        if not self._connection.poll(timeout):
            raise TimeoutError("the telemetry process did not answer")
        return self._connection.recv()

    def stop(self) -> None:
        try:
            self._connection.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()


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
    def find(cls) -> "RaplCounter | None":
        paths = sorted(glob.glob("/sys/class/powercap/intel-rapl:[0-9]/energy_uj"))
        try:
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
        self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(index)
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
        counter = _energy_counter(uuid, index)
        sampler = Sampler(nvml_reader, (uuid, index))
    except Exception as exc:  # NVML missing from the driver, no permission...
        return Source(unavailable=f"not available: NVML failed ({type(exc).__name__}: {exc})")
    return Source(sampler=sampler, counter=counter)


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
        sampler = self._source.sampler
        samples = sampler.fetch() if sampler is not None else []
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
    energies = []
    for window in windows:
        joules = window.joules if window.joules is not None else integrate_power_j(samples, window.start, window.end)
        energies.append((joules, window))
    measured = [(j, w) for j, w in energies if j is not None]
    if measured and len(measured) == len(windows):
        info["energy_measure"] = counter_name if all(w.joules is not None for w in windows) else "integrated power"
        info["energy_j_rounds"] = [j for j, _ in measured]
        info["energy_j_per_round"] = median(info["energy_j_rounds"])
        info["energy_per_token_j"] = median(j / w.tokens for j, w in measured) if all(w.tokens for w in windows) \
            else None
        info["energy_per_sample_j"] = median(j / w.samples for j, w in measured)
    return info
