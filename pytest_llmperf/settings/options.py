"""The option table: every ``--llmperf-*`` flag, its ini key, its parser and its default.

One row per option drives ``pytest_addoption`` (flag + ini key) and the start-up validation
(``read_options``), so a new option is one new row. Parsers raise ``ValueError`` with a
one-line message that lists the valid values; ``plugin.py`` turns that into a usage error
(exit code 4). Nothing here imports torch, transformers or datasets.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

BUILTIN = "builtin"
SYNTHETIC = "synthetic"  # --llmperf-dataset synthetic: fixed-shape prompts of token ids (workload.synthetic_workload)

DEVICES_HELP = "auto, cpu, cuda, cuda:N"
DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flex_attention")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
NO_QUANTIZATION = "none"
# Quantization at load, through transformers' quantization_config (model/quantization.py holds what each is,
# and checks at import that it names exactly these): torchao, bitsandbytes, optimum-quanto.
QUANTIZATIONS = (NO_QUANTIZATION, "int8-weight", "int8-dynamic", "int4-weight", "bnb-8bit", "bnb-4bit",
                 "quanto-int8", "quanto-int4")
# Speculative decoding through transformers' generate: a draft model proposes tokens (``assistant_model``),
# or n-grams of the prompt do (``prompt_lookup_num_tokens``); the main model verifies them.
NOT_SPECULATIVE, ASSISTED, PROMPT_LOOKUP = "none", "assisted", "prompt-lookup"
SPECULATIVE = (NOT_SPECULATIVE, ASSISTED, PROMPT_LOOKUP)
GC_MODES = ("freeze", "none")  # instruments.Collector implements them
ON_OOM = ("fail", "skip")
LATENCY_MODES = ("auto", "rounds", "extra", "off")  # latency.mode resolves auto
LATENCY_PERCENTILES = ("p50", "p90", "p95", "p99")
PROGRESS = ("auto", "on", "off")
COVERAGE = ("quick", "standard", "full")  # presets.py: the axes each one sets
XDIST_TIMING = ("auto", "on", "off")  # run.distributed.timing_under_xdist resolves auto
# The metrics the cross-commit gate compares, named for --llmperf-tolerance; measure/metrics.py holds
# how each is read, in this order, and checks at import that its table names exactly these.
METRIC_NAMES = ("tokens_per_s", "samples_per_s", "peak_memory_mb", "energy_per_token_j",
                "ttft_ms_p95", "itl_ms_p95", "e2e_ms_p95")


def is_off(value: Any) -> bool:
    """An empty value, ``none`` or ``off``: the option is switched off."""
    return str(value).strip().lower() in ("", "none", "off")


def split_list(value: Any) -> list[str]:
    """``"1,4, 16"`` / ``"1 4 16"`` / ``[1, 4]`` -> ``["1", "4", "16"]``."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = str(value).replace(",", " ").split()
    return [item.strip() for item in items if item.strip()]


