"""Efficiency against the physical limit: the bandwidth roofline of decoding.

A decode step reads every weight once and, for each sequence it advances, that sequence's whole KV
cache; at small batch that reading, not arithmetic, bounds the step. The fraction of the limit a
case reached is

    roofline = (bytes a decode step must read / measured decode step time) / memory bandwidth

* **Bytes a step must read**: the weights (every parameter once, as held: a quantized weight by its
  quantized bytes and scales; tied embeddings count once, and an untied input embedding not at all,
  since a step looks up one row of it per sequence), plus
  ``sequences per step`` x the KV cache of one sequence at the mean decode context (the prompt and
  half the generated tokens), ``2 x layers x KV heads x head dim x bytes per element`` per token.
  This is a lower bound: padding, activations and a strategy's own traffic are not counted.
* **Decode step time**: the median inter-token latency (``itl_ms_p50``): one step gives each
  sequence it advances one token.
* **Sequences per step**: aggregate decode tokens/s x the step time, i.e. how many tokens the
  measured decode produced per step on average, for every strategy alike (a static batch whose rows
  ended early, continuous batching's changing batch).
* **Memory bandwidth**: a copy probe on the device (a buffer far larger than the caches copied a
  few times, counting the read and the write), so it is this machine's real limit, not a
  datasheet figure. A probe run while other work loads the machine reads low (0.8 to 11 GB/s
  were seen on a machine that gives 40 GB/s when quiet), so it is repeated through the process,
  after a case's rounds, and the best reading is kept (``Probe``, one per device and process, and
  on a CPU per thread count):
  again whenever the process has run ``PROBE_SPACING`` times the last probe's cost since it, which
  bounds its cost to about 1/``PROBE_SPACING`` of the run, and at once when a case decoded faster
  than the best reading allows. A process that runs several sessions (pytester's in-process runs,
  a notebook calling ``pytest.main``) keeps its readings from one to the next, as one long session
  would: each session probing again on its first case cost the plugin's own test suite a tenth of
  its time. Measured cost of one probe (allocation, first touch and 3 copies of 256 MiB):
  about 0.6 s on a 2-core CPU at load 3, 1.8 s at load 9 (reading 3 GB/s); on an H200, 0.1 s, most
  of it the garbage collection that frees the buffers (the copies read 3.9 TB/s, 81% of the
  device's own 4.81 TB/s).
* **The device's own figure**: on CUDA, memory clock x bus width x 2 (double data rate), from
  torch's device properties or NVML (nvidia-ml-py, imported only then); a probe cannot beat it.
  A CPU gives no such figure (its bandwidth depends on the DIMMs and channels populated).

A fraction above 1, or a probe above the device's own figure or below ``PROBE_MIN_DEVICE_SHARE`` of
it, is impossible: the probe was disturbed. The fraction is then None, ``roofline_note`` says why,
and no floor judges it. (On a GPU a launch-bound decode, as the built-in model's, moves far less
than the memory can, so a probe read 100 times too low there still gives a fraction below 1: only
the device's own figure shows it.) A reading above that figure is not the best once a possible one
has been read (``Probe.reading``).

The fraction needs a case's latency (``latency.py``); without it it is None. Nothing here is
imported by the plugin before a case runs.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from ..model.loading import synchronize
from ..model.quantization import tensor_bytes, weight_bytes

PROBE_BYTES = 256 * 2 ** 20  # far above any CPU's last-level cache; a fraction of a second to copy
PROBE_COPIES = 3
PROBE_SPACING = 50  # probe again once the process ran this many times the last probe's cost since it
# A copy reads 70 to 90% of its device's own figure on a quiet GPU (81% on an H200), and about a tenth
# of it on the smallest MIG slice (an eighth of an A100's or H100's memory), whose figure may be the
# whole GPU's: a probe below this share of the figure was disturbed (an H200 read 0.8% with the
# probe's reading / 100, as a loaded CPU machine read 0.8 GB/s against 40).
PROBE_MIN_DEVICE_SHARE = 0.05


def copy_bandwidth(device: str, sync, nbytes: int = PROBE_BYTES, copies: int = PROBE_COPIES) -> float:
    """Bytes per second the device moves in a buffer copy (read + write), the best of ``copies``."""
    import torch

    source = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    target = torch.empty_like(source)
    target.copy_(source)  # first touch: page faults and allocation are not bandwidth
    best = float("inf")
    for _ in range(copies):
        sync()
        start = time.perf_counter()
        target.copy_(source)
        sync()
        best = min(best, time.perf_counter() - start)
    del source, target
    return 2 * nbytes / best


@dataclass(frozen=True)
class Bandwidth:
    """What the process knows of a device's memory bandwidth when a case is computed."""

    measured: float | None  # the best copy probe so far, bytes/s; None when no probe fitted in memory
    probes: int  # probes read so far in this process
    device: float | None = None  # the device's own figure, bytes/s
    device_source: str = ""  # where that figure came from, or why there is none


