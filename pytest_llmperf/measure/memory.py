"""Running out of memory: recognised, freed, described in one line with the device's figures, and
remembered per strategy, so that the same case is not run again (the untimed consistency test)
and larger batch sizes of that strategy are not run into the same wall."""

from __future__ import annotations

import gc
from dataclasses import dataclass

GiB = 1024 ** 3
# What torch raises when an allocation fails: OutOfMemoryError on CUDA (and other accelerators);
# a plain RuntimeError from the CPU allocator.
CPU_ALLOCATOR_MESSAGES = ("DefaultCPUAllocator: can't allocate memory", "DefaultCPUAllocator: not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)):  # torch < 2.5: cuda's
        return True
    return isinstance(exc, RuntimeError) and any(message in str(exc) for message in CPU_ALLOCATOR_MESSAGES)


def guarded(run, device: str, strategy: str, batch_size: int, test: str):
    """``(run(), None)``; when it runs out of memory, ``(None, OutOfMemory)`` with the memory freed.
    Any other error propagates."""
    try:
        return run(), None
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        exhausted = figures(device)
    free(device)  # after the ``except``: the exception, its frames and their tensors are gone
    return None, OutOfMemory(strategy, batch_size, test, exhausted, figures(device))


def free(device: str) -> None:
    """Give back what the failed case held: its tensors die with its frames (already dropped by the
    caller), then the allocator's cache is returned to the device."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def figures(device: str) -> str:
    """The device's memory, in one phrase: what is free, what torch holds and its peak."""
    if device.startswith("cuda"):
        import torch

        free_bytes, total = torch.cuda.mem_get_info(device)
        return (f"{device}: {free_bytes / GiB:.1f} GiB free of {total / GiB:.1f} GiB, torch peak allocated "
                f"{torch.cuda.max_memory_allocated(device) / GiB:.1f} GiB, reserved "
                f"{torch.cuda.memory_reserved(device) / GiB:.1f} GiB")
    import psutil

    memory = psutil.virtual_memory()
    return (f"{device}: {memory.available / GiB:.1f} GiB available of {memory.total / GiB:.1f} GiB, this process "
            f"{psutil.Process().memory_info().rss / GiB:.1f} GiB resident")


@dataclass(frozen=True)
class OutOfMemory:
    """A case that ran out of memory: what it was, where, and the device's figures right after."""

    strategy: str
    batch_size: int
    test: str  # the test that ran it
    figures: str  # before the memory was freed
    freed: str  # after

    def line(self) -> str:
        return (f"out of memory: {self.strategy} bs={self.batch_size} ({self.figures}); freed, now {self.freed}; "
                f"larger batch sizes of {self.strategy} are skipped")

    def skip_reason(self, batch_size: int) -> str:
        where = f"in {self.test}" if self.test else "earlier"
        if batch_size == self.batch_size:
            return f"not run again: {self.strategy} bs={batch_size} ran out of memory {where}"
        return (f"not run: {self.strategy} ran out of memory at bs={self.batch_size} {where}, so bs={batch_size} "
                "would too")