def parse_choices(choices: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        valid = choices() if callable(choices) else choices
        items = split_list(value)
        if not items:
            raise ValueError(f"needs at least one value; valid values: {', '.join(valid)}")
        bad = [item for item in items if item not in valid]
        if bad:
            raise ValueError(f"invalid value {', '.join(map(repr, bad))}; valid values: {', '.join(valid)}")
        return tuple(dict.fromkeys(items))  # de-duplicated, order kept

    return parse


def parse_choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if text not in choices:
            raise ValueError(f"invalid value {text!r}; valid values: {', '.join(choices)}")
        return text

    return parse


MAX_BATCH = "max"  # the largest batch size that fits, found at run time (runner.resolve_batch_size)
MAX_BATCH_ALIASES = ("max", "auto")


def parse_batch_sizes(value: Any) -> tuple[int | str, ...]:
    items = split_list(value)
    sizes: set[int] = set()
    largest = False
    for item in items:
        if item.lower() in MAX_BATCH_ALIASES:
            largest = True
            continue
        try:
            size = int(item)
        except ValueError:
            size = 0
        if size < 1 or str(size) != item.lstrip("+"):
            raise ValueError(f"invalid batch size {item!r}; batch sizes are positive integers or 'max' (the largest "
                             "that fits), e.g. 1,4,16 or 1,max")
        sizes.add(size)
    if not sizes and not largest:
        raise ValueError("needs at least one batch size, e.g. 1,4,16")
    # ascending, so bs=1 (the speedup reference) runs first; the search for the largest runs last
    return (*sorted(sizes), *([MAX_BATCH] if largest else []))


def parse_int(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"invalid value {value!r}; expected an integer >= {minimum}") from None
        if number < minimum:
            raise ValueError(f"invalid value {value!r}; expected an integer >= {minimum}")
        return number

    return parse


def parse_num_samples(value: Any) -> int | None:
    """A positive count, or ``all`` (None) for the whole split."""
    if str(value).strip().lower() == "all":
        return None
    try:
        return parse_int(1)(value)
    except ValueError:
        raise ValueError(f"invalid value {value!r}; expected an integer >= 1, or 'all' for the whole split") from None


def parse_non_negative(value: Any) -> float | None:
    """A number >= 0 (a rate, a speedup, seconds, nats), or None for an off value; fractions, whose
    range means something per option, go through ``parse_fraction``."""
    text = str(value).strip().lower()
    if is_off(text):
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"invalid value {value!r}; expected a number") from None
    if math.isnan(number) or number < 0:
        raise ValueError(f"invalid value {value!r}; expected a number >= 0")
    return number


def parse_fraction(low: float = 0.0, high: float = 1.0, *, above_low: bool = False, below_high: bool = False,
                   off: bool = True) -> Callable[[Any], float | None]:
    """A fraction within a range that means something for its option (``off`` allowed where it
    switches the option off). A value above 1 gets the hint a percentage-minded user needs:
    "2 means 200%; for 2% write 0.02"."""
    bound = (f"{'above' if above_low else 'at least'} {low:g} and {'below' if below_high else 'at most'} {high:g}"
             if above_low or below_high else f"between {low:g} and {high:g}")

    def parse(value: Any) -> float | None:
        text = str(value).strip().lower()
        if off and is_off(text):
            return None
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not (low < number if above_low else low <= number) or not (number < high if below_high else number <= high):
            hint = f" ({text} means {number:.0%}; for {text}% write {number / 100:g})" if 1 < number <= 100 else ""
            raise ValueError(f"invalid value {value!r}; expected a fraction {bound}{hint}")
        return number

    return parse


def parse_bool(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"invalid value {value!r}; expected true or false")


def parse_tolerances(value: Any) -> dict[str, float]:
    """``0.1`` (every metric), ``tokens_per_s=0.05`` (one metric), or both: ``0.1,tokens_per_s=0.05``.

    A dict (from a marker) works too. The key ``*`` holds the value for every metric."""
    tolerances = {}
    for name, raw in keyed_items(value):
        name = str(name).strip()
        if name not in ("*", *METRIC_NAMES):
            raise ValueError(f"unknown metric {name!r}; metrics: {', '.join(METRIC_NAMES)}")
        try:  # 1 or more: a rate could never fall that far, and the gate would be off without a word
            tolerances[name] = parse_fraction(below_high=True, off=False)(raw)
        except ValueError as exc:
            raise ValueError(f"tolerance for {'every metric' if name == '*' else name}: {exc}") from None
    if not tolerances:
        raise ValueError("expected a fraction, e.g. 0.1, or metric=fraction pairs, e.g. tokens_per_s=0.05")
    return tolerances


def keyed_items(value: Any):
    """``(key, raw value)`` pairs of ``"x"`` / ``"k=x, k2=y"`` (an unkeyed value has the key ``*``), or
    of a dict from a marker."""
    if isinstance(value, dict):
        return list(value.items())
    return [tuple(item.split("=", 1)) if "=" in item else ("*", item) for item in split_list(value)]