class Probe:
    """The copy bandwidth of one device through the process: the best of the probes so far. Sessions
    take theirs from ``Probe.of``: one per device and process, and on a CPU one per thread count too
    (a copy on more threads moves more; a session with ``--llmperf-threads 1`` is measured against
    what one thread can move, as it was when each session probed for itself)."""

    _of_process: dict[tuple[str, int], Probe] = {}

    @classmethod
    def of(cls, device: str) -> Probe:
        """This process's probe of ``device`` (at torch's current thread count on a CPU), made on first use."""
        import torch

        key = (device, torch.get_num_threads() if device == "cpu" else 0)
        if key not in cls._of_process:
            cls._of_process[key] = cls(device, functools.partial(synchronize, device))
        return cls._of_process[key]

    def __init__(self, device: str, sync):
        self.device, self.sync = device, sync
        self.readings: list[float] = []  # bytes/s, one per probe that fitted in memory
        self.cost_s = 0.0  # what the last probe took
        self._next_at = 0.0  # time.monotonic() from which a probe is due again
        self.device_figure, self.device_source = device_bandwidth(device)

    def due(self) -> bool:
        return time.monotonic() >= self._next_at

    def run(self, free=lambda device: None) -> None:
        """One probe; ``free(device)`` after it (its buffers out of the allocator's cache), counted in
        its cost. Out of memory propagates; the readings from before stay."""
        start = time.monotonic()
        try:
            self.readings.append(copy_bandwidth(self.device, self.sync))
        finally:
            free(self.device)
            self.cost_s = time.monotonic() - start
            self._next_at = start + (1 + PROBE_SPACING) * self.cost_s

    def reading(self) -> Bandwidth:
        """The best reading no faster than the device's own figure: one above it cannot be, and kept as the
        best it would leave every later case of the process "probe disturbed", whatever the probes after it
        read. Only when every reading is above it is the best of them given (and said to be disturbed)."""
        possible = [value for value in self.readings if self.device_figure is None or value <= self.device_figure]
        return Bandwidth(max(possible or self.readings, default=None), len(self.readings), self.device_figure,
                         self.device_source)


def device_bandwidth(device: str) -> tuple[float | None, str]:
    """The device's own memory bandwidth figure (bytes/s) and where it came from, or None and why not."""
    if not device.startswith("cuda"):
        return None, f"{'a CPU' if device == 'cpu' else device} gives no figure of its own"
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    properties = torch.cuda.get_device_properties(index)
    clock_khz, bus_bits = getattr(properties, "memory_clock_rate", 0), getattr(properties, "memory_bus_width", 0)
    if clock_khz and bus_bits:
        return clock_khz * 1e3 * 2 * bus_bits / 8, "memory clock x bus width x 2, from CUDA's device properties"
    try:
        import pynvml
    except ImportError:
        return None, ("the device's own figure is not available: this CUDA build gives no memory clock, and "
                      "nvidia-ml-py is not installed")
    from .telemetry import _nvml_handle, _nvml_identity

    try:
        pynvml.nvmlInit()
        try:
            handle = _nvml_handle(pynvml, *_nvml_identity(device))
            clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
            bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        return None, f"the device's own figure is not available: NVML failed ({exc})"
    return clock_mhz * 1e6 * 2 * bus_bits / 8, "memory clock x bus width x 2, from NVML"


