"""Frozen configuration objects, built once from the pytest config and refined per test by a marker.

Each object knows its identity: ``ModelSpec`` (what gets loaded) and ``WorkloadSpec`` (what gets
generated) are hashable cache keys, and their ``id`` is the readable piece of a test id.
Nothing here imports torch, transformers or datasets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .options import (
    ASSISTED,
    AXES,
    NO_QUANTIZATION,
    NOT_SPECULATIVE,
    OPTIONS_BY_DEST,
    PROMPT_LOOKUP,
    SYNTHETIC,
    THRESHOLDS,
    draft_model,
)
from .presets import preset_values


def compile_id(mode: str) -> str:
    """The test-id piece for a compile mode: ``nocompile``, ``compile-default``..."""
    return "nocompile" if mode == "none" else f"compile-{mode}"


def quantization_id(method: str) -> str:
    """The test-id piece for a quantization method: ``int8weight``, ``bnb4bit``...; none for ``none``, so
    that the ids of unquantized configurations (and the saved runs that hold them) stay what they were."""
    return "" if method == NO_QUANTIZATION else method.replace("-", "")
def speculative_id(mode: str) -> str:
    """The test-id piece for a speculative decoding mode: nothing for ``none`` (ids stay as they were
    before the axis), else the mode (``assisted``, ``prompt-lookup``)."""
    return "" if mode == NOT_SPECULATIVE else mode


SPECULATION_FIELDS = ("speculative", "draft", "prompt_lookup_tokens")


@dataclass(frozen=True)
class ModelSpec:
    """One loadable model configuration: the model cache key."""

    model: str
    device: str  # as requested: auto, cpu, cuda, cuda:N
    dtype: str
    attn_implementation: str
    compile_mode: str
    quantization: str = NO_QUANTIZATION
    speculative: str = NOT_SPECULATIVE  # speculative decoding: none, assisted, prompt-lookup
    draft: str | None = None  # assisted: the draft model (``builtin``: the built-in draft); None otherwise
    prompt_lookup_tokens: int | None = None  # prompt-lookup: tokens proposed per step at most; None otherwise

    @property
    def id(self) -> str:
        # the speculative mode goes last: what decodes, after what is loaded
        pieces = (self.attn_implementation, compile_id(self.compile_mode), self.dtype,
                  quantization_id(self.quantization), speculative_id(self.speculative))
        return "-".join(piece for piece in pieces if piece)

    @property
    def hash(self) -> str:
        fields = asdict(self)
        if self.quantization == NO_QUANTIZATION:  # the hash of an unquantized model is what it was before this field
            del fields["quantization"]
        if self.speculative == NOT_SPECULATIVE:  # every other configuration's hash is what it was before them
            for name in SPECULATION_FIELDS:
                del fields[name]
        return _digest(fields)

    @property
    def unquantized(self) -> "ModelSpec":
        """The same model, dtype, attention and compile mode, without quantization (and without speculative
        decoding, whose greedy outputs are the same): what a quantized configuration's outputs are compared with."""
        return replace(self.plain, quantization=NO_QUANTIZATION)

    @property
    def speculating(self) -> bool:
        return self.speculative != NOT_SPECULATIVE

    @property
    def plain(self) -> "ModelSpec":
        """The same model configuration without speculative decoding: the one whose outputs it must reproduce."""
        return replace(self, **dict(zip(SPECULATION_FIELDS, (NOT_SPECULATIVE, None, None))))


@dataclass(frozen=True)
class WorkloadSpec:
    """The prompts one round generates for, and how."""

    dataset: str
    split: str
    prompt_column: str
    reference_column: str | None
    num_samples: int | None  # None: the whole split
    max_new_tokens: int
    prompt_tokens: int | None = None  # the synthetic dataset's prompt length; None for any other

    @property
    def ignore_eos(self) -> bool:
        """The synthetic workload generates exactly ``max_new_tokens``: no token ends a generation."""
        return self.dataset == SYNTHETIC

    @property
    def hash(self) -> str:
        fields = asdict(self)
        if self.prompt_tokens is None:  # the hash of every other workload is what it was before this field
            del fields["prompt_tokens"]
        return _digest(fields)


@dataclass(frozen=True)
class Thresholds:
    """Gate thresholds; ``None`` switches a gate off."""

    min_tokens_per_s: float | None = None
    min_samples_per_s: float | None = None
    min_speedup: float | None = None
    min_roofline: float | None = None  # floor on the bandwidth roofline fraction of decoding
    max_memory_mb: dict | None = None  # batch size (or "*") -> ceiling on the peak memory of the measured rounds (MiB)
    max_ttft_ms: dict | None = None  # batch size (or "*") -> ceilings on latency at latency_percentile (ms)
    max_itl_ms: dict | None = None
    max_e2e_ms: dict | None = None
    latency_percentile: str = "p95"
    min_exact_match: float | None = None
    min_similarity: float | None = None
    min_match_unquantized: float | None = None  # exact match to the unquantized model's bs=1 outputs
    min_match_non_speculative: float | None = None  # a speculative case's exact match to the non-speculative bs=1
    tolerance: dict | None = None  # metric name (or "*") -> fraction; None: each metric's default
    min_baseline_match: float | None = None
    tolerate_near_ties: bool = False

    def ceiling_for(self, name: str, batch_size: int) -> float | None:
        """The ceiling ``name`` (a ``max_*`` option) at this batch size, or None."""
        ceilings = getattr(self, name) or {}
        return ceilings.get(batch_size, ceilings.get("*"))

    def tolerance_for(self, metric) -> float:
        tolerances = self.tolerance or {}
        return tolerances.get(metric.name, tolerances.get("*", metric.tolerance))