def parse_ceilings(unit: str, example: str) -> Callable[[Any], dict | None]:
    """A ceiling for every batch size (``20480``), per batch size (``16=4096,64=20480``), or both; a
    number or a ``{batch size: value}`` dict from a marker. ``off`` switches it off."""

    def parse(value: Any) -> dict | None:
        if is_off(value):
            return None
        ceilings: dict = {}
        for key, raw in keyed_items(value if isinstance(value, dict) else str(value)):
            key = str(key).strip()
            if key != "*" and not (key.isdigit() and int(key) > 0):
                raise ValueError(f"invalid batch size {key!r} in {value!r}; expected {unit}, or batch_size={unit} "
                                 f"pairs, e.g. {example}")
            number = parse_non_negative(raw)
            if number is None:
                raise ValueError(f"invalid ceiling {raw!r}; expected {unit}, e.g. {example.split(',')[0]}")
            ceilings[key if key == "*" else int(key)] = number
        return ceilings

    return parse


def parse_device(value: Any) -> str:
    text = str(value).strip()
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ValueError(f"invalid device {text!r}; valid values: {DEVICES_HELP}")


def parse_text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def parse_optional_text(value: Any) -> str | None:
    text = str(value).strip()
    return None if text.lower() in ("", "none") else text


def parse_optional_path(value: Any) -> str | None:
    text = str(value).strip()
    return None if is_off(text) else text


EXPORT_FORMATS = ("github-action-benchmark", "bencher")  # exports.py writes them


def parse_exports(value: Any) -> tuple[tuple[str, str], ...] | None:
    """``github-action-benchmark=bench/,bencher=bencher.json`` -> ``(("github-action-benchmark", "bench/"), ...)``."""
    if is_off(value):
        return None
    pairs = []
    items = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    for item in (item.strip() for item in items if item.strip()):  # commas only: a path may hold spaces
        fmt, equals, path = item.partition("=")
        if not equals or not path:
            raise ValueError(f"invalid export {item!r}; expected FORMAT=PATH, FORMAT one of: {', '.join(EXPORT_FORMATS)}")
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; valid formats: {', '.join(EXPORT_FORMATS)}")
        pairs.append((fmt, path))
    return tuple(pairs)


def parse_repo_id(value: Any) -> str | None:
    """A Hub dataset id, ``org/name`` (or ``name`` in the token's own namespace); ``off`` is off."""
    text = str(value).strip()
    if is_off(text):
        return None
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", text):
        raise ValueError(f"invalid dataset id {text!r}; expected ORG/NAME, e.g. my-org/perf-results")
    return text


def parse_prices(value: Any) -> tuple[tuple[str, float], ...] | None:
    """``A10G=1.01,NVIDIA H100=4.5`` -> ``(("A10G", 1.01), ("NVIDIA H100", 4.5))``: US dollars per hour of
    a device, by (part of) its name; commas only between pairs, a name may hold spaces."""
    if is_off(value):
        return None
    items = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value).split(",")
    prices = []
    for item in (item.strip() for item in items if item.strip()):
        name, equals, price = item.rpartition("=")
        number = None
        if equals and name.strip():
            try:
                number = float(price)
            except ValueError:
                pass
        if number is None or not (number > 0 and math.isfinite(number)):
            raise ValueError(f"invalid price {item!r}; expected NAME=USD_PER_HOUR (a number above 0), e.g. "
                             "A10G=1.01,H100=4.50")
        prices.append((name.strip(), number))
    return tuple(prices)


def parse_progress(value: Any) -> str | float:
    """``auto``, ``on``, ``off``, or seconds between lines (on)."""
    text = str(value).strip().lower()
    if text in PROGRESS:
        return text
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(f"invalid value {value!r}; valid values: {', '.join(PROGRESS)}, or seconds between lines")
    return seconds


