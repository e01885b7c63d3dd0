"""The process a perf session measures in: torch's threads, the CPUs it may use, how busy the machine is.

Recorded with every case (``extra_info``) and in pytest-benchmark's ``machine_info`` (the
environment identity a saved run is compared under). ``--llmperf-threads N`` sets torch's intra-op
and inter-op threads for the session.

Why pin the threads on a shared machine: torch splits each operator across its intra-op threads
(by default one per core) and waits for the slowest. When another process takes one of the cores,
every operator waits for the thread that lost its core, so rounds become several times slower and
erratic. One thread per perf session, on a machine shared with other work, degrades only in
proportion to the CPU it gets. Measured figures: ``docs/benchmarks/cpu-2core-hygiene-and-gates.md``.
"""

from __future__ import annotations

import os


def apply_threads(count: int) -> str | None:
    """Set torch's intra-op and inter-op threads. Call before any parallel work (at start-up): torch
    refuses to change inter-op threads once they ran; that is then a line to show (returned), and the
    intra-op setting still applies."""
    import torch

    torch.set_num_threads(count)
    if torch.get_num_interop_threads() != count:
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError as exc:
            return (f"llmperf: --llmperf-threads {count}: inter-op threads stay at {torch.get_num_interop_threads()} "
                    f"({str(exc).splitlines()[0]})")
    return None


def cpus_available() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads() -> dict:
    import torch

    return {"torch_num_threads": torch.get_num_threads(),
            "torch_num_interop_threads": torch.get_num_interop_threads()}


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def conditions() -> dict:
    """Per case, read just before its rounds: what the rounds ran with."""
    return {**threads(), "cpus_available": cpus_available(), "load_avg_1m": load_average()}


def busy_machine(processes: int = 1) -> str | None:
    """One line when the machine is oversubscribed: torch's intra-op threads times the processes that
    run them (pytest-xdist workers) above the CPUs this process may use, or a 1-minute load average
    above the machine's CPU count. Rounds then run slower and vary more; a verdict the noise cannot
    support is inconclusive, not wrong."""
    count, cpus = threads()["torch_num_threads"], cpus_available()
    if count * processes > cpus:
        each = f"{count} threads in each of {processes} processes" if processes > 1 else f"{count} threads"
        return (f"llmperf: torch runs {each} on {cpus} available CPU(s): rounds will be slow and erratic; "
                f"set --llmperf-threads {max(1, cpus // processes)}")
    load, total = load_average(), os.cpu_count() or 1
    if load is not None and load > total:
        return (f"llmperf: the machine is busy (load average {load:g} on {total} CPUs): rounds will be slower and "
                "noisier, and verdicts the noise cannot support are inconclusive rather than wrong")
    return None


SOFTWARE = ("torch", "transformers", "tokenizers", "datasets", "accelerate", "flash-attn", "kernels",
            "torchao", "bitsandbytes", "optimum-quanto")  # the quantization backends: they change quantized outputs


def machine_info(device: str) -> dict:
    """The part of pytest-benchmark's ``machine_info`` that pytest-llmperf adds, for ``device`` (as
    requested: auto, cpu, cuda, cuda:N).

    ``hardware``: what a timing depends on. Threads are part of it: runs with different threads are
    different machines for a timing. ``software``: what may change an answer or a timing, and is
    named when it differs (an upgrade check compares across exactly these).
    """
    import platform

    import torch

    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    hardware = {"device_type": "cuda" if on_cuda else "cpu", "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
                "cpus_available": cpus_available(), **threads()}
    software = {"python": platform.python_version(), **{name: package_version(name) for name in SOFTWARE}}
    if on_cuda:
        gpus = [torch.cuda.get_device_properties(index) for index in range(torch.cuda.device_count())]
        hardware["gpu_count"] = len(gpus)
        hardware["gpus"] = [{"name": gpu.name, "memory_mb": gpu.total_memory // 2**20,
                             "capability": f"{gpu.major}.{gpu.minor}"} for gpu in gpus]
        software["cuda_runtime"] = torch.version.cuda
        software["nvidia_driver"] = nvidia_driver()
    return {"hardware": hardware, "software": software}


def machine_name(hardware: dict | None) -> str | None:
    """The hardware fingerprint as a name: what a merged run, its report and the cross-commit gate
    tell machines apart by (None for a run saved without a fingerprint).

    It is the device and its host: on CUDA, every GPU's name and how many
    (``1x NVIDIA A10G (AMD EPYC 7R32, 8 CPUs)``); on the CPU, the CPU model and the CPU count
    (``AMD EPYC 7763 64-Core Processor, 4 CPUs``). Two runs with the same name ran on the same kind of
    machine; the threads and the CPUs the process may use are not part of it (they are the run's
    settings, which the gate's environment guard compares on top), nor are the GPUs' memory and
    compute capability, which their names fix."""
    if not hardware:
        return None
    host = f"{hardware.get('cpu_model') or 'unknown CPU'}, {hardware.get('cpu_count')} CPUs"
    if hardware.get("device_type") != "cuda":
        return host
    return f"{device_name(hardware)} ({host})"


def device_name(hardware: dict) -> str:
    """What runs the cases: the GPUs (``8x NVIDIA H100 80GB HBM3``; ``1x NVIDIA A10G + 1x NVIDIA L4``)
    on CUDA, else the CPU model. A price per hour (``--llmperf-price``) is matched against it."""
    if hardware.get("device_type") != "cuda":
        return hardware.get("cpu_model") or "unknown CPU"
    counts: dict[str, int] = {}
    for gpu in hardware.get("gpus") or ():
        counts[gpu.get("name", "GPU")] = counts.get(gpu.get("name", "GPU"), 0) + 1
    return " + ".join(f"{count}x {name}" for name, count in counts.items()) or f"{hardware.get('gpu_count', 0)}x GPU"


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def nvidia_driver() -> str | None:
    """The driver version through NVML (nvidia-ml-py), when it is installed."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None
    return version.decode() if isinstance(version, bytes) else version
