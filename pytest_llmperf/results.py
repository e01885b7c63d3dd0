"""``RunResult``: everything measured for one (configuration, strategy, batch size), and the
``extra_info`` it puts into pytest-benchmark's JSON. Every number here is derived from a
measurement (``Timing``) or from the generations themselves; nothing is estimated."""

from __future__ import annotations

from dataclasses import dataclass

from . import latency, roofline, telemetry
from .compare import Consistency, ReferenceScore
from .config import ModelSpec, WorkloadSpec
from .identity import digest, work_identity
from .measure import Timing
from .metrics import samples as metric_samples
from .strategies.base import Generations

SECONDS_PER_DAY = 86_400
UNTIMED_INSTRUMENT_INFO = dict.fromkeys((
    "compilations_in_measured_rounds", "gc_mode", "gc_enabled_in_rounds", "gc_frozen_objects",
    "gc_collections_in_measured_rounds", "gc_pause_s_in_measured_rounds", "probe_s", "peak_memory_mb",
    "peak_memory_above_model_mb", "peak_memory_reserved_mb", "memory_measure", *latency.KEYS, *telemetry.KEYS))


def speedup(result: "RunResult", bs1: "RunResult | None") -> float | None:
    """samples/s over samples/s of the same strategy and configuration at bs=1; None if either is untimed."""
    if result.timing is None:
        return None
    if result.batch_size == 1:
        return 1.0
    if bs1 is None or bs1.timing is None:
        return None
    return result.samples_per_s / bs1.samples_per_s


@dataclass(frozen=True)
class RunResult:
    spec: ModelSpec
    workload: WorkloadSpec
    strategy: str
    batch_size: int
    device: str  # resolved
    dtype: str  # resolved
    attn_implementation: str  # what the model actually runs
    load_time_s: float
    compile_time_s: float | None
    generations: Generations
    timing: Timing | None  # None when --benchmark-disable (ran once, untimed)
    conditions: dict  # what the rounds ran with: threads, CPUs, load average, timer (environment.conditions)
    causes: dict  # what may change the answer (identity.causes)
    prompts_digest: str  # the raw prompts, part of the work's identity
    consistency: Consistency  # against the bs=1 baseline of the same configuration
    reference: ReferenceScore | None
    bs1: "RunResult | None" = None  # the timed bs=1 run of the same strategy, for the speedup
    test: str = ""  # the test function that ran it (node id without parameters)
    batch_size_search: dict | None = None  # how batch size "max" was found (max_batch.BatchSearch.info)
    efficiency: dict | None = None  # the bandwidth roofline (roofline.efficiency); None when untimed

    @property
    def num_samples(self) -> int:
        return self.generations.num_samples

    @property
    def tokens_per_s(self) -> float | None:
        return self.timing.tokens_per_s if self.timing else None

    @property
    def samples_per_s(self) -> float | None:
        return self.num_samples / self.timing.median_s if self.timing else None

    @property
    def speedup_vs_bs1(self) -> float | None:
        return speedup(self, self.bs1)

    @property
    def identity(self) -> dict:
        return work_identity(self)

    @property
    def outputs_digest(self) -> str:
        return digest([list(sample.token_ids) for sample in self.generations.samples])

    @property
    def label(self) -> str:
        return f"{self.strategy} bs={self.batch_size} [{self.spec.id}]"

    def record(self) -> dict:
        """What the tables and the results file are made of, and what an xdist worker sends its
        controller: the test, the ``extra_info`` and the generated token ids (JSON types only)."""
        return {"test": self.test, "timed": self.timing is not None, "extra_info": self.extra_info(),
                "output_ids": [list(sample.token_ids) for sample in self.generations.samples]}

    def extra_info(self) -> dict:
        """The documented ``benchmark.extra_info`` contract, plus a few traceability extras."""
        consistency, reference = self.consistency, self.reference
        info = {
            "model": self.spec.model,
            "config": self.spec.id,
            "strategy": self.strategy,
            "batch_size": self.batch_size,
            "attn_implementation": self.attn_implementation,
            "compile_mode": self.spec.compile_mode,
            "dtype": self.dtype,
            "device": self.device,
            "num_samples": self.num_samples,
            "generated_tokens": self.generations.generated_tokens,
            "tokens_per_s": self.tokens_per_s,
            "samples_per_s": self.samples_per_s,
            "speedup_vs_bs1": self.speedup_vs_bs1,
            "similarity_to_bs1": consistency.similarity,
            "exact_match_to_bs1": consistency.exact_match,
            "similarity_to_reference": reference.similarity if reference else None,
            "load_time_s": self.load_time_s,
        }
        info.update({
            "dataset": self.workload.dataset,
            "split": self.workload.split,
            "max_new_tokens": self.workload.max_new_tokens,
            "prompt_tokens": self.workload.prompt_tokens,  # the synthetic workload's; None for a text dataset
            "length_match_to_bs1": consistency.length_matches / self.num_samples,
            "exact_match_to_reference": reference.exact_match if reference else None,
            "references_missing": reference.missing if reference else None,
            "compile_time_s": self.compile_time_s,
            "round_s": list(self.timing.round_s) if self.timing else None,
            "tokens_per_round": list(self.timing.tokens_per_round) if self.timing else None,
            "warmup_rounds": self.timing.warmup if self.timing else None,
            "config_hash": self.spec.hash,
            "workload_hash": self.workload.hash,
            "batch_size_search": self.batch_size_search,
        })
        info.update(self.conditions)
        steadiness = self.timing.steadiness if self.timing else None
        info.update({
            "round_cv": steadiness.cv if steadiness else None,
            "first_round_ratio": steadiness.first_round_ratio if steadiness else None,
            "steady": steadiness.steady if steadiness else None,
        })
        # The instruments' fields: compilations_in_measured_rounds, gc_* (null when untimed).
        info.update(self.timing.instrument_info if self.timing else UNTIMED_INSTRUMENT_INFO)
        info.update(self.efficiency or dict.fromkeys(roofline.KEYS))
        # What a later run compares with (the cross-commit gate): the ids themselves are stored once per
        # distinct set, at the top of the saved JSON (``llmperf.outputs``), under this digest.
        info.update({
            "identity": self.identity,
            "causes": self.causes,
            "outputs": self.outputs_digest,
            "metric_samples": metric_samples(self.timing, self.num_samples),
        })
        return info