def registered_strategy_names() -> tuple[str, ...]:
    from . import registry  # light: no torch at import

    return tuple(registry.names())


@dataclass(frozen=True)
class Option:
    dest: str  # attribute name, also the marker keyword where the option can be set per test
    default: Any  # raw default, run through `parse` like any user value (None: unset)
    parse: Callable[[Any], Any]
    help: str
    metavar: str = "VALUE"
    flag_only: bool = False  # a switch on the command line (no value); true/false in ini and markers
    default_text: str = ""  # what an unset value means, for --help, where "off" would be wrong

    @property
    def default_shown(self) -> str:
        """The default as --help and docs/options.md show it."""
        return self.default_text or ("off" if self.default is None else str(self.default))

    @property
    def flag(self) -> str:
        return "--llmperf-" + self.dest.replace("_", "-")

    @property
    def ini(self) -> str:
        return "llmperf_" + self.dest


# Options shaping the workload and the model. Axes (lists that parametrize tests) are marked below.
OPTIONS: tuple[Option, ...] = (
    Option("model", BUILTIN, parse_text,
           "hub id or local model directory; 'builtin' is the embedded tiny model; 'shape:NAME' (smollm2-135m, "
           "gemma-3-270m, qwen2.5-0.5b, llama-3.2-1b) or 'shape:path/to/config.json' builds that architecture with "
           "random weights, offline", "ID"),
    Option("dataset", BUILTIN, parse_text,
           "hub id or local .json/.jsonl/.csv/.parquet file; 'builtin' is the embedded FoodExtract-style set; "
           "'synthetic' is --llmperf-prompt-tokens random token ids per prompt, generating exactly "
           "--llmperf-max-new-tokens (EOS ignored)", "ID"),
    Option("prompt_tokens", "128", parse_int(1),
           "prompt length in tokens of --llmperf-dataset synthetic: every prompt exactly this long, so batches "
           "need no padding", "N"),
    Option("prompt_column", "sequence", parse_text,
           "dataset column holding the prompt: a string, or a conversation (a list of {role, content} messages, "
           "through the chat template)", "NAME"),
    Option("reference_column", None, parse_optional_text, "dataset column holding reference outputs", "NAME",
           default_text="the built-in set's own, else none"),
    Option("split", "test", parse_text,
           "split to run; a dataset with only 'train' is split 80/20 with seed 42 into train/test", "NAME"),
    Option("num_samples", "48", parse_num_samples, "prompts per round from the split ('all' for every row; more than the split has: all of them, with a warning)", "N"),
    Option("device", "auto", parse_device, f"device: {DEVICES_HELP}", "DEVICE"),
    Option("dtype", "float32", parse_choices(DTYPES), f"list of dtypes: {', '.join(DTYPES)}", "LIST"),
    Option("attn", "sdpa", parse_choices(ATTN_IMPLEMENTATIONS),
           f"list of attention implementations: {', '.join(ATTN_IMPLEMENTATIONS)}", "LIST"),
    Option("compile", "none", parse_choices(COMPILE_MODES), f"list of torch.compile modes: {', '.join(COMPILE_MODES)}",
           "LIST"),
    Option("coverage", "quick", parse_choice(COVERAGE),
           "a preset matrix of axes: 'quick' (the defaults), 'standard' (adds eager attention, compile default, "
           "bfloat16, continuous batching) or 'full' (every axis value that can run here; configurations that "
           "cannot are left out before collection and listed once); an axis set explicitly overrides the preset",
           "PRESET"),
    Option("quantization", NO_QUANTIZATION, parse_choices(QUANTIZATIONS),
           "list of quantization methods, applied at load through transformers' quantization_config: none; torchao "
           "int8-weight, int8-dynamic, int4-weight (CUDA, bfloat16); bitsandbytes bnb-8bit, bnb-4bit (NF4); "
           "optimum-quanto quanto-int8, quanto-int4. Each needs its package (the 'quant' extra); one that cannot "
           "run here is skipped with the reason", "LIST"),
    Option("speculative", NOT_SPECULATIVE, parse_choices(SPECULATIVE),
           "list of speculative decoding modes: none; assisted (a draft model proposes tokens, "
           "--llmperf-draft-model); prompt-lookup (n-grams of the prompt do, --llmperf-prompt-lookup-tokens). Batch "
           "size 1 and the generate-based strategies only; greedy outputs must equal the non-speculative ones",
           "LIST"),
    Option("draft_model", None, parse_optional_text,
           "the draft model of --llmperf-speculative assisted: a hub id, a local model directory, 'builtin' (the "
           "built-in model's draft) or 'shape:NAME' (random weights: speed only)", "ID",
           default_text="the built-in draft with --llmperf-model builtin, else none (then required)"),
    Option("prompt_lookup_tokens", "10", parse_int(1),
           "the most tokens --llmperf-speculative prompt-lookup proposes per step (transformers' "
           "prompt_lookup_num_tokens)", "N"),
    Option("batch_sizes", "1,4,16", parse_batch_sizes,
           "list of positive batch sizes; 'max' (or 'auto') is the largest that fits, found by doubling then "
           "bisecting on out-of-memory", "LIST"),
    Option("strategies", "manual,pipeline,keydataset,continuous", parse_choices(registered_strategy_names),
           "list of batching strategies: manual, pipeline, keydataset, continuous, continuous_serving, "
           "bucketed (length-bucketed manual), or a registered one", "LIST"),
    Option("max_new_tokens", "32", parse_int(1), "greedy generation length limit per prompt", "N"),
    Option("warmup", "1", parse_int(0),
           "untimed warmup rounds before the measured ones (at least 3 with a compile mode)", "N"),
    Option("rounds", "3", parse_int(1), "measured rounds (one round = the whole workload)", "N"),
    # Measurement hygiene.
    Option("gc", "freeze", parse_choice(GC_MODES),
           "garbage collector in measured rounds: 'freeze' collects and freezes the heap before the rounds and "
           "collects before each round; 'none' leaves it as Python runs it", "MODE"),
    Option("threads", None, parse_int(1), "torch intra-op and inter-op threads for the session", "N",
           default_text="torch's own, one per core"),
    Option("latency", "auto", parse_choice(LATENCY_MODES),
           "where per-request latency (TTFT, ITL, e2e) is recorded: 'rounds' in the measured rounds, 'extra' in as "
           "many extra rounds after them (throughput from uninstrumented rounds), 'off'; 'auto' is rounds on CPU "
           "and extra on CUDA", "MODE"),
    Option("max_cv", "0.10", parse_fraction(above_low=True),
           "warn when a case's measured rounds vary by more than this coefficient of variation (above 0, at "
           "most 1), or its first measured round is an outlier ('off' disables)", "FRACTION"),
    # Gates. Unset means the gate is off, except the output gates, which default to strict.
    Option("min_tokens_per_s", None, parse_non_negative, "fail below this many generated tokens/s", "RATE"),
    Option("min_samples_per_s", None, parse_non_negative, "fail below this many samples/s", "RATE"),
    Option("max_memory_mb", None, parse_ceilings("MB", "20480 or 16=4096,64=20480"),
           "fail when the peak memory of the measured rounds is above this many MB (MiB, 2**20 bytes): torch's max "
           "allocated on CUDA, the peak RSS on CPU; per batch size as batch_size=MB pairs", "MB"),
    Option("max_ttft_ms", None, parse_ceilings("ms", "200 or 1=50,64=800"),
           "fail when the time to first token, at --llmperf-latency-percentile over every request, is above this "
           "many ms; per batch size as batch_size=ms pairs", "MS"),
    Option("max_itl_ms", None, parse_ceilings("ms", "20 or 1=5,64=40"),
           "fail when the inter-token latency, at --llmperf-latency-percentile over every gap, is above this many "
           "ms; per batch size as batch_size=ms pairs", "MS"),
    Option("max_e2e_ms", None, parse_ceilings("ms", "2000 or 1=500,64=8000"),
           "fail when the end-to-end latency (round start to a request's last token), at "
           "--llmperf-latency-percentile over every request, is above this many ms; per batch size as "
           "batch_size=ms pairs", "MS"),
    Option("latency_percentile", "p95", parse_choice(LATENCY_PERCENTILES),
           f"the percentile the latency ceilings hold: {', '.join(LATENCY_PERCENTILES)}", "PCT"),
    Option("min_roofline", None, parse_fraction(above_low=True),
           "fail when decoding reaches less than this fraction of the memory-bandwidth roofline (0..1; the bytes a "
           "decode step must read over its measured time, over the copy bandwidth measured on this device)",
           "FRACTION"),
    Option("min_speedup", None, parse_non_negative,
           "fail when a batch size > 1 is not this many times faster than bs=1 (same config, same session), judged on the "
           "rounds (too noisy to tell: a warning)", "X"),
    Option("min_exact_match", "0.95", parse_fraction(),
           "fail when fewer than this fraction of samples equal the bs=1 token ids (0..1; 'off' disables)", "FRACTION"),
    Option("min_similarity", "0.95", parse_fraction(),
           "fail when the mean word-level similarity to bs=1 is below this (0..1; 'off' disables)", "FRACTION"),
    Option("min_match_unquantized", None, parse_fraction(),
           "fail when fewer than this fraction of a quantized configuration's samples equal the token ids the "
           "unquantized model generates at bs=1 (same model, dtype, attention and compile mode; 0..1)", "FRACTION"),
    Option("min_match_non_speculative", "1.0", parse_fraction(),
           "fail a speculative case (--llmperf-speculative) when fewer than this fraction of samples equal the "
           "non-speculative bs=1 token ids: greedy speculative decoding must not change outputs (0..1; 'off' "
           "disables)", "FRACTION"),
    # While the session runs.
    Option("on_oom", "fail", parse_choice(ON_OOM),
           "a case that runs out of memory: fail it, or skip it; either way in one line, its memory freed and "
           "larger batch sizes of its strategy skipped", "ACTION"),
    Option("results_file", ".llmperf/results.jsonl", parse_optional_path,
           "a JSON line per finished case, written as it finishes, so an interrupted or killed session keeps what "
           "it measured (relative to the rootdir; 'off' disables)", "PATH"),
    Option("progress", "auto", parse_progress,
           "a progress line every 10 s while a case runs (round k of n, samples/s so far, the sweep's ETA): 'auto' "
           "on a terminal, and where the output is not one (CI logs) every --llmperf-heartbeat seconds; 'on', "
           "'off', or a number: on, every that many seconds", "MODE"),
    Option("heartbeat", "60", parse_non_negative,
           "with --llmperf-progress auto and the output not a terminal (CI logs), a progress line at most every "
           "this many seconds, at the end of a round, so that a long job shows it is alive ('off' silences it)",
           "SECONDS"),
    Option("xdist_timing", "auto", parse_choice(XDIST_TIMING),
           "under pytest-xdist (-n), whether each worker times its cases (pytest-benchmark alone times nothing "
           "there): 'auto' times only where every worker has a GPU of its own (device auto or cuda, no more workers "
           "than GPUs) and says in one line why not elsewhere; 'on' also where workers share a device (tests, "
           "workers pinned to their own cores); 'off' checks outputs only", "MODE"),
    # What the session leaves behind besides pytest-benchmark's files.
    Option("report", None, parse_optional_path,
           "write a report folder at the end of the session (relative to the rootdir): report.md with the tables "
           "and figures, the data as CSV and JSON lines, and the figures (with the 'report' extra)", "DIR"),
    Option("export", None, parse_exports,
           f"write results for dashboards at the end of the session: FORMAT=PATH pairs (comma-separated, paths "
           f"relative to the rootdir), FORMAT one of {', '.join(EXPORT_FORMATS)} "
           f"(github-action-benchmark=DIR, bencher=FILE)", "FORMAT=PATH"),
    Option("push_to_hub", None, parse_repo_id,
           "append a row per case to this Hugging Face Hub dataset at the end of the session (needs a network and "
           "a token with write access, HF_TOKEN)", "ORG/NAME"),
    Option("price", None, parse_prices,
           "hourly price of each kind of device, for the report's cost per million tokens: NAME=USD_PER_HOUR pairs "
           "(comma-separated); NAME is (part of) the GPU's name, or the CPU model for a CPU run, e.g. "
           "A10G=1.01,H100=4.50", "NAME=USD"),
    # Against a stored earlier run (the cross-commit gate).
    Option("baseline", None, parse_optional_text,
           "a saved run (--benchmark-json or autosave file) to compare with", "PATH",
           default_text="the run --benchmark-compare selected, if any"),
    Option("require_baseline", "false", parse_bool, "fail a case that has nothing to compare with in the baseline",
           flag_only=True),
    Option("strict_env", "false", parse_bool,
           "fail, rather than skip, timing comparisons with a baseline measured on other hardware", flag_only=True),
    Option("tolerance", None, parse_tolerances,
           "how much worse than the baseline a metric may get before it can fail: a fraction below 1 (0.1, not "
           "10) for every metric, and/or metric=fraction", "TOLERANCE",
           default_text="per metric: 0.2 for ttft_ms_p95 and itl_ms_p95, 0.1 for the others"),
    Option("alpha", "0.01", parse_fraction(0, 0.5, above_low=True, off=False),
           "significance level of the test that a change against the baseline is not noise (above 0, at most 0.5)",
           "P"),
    Option("min_baseline_match", "1.0", parse_fraction(),
           "fail when fewer than this fraction of samples equal the baseline's token ids (0..1)", "FRACTION"),
    Option("near_tie", "0.5", parse_non_negative,
           "a divergence from the baseline whose log-prob margin is at most this (nats) is numeric drift, "
           "not a behaviour change", "NATS"),
    Option("tolerate_near_ties", "false", parse_bool,
           "count near-tie divergences from the baseline as matching: fail only on confident changes "
           "(outputs across different hardware)", flag_only=True),
)

