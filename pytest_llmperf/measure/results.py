"""``RunResult``: everything measured for one (configuration, strategy, batch size), and the
``extra_info`` it puts into pytest-benchmark's JSON. Every number here is derived from a
measurement (``Timing``) or from the generations themselves; nothing is estimated."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.identity import digest, work_identity
from ..settings.config import ModelSpec, WorkloadSpec
from ..strategies.base import Generations
from . import latency, roofline, speculation, telemetry
from .compare import AgainstUnquantized, Consistency, ReferenceScore
from .metrics import samples as metric_samples
from .timing import Timing

SECONDS_PER_DAY = 86_400
SPECULATION_KEYS = (*speculation.KEYS, "acceptance_rate_note", "speculative_config")  # runner.speculation_of
UNTIMED_INSTRUMENT_INFO = dict.fromkeys((
    "compilations_in_measured_rounds", "gc_mode", "gc_enabled_in_rounds", "gc_frozen_objects",
    "gc_collections_in_measured_rounds", "gc_pause_s_in_measured_rounds", "probe_s", "cpu_wait_share",
    "peak_memory_mb", "peak_memory_above_model_mb", "peak_memory_reserved_mb", "memory_measure", *latency.KEYS, *telemetry.KEYS))

# Every ``extra_info`` key, by subject, with its meaning: docs/saved.md's table is generated from this
# (``output.reference``) and tests/test_docs.py checks a real run's keys against it. A key in ``FAMILIES``
# stands for several. Links are relative to docs/.
FAMILIES = {"<distribution>_<statistic>": tuple(f"{name}_{stat}" for name in latency.DISTRIBUTIONS
                                                for stat in latency.STATS)}
EXTRA_INFO: tuple[tuple[str, dict[str, str]], ...] = (
    ("What ran", {
        "model": "the model, as given (hub id, directory or `builtin`)",
        "config": "the configuration id: attention, compile mode, dtype and quantization, if any "
                  "(`sdpa-nocompile-float32`, `sdpa-nocompile-float32-quantoint8`)",
        "strategy": "the batching strategy",
        "batch_size": "the batch size it ran at (for `max`, the size found)",
        "attn_implementation": "the attention the model actually runs",
        "compile_mode": "the `torch.compile` mode (`none`: not compiled)",
        "dtype": "the dtype, resolved (`auto` becomes what loaded)",
        "quantization": "the quantization method applied at load (`none`, `int8-weight`, `bnb-4bit`, ...; "
                        "[quantization](quantization.md))",
        "quantization_config": "the quantization config as transformers applied it (its `to_dict()`); null "
                               "without quantization",
        "device": "the device, resolved (`auto` becomes `cpu` or `cuda:N`)",
        "num_samples": "prompts per round",
        "dataset": "the dataset, as given",
        "split": "the split it ran",
        "max_new_tokens": "the generation length limit",
        "prompt_tokens": "the synthetic workload's prompt length in tokens (--llmperf-prompt-tokens); null for a text dataset",
        "config_hash": "a digest of the model configuration",
        "workload_hash": "a digest of the workload",
        "batch_size_search": "how batch size `max` was found (`found`, `limited_by`, `out_of_memory_at`, `tried`); "
                             "null unless the batch size was `max`",
    }),
    ("[Speculative decoding](speculative.md): null without it, except `speculative`", {
        "speculative": "`none`, `assisted` (a draft model) or `prompt-lookup` (n-grams of the prompt)",
        "draft_model": "the draft of `assisted`, as given (`builtin`: the built-in model's draft)",
        "speculative_config": "how candidates were proposed: the draft's `num_assistant_tokens`, "
                              "`num_assistant_tokens_schedule` and `assistant_confidence_threshold`, or "
                              "`prompt_lookup_num_tokens` and `max_matching_ngram_size`",
        "draft_tokens_proposed": "candidate tokens the main model verified, over the measured rounds (the one round "
                                 "when untimed)",
        "draft_tokens_accepted": "the candidates kept (equal to the tokens the step appended), over the same rounds",
        "acceptance_rate": "accepted over proposed (null when nothing was proposed)",
        "acceptance_rate_note": "why the acceptance rate says nothing (a model or draft with random weights), "
                                "else null",
        "tokens_per_forward": "generated tokens per forward pass of the main model (1 without speculation)",
        "speedup_vs_non_speculative": "samples/s over samples/s of the same configuration, strategy and batch size "
                                      "without speculative decoding, measured earlier in the same session",
    }),
    ("Throughput and outputs", {
        "generated_tokens": "tokens generated per round (every sample, up to and including its first EOS)",
        "tokens_per_s": "the median generated tokens per measured round over the median round time",
        "samples_per_s": "samples over the median round time (the same median round)",
        "speedup_vs_bs1": "samples/s over samples/s of the same strategy and configuration at bs=1 measured earlier "
                          "in the same session (null when there is none; the table fills it from its own bs=1 row)",
        "similarity_to_bs1": "mean word-level similarity to the bs=1 outputs",
        "exact_match_to_bs1": "fraction of samples whose token ids equal bs=1's",
        "length_match_to_bs1": "fraction of samples as long as at bs=1",
        "similarity_to_reference": "mean word-level similarity to the reference column (null without one)",
        "exact_match_to_reference": "fraction of samples equal to their reference (null without a reference column)",
        "references_missing": "rows without a reference, left out of both reference scores",
        "exact_match_to_unquantized": "fraction of samples whose token ids equal the unquantized model's at bs=1 "
                                      "(same model, dtype, attention and compile mode); null without quantization",
        "similarity_to_unquantized": "mean word-level similarity to the unquantized model's bs=1 outputs; null "
                                     "without quantization",
        "length_match_to_unquantized": "fraction of samples as long as the unquantized model's; null without "
                                       "quantization",
        "divergences_from_unquantized": "the samples that differ from the unquantized model's, per kind of "
                                        "divergence at their first differing token: `{\"near-tie\": n, "
                                        "\"confident change\": n, \"length only\": n}`; null without quantization",
        "load_time_s": "model load time (excludes creating the CUDA context)",
        "compile_time_s": "the first compilation, triggered at load (null without a compile mode)",
        "round_s": "each measured round's time (null when untimed)",
        "tokens_per_round": "each measured round's generated tokens (null when untimed)",
        "warmup_rounds": "untimed warmup rounds run (null when untimed)",
        "padding_fraction": "padded positions over all positions in prefill, counted from the attention masks of "
                            "the batches a round sent (static batching: `manual`, `pipeline`, `keydataset`, "
                            "`bucketed`); null for continuous batching, which packs sequences and pads nothing, "
                            "and for a strategy that does not report its batches",
    }),
    ("How the rounds ran ([measurement hygiene](hygiene.md))", {
        "torch_num_threads": "torch's intra-op threads",
        "torch_num_interop_threads": "torch's inter-op threads",
        "cpus_available": "CPUs the process may run on",
        "load_avg_1m": "the 1-minute load average, before the rounds",
        "timer": "pytest-benchmark's timer (`--benchmark-timer`)",
        "round_cv": "coefficient of variation of the measured rounds (null when untimed)",
        "first_round_ratio": "the first measured round over the median of the others (null when untimed)",
        "steady": "whether the rounds were steady (`--llmperf-max-cv`); null with one measured round or untimed",
        "probe_s": "the speed probe after each round (null when untimed)",
        "cpu_wait_share": "per round, the time this process's working threads waited for a CPU (Linux's run-queue "
                          "delay, summed over the threads that ran at least a tenth as long as the busiest) over the "
                          "round's time: near 0 on a quiet machine; null when untimed or where the kernel does not "
                          "report it",
        "compilations_in_measured_rounds": "graphs compiled during measured rounds (null when untimed)",
        "gc_mode": "`--llmperf-gc` (null when untimed)",
        "gc_enabled_in_rounds": "whether automatic collection was on inside the rounds (null when untimed)",
        "gc_frozen_objects": "objects frozen before the rounds (null when untimed)",
        "gc_collections_in_measured_rounds": "collections inside measured rounds per generation, "
                                             "`{\"gen0\": n, \"gen1\": n, \"gen2\": n}` (null when untimed)",
        "gc_pause_s_in_measured_rounds": "their total pause (null when untimed)",
    }),
    ("[Memory](memory-energy-roofline.md#memory): null when untimed or not measurable here", {
        "weight_memory_mb": "what the model's parameters hold, MB of 2**20 bytes: a quantized weight by its "
                            "quantized data and scales (also untimed)",
        "peak_memory_mb": "peak memory of the measured rounds, MB of 2**20 bytes",
        "peak_memory_above_model_mb": "the peak minus what was resident right after the model loaded",
        "peak_memory_reserved_mb": "what torch's caching allocator held at most (CUDA only)",
        "memory_measure": "how the peak was measured, or why it was not",
    }),
    ("[Latency](latency.md): all null when untimed, and all but the first when not recorded", {
        "latency_source": "where latency was recorded: `measured rounds`, `extra rounds`, "
                          "`not reported by the strategy`, `off`",
        "latency_rounds": "rounds recorded",
        "latency_requests": "requests over those rounds",
        "<distribution>_<statistic>": "for each distribution `ttft_ms`, `itl_ms`, `tpot_ms`, `e2e_ms`, `queue_ms` "
                                      "and statistic `mean`, `p50`, `p90`, `p95`, `p99` (e.g. `ttft_ms_p95`)",
        "prefill_s": "per round, how long some request was waiting for its first token; median over the rounds",
        "decode_s": "per round, how long some request was between its first and last token; median over the rounds",
        "decode_tokens_per_s": "aggregate: the tokens after each request's first over the decode time; median "
                               "over the rounds",
        "request_decode_tokens_per_s_mean": "mean of the requests' decode tokens/s (1 / TPOT)",
        "request_decode_tokens_per_s_p50": "median of the requests' decode tokens/s",
    }),
    ("[Energy and telemetry](memory-energy-roofline.md#energy-telemetry-and-the-roofline)", {
        "telemetry": "how it was sampled, or why it is not available",
        "telemetry_samples": "samples inside the measured rounds",
        "gpu_utilization_pct_mean": "mean GPU utilisation",
        "gpu_memory_used_mb_max": "most GPU memory used",
        "gpu_power_w_mean": "mean power",
        "gpu_sm_clock_mhz_mean": "mean SM clock",
        "gpu_sm_clock_mhz_min": "lowest SM clock",
        "gpu_temperature_c_max": "highest temperature",
        "gpu_throttle_reasons": "clock-event (throttle) reasons seen (a list)",
        "energy_measure": "where the energy came from (an energy counter, or integrated power)",
        "energy_j_rounds": "energy per measured round, J",
        "energy_j_per_round": "their median",
        "energy_per_token_j": "median over the measured rounds of a round's energy over its generated tokens",
        "energy_per_sample_j": "median over the measured rounds of a round's energy over its samples",
    }),
    ("[The roofline](memory-energy-roofline.md#energy-telemetry-and-the-roofline)", {
        "roofline_fraction": "the fraction of the memory-bandwidth roofline decoding reaches; null when "
                             "impossible (above 1, or the probe above the device's own figure or below 5% of it)",
        "roofline_note": "why the fraction is null (the probe was disturbed, or speculative decoding), else null",
        "memory_bandwidth_gb_s": "the best copy-probe bandwidth of the process so far, GB/s",
        "memory_bandwidth_probes": "how many copy probes the process had run by then",
        "device_memory_bandwidth_gb_s": "the device's own figure (memory clock x bus width x 2), GB/s; null on a CPU",
        "device_memory_bandwidth_source": "where the device's figure came from, or why there is none",
        "decode_bytes_per_step": "bytes a decode step must read",
        "decode_step_ms": "the decode step time (the median ITL)",
        "decode_sequences_per_step": "sequences a step advances (aggregate decode tokens/s times the step time)",
    }),
    ("For the next run to compare with ([below](#what-the-next-run-compares-with), [CI gates](ci.md))", {
        "identity": "what makes two cases the same question",
        "causes": "what may change the answer",
        "outputs": "a digest of the generated token ids",
        "metric_samples": "per measured round, each gate metric (null when untimed)",
    }),
)


def extra_info_keys() -> set[str]:
    """Every key ``extra_info`` holds, families expanded."""
    return {expanded for _, keys in EXTRA_INFO for key in keys for expanded in FAMILIES.get(key, (key,))}


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
    padding_fraction: float | None = None  # padded over all prefill positions (PaddingCounter); None: no padding
    weight_bytes: int | None = None  # what the parameters hold (quantization.weight_bytes)
    quantization_config: dict | None = None  # as transformers applied it; None without quantization
    unquantized: AgainstUnquantized | None = None  # a quantized configuration against the unquantized bs=1 outputs
    speculation: dict | None = None  # speculative decoding's figures (runner.speculation_of); None without it
    non_speculative: "RunResult | None" = None  # the timed run without speculative decoding, for its speedup

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
    def speedup_vs_non_speculative(self) -> float | None:
        """samples/s over samples/s of the same case without speculative decoding; None if either is untimed."""
        if self.timing is None or self.non_speculative is None or self.non_speculative.timing is None:
            return None
        return self.samples_per_s / self.non_speculative.samples_per_s

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
            "quantization": self.spec.quantization,
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
            "padding_fraction": self.padding_fraction,
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
            "quantization_config": self.quantization_config,
            "weight_memory_mb": None if self.weight_bytes is None else self.weight_bytes / 2 ** 20,
        })
        unquantized = self.unquantized
        info.update({
            "exact_match_to_unquantized": unquantized.exact_match if unquantized else None,
            "similarity_to_unquantized": unquantized.similarity if unquantized else None,
            "length_match_to_unquantized": unquantized.length_match if unquantized else None,
            "divergences_from_unquantized": unquantized.kinds() if unquantized else None,
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
        info.update({"speculative": self.spec.speculative, "draft_model": self.spec.draft,
                     **(self.speculation or dict.fromkeys(SPECULATION_KEYS)),
                     "speedup_vs_non_speculative": self.speedup_vs_non_speculative})
        # What a later run compares with (the cross-commit gate): the ids themselves are stored once per
        # distinct set, at the top of the saved JSON (``llmperf.outputs``), under this digest.
        info.update({
            "identity": self.identity,
            "causes": self.causes,
            "outputs": self.outputs_digest,
            "metric_samples": metric_samples(self.timing, self.num_samples),
        })
        return info


# -- a saved run's benchmarks -----------------------------------------------------------------------

def is_llmperf_case(bench) -> bool:
    """A benchmark of a pytest-benchmark JSON that pytest-llmperf saved (its figures in ``extra_info``)."""
    return isinstance(bench, dict) and "config_hash" in (bench.get("extra_info") or {})


def holds_no_cases(path, benchmarks: list) -> str:
    """What a pytest-benchmark run without a pytest-llmperf case holds, in one line."""
    if not benchmarks:
        return f"{path} holds no pytest-llmperf cases: it holds no benchmarks at all"
    names = [str(bench.get("name", "?")) if isinstance(bench, dict) else "?" for bench in benchmarks]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{path} holds no pytest-llmperf cases: {len(names)} plain pytest-benchmark "
            f"benchmark{'s' if len(names) > 1 else ''} ({shown}), none saved by pytest-llmperf")


# A merged run (``pytest-llmperf merge``) keeps, per benchmark, the run it was measured in: the top-level
# ``llmperf.runs`` lists the runs merged (each with its own ``machine_info``, ``commit_info``,
# ``datetime`` and ``source``), and each benchmark's ``llmperf_run`` is its index there. A run saved by
# a session is its own only run.
MERGED_RUNS, RUN_OF_BENCHMARK = "runs", "llmperf_run"


def runs_of(data: dict, source: str) -> list[dict]:
    """The runs a saved pytest-benchmark JSON holds: a merged file's parts, else the file itself."""
    merged = (data.get("llmperf") or {}).get(MERGED_RUNS)
    if merged:
        return merged
    return [{"source": source, "datetime": data.get("datetime"), "commit_info": data.get("commit_info") or {},
             "machine_info": data.get("machine_info") or {}}]


def run_index(bench: dict, runs: list[dict]) -> int:
    """Which of ``runs`` (``runs_of``) measured ``bench``; a ``ValueError`` when the file says none of them."""
    index = bench.get(RUN_OF_BENCHMARK, 0)
    if not isinstance(index, int) or not 0 <= index < len(runs):
        raise ValueError(f"benchmark {bench.get('fullname', bench.get('name'))!r} names run {index!r} of "
                         f"{len(runs)} merged run(s)")
    return index