@dataclass(frozen=True)
class DecodeBytes:
    weights: int  # read once per step
    kv_per_token: int  # one sequence's K and V for one position, every layer

    def per_step(self, sequences: float, context: float) -> float:
        return self.weights + sequences * context * self.kv_per_token


def decode_bytes(model) -> DecodeBytes:
    """What a decode step of ``model`` must read, from its parameters (as held: a quantized weight by
    its quantized bytes) and config."""
    weights = weight_bytes(model)
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if inputs is not None and (outputs is None or outputs.weight is not inputs.weight):
        weights -= tensor_bytes(inputs.weight)  # a lookup reads one row per sequence
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = next(model.parameters()).element_size()
    return DecodeBytes(weights, 2 * config.num_hidden_layers * kv_heads * head_dim * element)


KEYS = ("roofline_fraction", "roofline_note", "memory_bandwidth_gb_s", "memory_bandwidth_probes",
        "device_memory_bandwidth_gb_s", "device_memory_bandwidth_source", "decode_bytes_per_step", "decode_step_ms",
        "decode_sequences_per_step")


def efficiency(model_bytes: DecodeBytes, bandwidth: Bandwidth, latency_info: dict, prompt_tokens: float,
               generated_tokens: float) -> dict:
    """The roofline fields of one case (``KEYS``; None where its latency was not recorded).
    ``prompt_tokens``/``generated_tokens``: means per request. An impossible fraction is None, and
    ``roofline_note`` says why (``disturbed``)."""
    info = dict.fromkeys(KEYS)
    info.update(memory_bandwidth_gb_s=None if bandwidth.measured is None else bandwidth.measured / 1e9,
                memory_bandwidth_probes=bandwidth.probes, device_memory_bandwidth_source=bandwidth.device_source,
                device_memory_bandwidth_gb_s=None if bandwidth.device is None else bandwidth.device / 1e9)
    step_ms, rate = latency_info.get("itl_ms_p50"), latency_info.get("decode_tokens_per_s")
    if bandwidth.measured is None or not step_ms or not rate:
        return info
    step_s = step_ms / 1e3
    sequences = rate * step_s
    nbytes = model_bytes.per_step(sequences, prompt_tokens + generated_tokens / 2)
    fraction = nbytes / step_s / bandwidth.measured
    note = disturbed(fraction, bandwidth)
    info.update(roofline_fraction=None if note else fraction, roofline_note=note, decode_bytes_per_step=nbytes,
                decode_step_ms=step_ms, decode_sequences_per_step=sequences)
    return info


def disturbed(fraction: float, bandwidth: Bandwidth) -> str | None:
    """Why a fraction cannot be true, or None: decoding cannot move more bytes than the memory
    moves, a copy cannot beat the device's own figure, and a quiet one reads at least
    ``PROBE_MIN_DEVICE_SHARE`` of it."""
    probes = f"best of {bandwidth.probes} probe{'s' if bandwidth.probes != 1 else ''}"
    loaded = "a probe reads low while other work loads the machine"
    if bandwidth.device is not None and bandwidth.measured > bandwidth.device:
        return (f"probe disturbed: the copy probe read {bandwidth.measured / 1e9:.3g} GB/s ({probes}), above the "
                f"device's own {bandwidth.device / 1e9:.3g} GB/s")
    if bandwidth.device is not None and bandwidth.measured < PROBE_MIN_DEVICE_SHARE * bandwidth.device:
        return (f"probe disturbed: the copy probe read {bandwidth.measured / 1e9:.3g} GB/s ({probes}), "
                f"{bandwidth.measured / bandwidth.device:.1%} of the device's own {bandwidth.device / 1e9:,.0f} GB/s, "
                f"where a quiet one reads at least {PROBE_MIN_DEVICE_SHARE:.0%}; {loaded}")
    if fraction > 1:
        return (f"probe disturbed: decoding moved {fraction:.2f}x the copy bandwidth the probe read "
                f"({bandwidth.measured / 1e9:.3g} GB/s, {probes}); {loaded}")
    return None