OPTIONS_BY_DEST = {option.dest: option for option in OPTIONS}
# The sections of the option reference (docs/options.md, ``settings.reference``): each starts at the
# option named here and runs to the next one's, so a new row joins the section it is written in.
OPTION_GROUPS = {
    "model": "The model, the workload and the sweep",
    "gc": "Measurement hygiene",
    "min_tokens_per_s": "Gates (unset: off, except the output gates, which default to strict)",
    "on_oom": "While the session runs",
    "report": "What the session leaves behind",
    "baseline": "Against a stored earlier run (the cross-commit gate)",
}

# Names the user writes in ini/CLI for the list-valued axes, and the marker keywords for them.
AXES = {  # option dest -> marker keyword
    "dtype": "dtypes",
    "attn": "attn_implementations",
    "compile": "compile_modes",
    "quantization": "quantizations",
    "speculative": "speculative",
    "batch_sizes": "batch_sizes",
    "strategies": "strategies",
}
CEILINGS = ("max_memory_mb", "max_ttft_ms", "max_itl_ms", "max_e2e_ms")  # per batch size (Thresholds.ceiling_for)
THROUGHPUT_THRESHOLDS = ("min_tokens_per_s", "min_samples_per_s", "min_speedup", "min_roofline",
                         *CEILINGS)  # need timing
