"""Efficiency against the physical limit: the bandwidth roofline of decoding.

A decode step reads every weight once and, for each sequence it advances, that sequence's whole KV
cache; at small batch that reading, not arithmetic, bounds the step. The fraction of the limit a
case reached is

    roofline = (bytes a decode step must read / measured decode step time) / memory bandwidth

* **Bytes a step must read**: the weights (every parameter once: tied embeddings count once, and an
  untied input embedding not at all, since a step looks up one row of it per sequence), plus
  ``sequences per step`` x the KV cache of one sequence at the mean decode context (the prompt and
  half the generated tokens), ``2 x layers x KV heads x head dim x bytes per element`` per token.
  This is a lower bound: padding, activations and a strategy's own traffic are not counted.
* **Decode step time**: the median inter-token latency (``itl_ms_p50``): one step gives each
  sequence it advances one token.
* **Sequences per step**: aggregate decode tokens/s x the step time, i.e. how many tokens the
  measured decode produced per step on average, for every strategy alike (a static batch whose rows
  ended early, continuous batching's changing batch).
* **Memory bandwidth**: a copy probe on the device, measured once per device in the session (the
  best of a few copies of a buffer far larger than the caches, counting the read and the write),
  so it is this machine's real limit, not a datasheet figure.

The fraction needs a case's latency (``latency.py``); without it it is None. Nothing here is
imported by the plugin before a case runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

PROBE_BYTES = 256 * 2 ** 20  # far above any CPU's last-level cache; a fraction of a second to copy
PROBE_COPIES = 5


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
class DecodeBytes:
    weights: int  # read once per step
    kv_per_token: int  # one sequence's K and V for one position, every layer

    def per_step(self, sequences: float, context: float) -> float:
        return self.weights + sequences * context * self.kv_per_token


def decode_bytes(model) -> DecodeBytes:
    """What a decode step of ``model`` must read, from its parameters and config."""
    seen, weights = set(), 0
    for parameter in model.parameters():
        if parameter.data_ptr() not in seen:
            seen.add(parameter.data_ptr())
            weights += parameter.numel() * parameter.element_size()
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if inputs is not None and (outputs is None or outputs.weight.data_ptr() != inputs.weight.data_ptr()):
        weights -= inputs.weight.numel() * inputs.weight.element_size()  # a lookup reads one row per sequence
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    element = next(model.parameters()).element_size()
    return DecodeBytes(weights, 2 * config.num_hidden_layers * kv_heads * head_dim * element)


KEYS = ("roofline_fraction", "memory_bandwidth_gb_s", "decode_bytes_per_step", "decode_step_ms",
        "decode_sequences_per_step")


def efficiency(model_bytes: DecodeBytes, bandwidth: float | None, latency_info: dict, prompt_tokens: float,
               generated_tokens: float) -> dict:
    """The roofline fields of one case (``KEYS``; None where its latency was not recorded).
    ``prompt_tokens``/``generated_tokens``: means per request."""
    info = dict.fromkeys(KEYS)
    info["memory_bandwidth_gb_s"] = None if bandwidth is None else bandwidth / 1e9
    step_ms, rate = latency_info.get("itl_ms_p50"), latency_info.get("decode_tokens_per_s")
    if bandwidth is None or not step_ms or not rate:
        return info
    step_s = step_ms / 1e3
    sequences = rate * step_s
    nbytes = model_bytes.per_step(sequences, prompt_tokens + generated_tokens / 2)
    info.update(roofline_fraction=nbytes / step_s / bandwidth, decode_bytes_per_step=nbytes, decode_step_ms=step_ms,
                decode_sequences_per_step=sequences)
    return info