@dataclass(frozen=True)
class Axes:
    """The values tests are parametrized over."""

    dtypes: tuple[str, ...]
    attn_implementations: tuple[str, ...]
    compile_modes: tuple[str, ...]
    quantizations: tuple[str, ...]
    speculative: tuple[str, ...]
    batch_sizes: tuple[int | str, ...]  # ints, and "max" last when asked for
    strategies: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Everything the options say, validated. Built once in ``pytest_configure``."""

    model: str
    device: str
    draft_model: str | None  # --llmperf-draft-model as given; None: the built-in draft for the built-in model
    prompt_lookup_tokens: int
    workload: WorkloadSpec
    axes: Axes
    coverage: str  # --llmperf-coverage: the preset (presets.py)
    preset_axes: frozenset  # the Axes fields whose values the preset gave (the user set none of them)
    warmup: int
    rounds: int
    gc: str  # instruments.Collector's mode
    threads: int | None  # None: torch's own
    latency: str  # --llmperf-latency: auto, rounds, extra, off (latency.mode)
    max_cv: float | None  # steadiness threshold; None: not checked
    benchmark_disable_gc: bool  # pytest-benchmark's --benchmark-disable-gc: no automatic collection in a round
    timer: str  # pytest-benchmark's --benchmark-timer
    on_oom: str  # a case that runs out of memory: "fail" or "skip"
    results_file: str | None  # --llmperf-results-file (relative to the rootdir); None: off
    report: str | None  # --llmperf-report: the report folder to write at the end; None: off
    export: tuple | None  # --llmperf-export: (format, path) pairs; None: off
    push_to_hub: str | None  # --llmperf-push-to-hub: the dataset to append rows to; None: off
    price: tuple | None  # --llmperf-price: (device name, USD per hour) pairs for the report's cost; None: off
    progress: str | float  # --llmperf-progress: auto, on, off, or seconds between lines
    heartbeat: float | None  # --llmperf-heartbeat: seconds between lines where auto progress is off; None: off
    xdist_timing: str  # --llmperf-xdist-timing: auto, on, off (distributed.timing_under_xdist)
    baseline: str | None  # --llmperf-baseline; None: the run --benchmark-compare selected, if any
    require_baseline: bool
    strict_env: bool
    alpha: float
    near_tie: float
    default_thresholds: Thresholds  # built-in defaults: a marker beats these
    explicit_thresholds: dict  # set on CLI or in ini: these beat a marker

    @classmethod
    def from_options(cls, values: dict, explicit: dict, benchmark_disable_gc: bool = False,
                     timer: str = "time.perf_counter") -> "Settings":
        preset = {dest: OPTIONS_BY_DEST[dest].parse(raw)
                  for dest, raw in preset_values(values["coverage"], explicit).items()}
        values = {**values, **preset}
        return cls(
            **_option_fields(cls, values),  # every field named after its option, as parsed
            preset_axes=frozenset(AXES[dest] for dest in preset),
            workload=WorkloadSpec(**_option_fields(WorkloadSpec, values)),
            axes=Axes(**{marker_key: values[dest] for dest, marker_key in AXES.items()}),
            benchmark_disable_gc=benchmark_disable_gc,
            timer=timer,
            default_thresholds=Thresholds(**{name: values[name] for name in THRESHOLDS if name not in explicit}),
            explicit_thresholds={name: explicit[name] for name in THRESHOLDS if name in explicit},
        )

    def for_test(self, marker_kwargs: dict[str, Any]) -> "TestSettings":
        """Apply a test's ``@pytest.mark.llmperf(...)`` keywords. Unknown keywords are rejected."""
        axes_fields = {f.name for f in fields(Axes)}
        valid = sorted(axes_fields | set(THRESHOLDS))
        unknown = sorted(set(marker_kwargs) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown llmperf marker keyword(s) {', '.join(unknown)}; valid keywords: {', '.join(valid)}"
            )
        axes_dest = {marker_key: dest for dest, marker_key in AXES.items()}
        axes, thresholds = {}, {}
        for key, raw in marker_kwargs.items():
            option = OPTIONS_BY_DEST[axes_dest.get(key, key)]
            try:
                value = option.parse(raw)
            except ValueError as exc:
                raise ValueError(f"llmperf marker {key}={raw!r}: {exc}") from None
            (axes if key in axes_fields else thresholds)[key] = value
        # Thresholds: CLI > ini > marker > built-in default.
        merged = {**asdict(self.default_thresholds), **thresholds, **self.explicit_thresholds}
        return TestSettings(axes=replace(self.axes, **axes), thresholds=Thresholds(**merged))

    def model_spec(self, dtype: str, attn_implementation: str, compile_mode: str,
                   quantization: str = NO_QUANTIZATION, speculative: str = NOT_SPECULATIVE) -> ModelSpec:
        return ModelSpec(self.model, self.device, dtype, attn_implementation, compile_mode, quantization, speculative,
                         draft_model(self.model, self.draft_model) if speculative == ASSISTED else None,
                         self.prompt_lookup_tokens if speculative == PROMPT_LOOKUP else None)


@dataclass(frozen=True)
class TestSettings:
    """The axes and thresholds in force for one test function, after its marker."""

    axes: Axes
    thresholds: Thresholds


def _option_fields(cls, values: dict) -> dict:
    """The parsed option values for the fields of ``cls`` that carry an option's name (its ``dest``)."""
    return {field.name: values[field.name] for field in fields(cls) if field.name in values}


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