BASELINE_THRESHOLDS = ("tolerance", "min_baseline_match", "tolerate_near_ties")
THRESHOLDS = (*THROUGHPUT_THRESHOLDS, "latency_percentile", "min_exact_match", "min_similarity", "min_match_unquantized",
              "min_match_non_speculative", *BASELINE_THRESHOLDS)


def read_options(get_cli: Callable[[str], Any], get_ini: Callable[[str], Any]) -> tuple[dict, dict]:
    """Parse every option: CLI beats ini beats default.

    Returns ``(values, explicit)``: all parsed values, and the subset the user set on the CLI
    or in ini (thresholds need to know that: explicit ones beat a test's marker).
    Raises ``ValueError("--llmperf-x: ...")`` on the first bad value.
    """
    values, explicit = {}, {}
    for option in OPTIONS:
        raw, source = get_cli(option.dest), option.flag  # None: not given; "" is a value (and is checked)
        if raw is None:
            raw, source = get_ini(option.ini), option.ini
            if raw in ("", []):  # what pytest returns for an ini key that is not set
                raw = None
        is_explicit = raw is not None
        if not is_explicit:
            raw, source = option.default, f"{option.flag} default"
        try:
            value = None if raw is None else option.parse(raw)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        values[option.dest] = value
        if is_explicit:
            explicit[option.dest] = value
    check_workload(values, explicit)
    check_speculative(values, explicit)
    return values, explicit


def check_workload(values: dict, explicit: dict) -> None:
    """What the synthetic workload needs and what only it takes; ``prompt_tokens`` is None for any other."""
    if values["dataset"] != SYNTHETIC:
        if "prompt_tokens" in explicit:
            raise ValueError("--llmperf-prompt-tokens: applies only to --llmperf-dataset synthetic (the prompts of "
                             f"dataset {values['dataset']!r} are its own)")
        values["prompt_tokens"] = None
    elif values["num_samples"] is None:
        raise ValueError("--llmperf-num-samples: 'all' has no meaning for --llmperf-dataset synthetic; give a number "
                         "of prompts")


def draft_model(model: str, draft: str | None) -> str | None:
    """The draft of assisted decoding: the one given, else the built-in draft for the built-in model,
    else None (assisted decoding cannot run: ``NO_DRAFT``)."""
    return draft if draft is not None else BUILTIN if model == BUILTIN else None


NO_DRAFT = ("--llmperf-speculative assisted needs --llmperf-draft-model (a hub id, a local model directory or "
            "shape:NAME): the built-in draft goes with --llmperf-model builtin only")


def check_speculative(values: dict, explicit: dict) -> None:
    """Assisted decoding asked for on the command line or in ini needs a draft; a marker's is checked by its test."""
    if ASSISTED in values["speculative"] and draft_model(values["model"], values["draft_model"]) is None:
        raise ValueError(NO_DRAFT)


# pytest-benchmark's options that size its own calibrated rounds. Perf tests run pedantic rounds (a
# fixed warmup and number of rounds: --llmperf-warmup, --llmperf-rounds), where they have no effect.
# (--benchmark-disable-gc and --benchmark-timer do apply, and are honoured.)
CALIBRATION_ONLY = ("min_time", "max_time", "min_rounds", "precision", "confidence", "calibration_precision",
                    "warmup", "warmup_iterations")


def benchmark_options_that_do_not_apply(config) -> list[str]:
    """The ``--benchmark-*`` flags of ``CALIBRATION_ONLY`` that this run sets to other than their default."""
    try:
        defaults = vars(config._parser.parse_known_args([]))  # pytest has no public accessor for defaults
    except Exception:  # pragma: no cover - a pytest without it: say nothing rather than guess
        return []
    changed = []
    for name in CALIBRATION_ONLY:
        dest = f"benchmark_{name}"
        if dest in defaults and config.getoption(dest, defaults[dest]) != defaults[dest]:
            changed.append("--benchmark-" + name.replace("_", "-"))
    return changed
