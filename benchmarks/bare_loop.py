"""An independent bare greedy loop, beside the plugin's figures for the same architecture shape.

No plugin code: the model is built with plain transformers from the shape's config JSON
(``pytest_llmperf/model/builtin/shapes/NAME.json``, read as a file) with random weights (fixed seed); the
prompt is ``--prompt-tokens`` random token ids per row; decoding is greedy with ``model(...)`` and
the returned ``cache`` for exactly ``--new-tokens`` tokens (no end-of-sequence stop; the prefill computes
the last position's logits only, as ``generate`` does), the device
synchronised before every clock read. Per batch size, the median over ``--repeats`` runs (after one
warm-up run) of:

* tokens/s: generated tokens over the run (prefill + every decode step);
* the median token gap: the median decode step;
* the roofline fraction: (weights + the KV cache a step reads) / median gap / the copy bandwidth
  of a probe run here (best of 5 copies of a 256 MiB buffer, read + write); weights are the
  parameters (tied embeddings once, an untied input embedding not at all: a lookup reads a row);
  the KV a step reads is ``2 x layers x KV heads x head dim x element size`` per token of context
  (prompt + half the generated tokens, sliding layers capped at their window) per row;
* peak memory above the loaded model (CPU: the RSS high-water mark, reset before the run; CUDA:
  ``max_memory_allocated``), against the KV cache the shape implies at the full context.

``--loop generate`` decodes with plain ``model.generate`` instead (greedy, ``min_new_tokens`` =
``max_new_tokens``, its own ``no_grad``), the program users run and the plugin's strategies call; the
token times then come from a streamer of its own that synchronises the device in ``put``.

Beside them the plugin's figures for the same case (``manual`` strategy, same shape, dtype,
prompt length and new tokens), read from a results file: ``--plugin`` runs ``pytest perf_tests``
in a subprocess with one batch per round (``--llmperf-num-samples`` = batch size), right after
each bare measurement, ``--pairs`` times per batch size (bare, plugin, bare, plugin...: drift in the
machine's speed hits both alike; each bare measurement runs its own copy probe),
``--plugin-results FILE`` reads one written earlier (its ``manual`` cases with compile none).
Prints a markdown table and, with ``--json``, one JSON line per batch size. Run:
``HF_HUB_OFFLINE=1 python benchmarks/bare_loop.py --shape smollm2-135m --batch-sizes 1,4 --plugin``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "pytest_llmperf" / "model" / "builtin" / "shapes"
MiB = 2 ** 20


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def build(shape: str, device: str, dtype: str, attn: str):
    path = ROOT / "pytest_llmperf" / "model" / "builtin" / "files" / "model" / "config.json" if shape == "builtin" \
        else SHAPES / f"{shape}.json"  # builtin: the built-in model's architecture, for a quick check
    config_dict = json.loads(path.read_text())
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype), attn_implementation=attn)
    return model.eval()


def copy_bandwidth(device: str, nbytes: int = 256 * MiB, copies: int = 5) -> float:
    source = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    times = []
    for _ in range(copies):
        sync(device)
        start = time.perf_counter()
        target.copy_(source)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * nbytes / min(times)


def step_bytes(model, rows: int, context: float) -> tuple[int, float, int]:
    """(weights read per step, KV bytes per step at ``context``, KV bytes per token of one row)."""
    weights = sum(p.numel() * p.element_size() for p in {p.data_ptr(): p for p in model.parameters()}.values())
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight.data_ptr() != embed.weight.data_ptr():
        weights -= embed.weight.numel() * embed.weight.element_size()
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_layer_token = 2 * config.num_key_value_heads * head_dim * next(model.parameters()).element_size()
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    kv_step = sum(per_layer_token * (min(context, window) if kind == "sliding_attention" and window else context)
                  for kind in layer_types)
    return weights, rows * kv_step, per_layer_token * config.num_hidden_layers


def rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(field)


def reset_peak(device: str) -> int:
    """Reset the peak; return what is held now."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return rss("VmRSS")


def peak(device: str) -> int:
    return torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else rss("VmHWM")


@torch.inference_mode()
def greedy(model, prompt: torch.Tensor, new_tokens: int, device: str) -> tuple[float, list[float]]:
    """One run: seconds from the prefill's start to the last token, and the decode steps' seconds."""
    sync(device)
    start = time.perf_counter()
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)  # as generate(): the last position's logits
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    sync(device)
    last, gaps, cache = time.perf_counter(), [], out.cache
    for _ in range(new_tokens - 1):
        out = model(input_ids=token, cache=cache, use_cache=True)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        cache = out.cache
        sync(device)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return last - start, gaps


class TokenClock(BaseStreamer):
    """A streamer that only stamps the time of each ``put`` (the prompt, then each new token), the
    device synchronised first."""

    def __init__(self, device: str):
        self.device, self.times = device, []

    def put(self, value):
        sync(self.device)
        self.times.append(time.perf_counter())

    def end(self):
        pass


def generated(model, prompt: torch.Tensor, new_tokens: int, device: str) -> tuple[float, list[float]]:
    """As ``greedy``, through plain ``model.generate`` as a user calls it (its own ``no_grad``): exactly
    ``new_tokens`` tokens (``min_new_tokens``), greedy, the token times from a ``TokenClock``."""
    clock = TokenClock(device)
    sync(device)
    start = time.perf_counter()
    model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                   min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, streamer=clock)
    sync(device)
    times = clock.times[1:]  # the first put is the prompt, before the prefill
    return time.perf_counter() - start, [after - before for before, after in zip(times, times[1:])]


def bare(model, args, batch_size: int) -> dict:
    """One measurement at ``batch_size``, with a copy probe of its own just before (the machine's
    speed drifts)."""
    bandwidth = copy_bandwidth(args.device)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(batch_size)
    prompt = torch.randint(3, vocab, (batch_size, args.prompt_tokens), generator=generator).to(args.device)
    decode = generated if args.loop == "generate" else greedy
    decode(model, prompt, args.new_tokens, args.device)  # warm-up
    held = reset_peak(args.device)
    runs = [decode(model, prompt, args.new_tokens, args.device) for _ in range(args.repeats)]
    above = (peak(args.device) - held) / MiB
    gap = median(g for _, gaps in runs for g in gaps)
    weights, kv_step, kv_token = step_bytes(model, batch_size, args.prompt_tokens + args.new_tokens / 2)
    return {
        "batch_size": batch_size,
        "tokens_per_s": median(batch_size * args.new_tokens / seconds for seconds, _ in runs),
        "gap_ms": gap * 1000,
        "bytes_per_step": weights + kv_step,
        "bandwidth_gb_s": bandwidth / 1e9,
        "roofline": (weights + kv_step) / gap / bandwidth,
        "weights_mb": weights / MiB,
        "implied_kv_mb": batch_size * (args.prompt_tokens + args.new_tokens) * kv_token / MiB,
        "peak_above_model_mb": above,
    }


def plugin_command(args, batch_size: int, results: str) -> list[str]:
    command = [sys.executable, "-m", "pytest", str(ROOT / "perf_tests"), "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-k", "test_throughput", f"--rootdir={ROOT}",
               f"--llmperf-model=shape:{args.shape}", "--llmperf-dataset=synthetic",
               f"--llmperf-prompt-tokens={args.prompt_tokens}", f"--llmperf-max-new-tokens={args.new_tokens}",
               f"--llmperf-num-samples={batch_size}", f"--llmperf-batch-sizes={batch_size}",
               "--llmperf-strategies=manual", f"--llmperf-device={args.device}", f"--llmperf-dtype={args.dtype}",
               f"--llmperf-attn={args.attn}", "--llmperf-compile=none", f"--llmperf-rounds={args.repeats}",
               "--llmperf-latency=rounds", f"--llmperf-results-file={results}", "--llmperf-progress=off"]
    if args.threads:
        command.append(f"--llmperf-threads={args.threads}")
    command += shlex.split(args.plugin_args)  # later flags win: "--llmperf-latency=off" replaces the one above
    if not _plugin_installed():
        command[3:3] = ["-p", "pytest_llmperf.plugin"]
    return command


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(point.value == "pytest_llmperf.plugin" for point in entry_points(group="pytest11"))


def plugin_cases(path: str, args) -> dict:
    """batch size -> extra_info of the results file's ``manual`` cases of this shape, compile none."""
    cases = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        info = record.get("extra_info") or {}
        if (record.get("kind") == "case" and record.get("timed") and info.get("strategy") == "manual"
                and info.get("compile_mode") == "none" and args.shape in str(info.get("model"))
                and str(info.get("dtype")) == args.dtype and "test_throughput" in record.get("test", "")
                and not info.get("batch_size_search")):  # a bs=max case is the search's, not this size's
            cases[info["batch_size"]] = info
    return cases


def run_plugin(args, batch_size: int) -> dict | None:
    with tempfile.TemporaryDirectory() as folder:
        results = os.path.join(folder, "results.jsonl")
        done = subprocess.run(plugin_command(args, batch_size, results), cwd=ROOT, capture_output=True, text=True, check=False,
                              timeout=args.plugin_timeout)
        if done.returncode != 0 or not os.path.exists(results):
            print(f"plugin run at bs={batch_size} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}",
                  file=sys.stderr)
            return None
        return plugin_cases(results, args).get(batch_size)


def measure_all(args) -> list[dict]:
    """Per batch size, ``--pairs`` times: the bare loop, then (``--plugin``) the plugin, alternating, so
    that drift in the machine's speed hits both alike. One row per pair, the plugin's figures under
    ``"plugin"``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = build(args.shape, args.device, args.dtype, args.attn)
    print(f"shape:{args.shape} on {args.device}, {args.dtype}, {args.attn}: built in {time.perf_counter() - start:.1f} s, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; prompt {args.prompt_tokens} random tokens, "
          f"{args.new_tokens} new tokens, greedy, no EOS stop, decoded by "
          f"{'model.generate' if args.loop == 'generate' else 'the bare loop'}; median of {args.repeats} runs after 1 warm-up; "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    rows = []
    for batch_size in map(int, args.batch_sizes.split(",")):
        for pair in range(1, args.pairs + 1):
            row = {**bare(model, args, batch_size), "pair": pair}
            print(f"{args.loop} bs={batch_size} ({pair}): {row['tokens_per_s']:,.2f} tokens/s, median gap {row['gap_ms']:.2f} ms, "
                  f"roofline {row['roofline']:.3f} of {row['bandwidth_gb_s']:.1f} GB/s, peak above model "
                  f"{row['peak_above_model_mb']:,.1f} MB", flush=True)
            if args.plugin:
                row["plugin"] = run_plugin(args, batch_size)
            rows.append(row)
    return rows


PLUGIN_KEYS = ("tokens_per_s", "itl_ms_p50", "roofline_fraction", "memory_bandwidth_gb_s", "decode_bytes_per_step",
               "peak_memory_mb", "peak_memory_above_model_mb", "ttft_ms_p50", "num_samples", "round_s")


def fmt(value, pattern: str = "{:,.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="smollm2-135m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--loop", choices=("bare", "generate"), default="bare",
                        help="the independent side: the hand-written greedy loop under inference_mode (bare), or "
                        "plain model.generate as a user calls it (generate), which the plugin's strategies call too")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own); the plugin "
                        "run by --plugin gets the same through --llmperf-threads")
    parser.add_argument("--plugin", action="store_true", help="run the plugin per batch size in a subprocess")
    parser.add_argument("--plugin-args", default="", help="extra pytest arguments for the plugin's run")
    parser.add_argument("--pairs", type=int, default=1, help="bare, plugin, bare, plugin...: this many pairs per size")
    parser.add_argument("--plugin-results", help="read the plugin's figures from this results file instead")
    parser.add_argument("--plugin-timeout", type=float, default=1200)
    parser.add_argument("--json", help="append one JSON line per batch size to this file")
    parser.add_argument("--compare-only", metavar="JSONL", help="no measuring: this shape's rows from a --json file, "
                        "beside --plugin-results")
    args = parser.parse_args()

    if args.compare_only:  # rows measured earlier (--json), beside a results file: no model built
        rows = [row for row in map(json.loads, Path(args.compare_only).read_text().splitlines())
                if row["shape"] == args.shape and row["dtype"] == args.dtype]
        print(f"shape:{args.shape}, {args.dtype}: the bare loop's rows from {args.compare_only}, the plugin's from "
              f"{args.plugin_results}")
    else:
        rows = measure_all(args)
    if args.plugin_results:
        cases = plugin_cases(args.plugin_results, args)
        for row in rows:
            row["plugin"] = cases.get(row["batch_size"])
    side = args.loop  # "bare" or "generate": the independent side's name in the table
    print(f"| bs | pair | {side} tokens/s | plugin tokens/s | plugin/{side} | {side} gap ms | plugin ITL p50 ms | bytes/step MB "
          f"| {side} roofline | plugin roofline | {side} GB/s | plugin GB/s | weights MB | implied KV MB "
          f"| {side} peak above model MB | plugin peak MB | plugin above model MB |")
    print("|" + "---|" * 17)
    ratios: dict[int, list[float]] = {}
    for row in rows:
        info = row.get("plugin") or {}
        row["plugin"] = {key: info.get(key) for key in PLUGIN_KEYS}
        tokens = info.get("tokens_per_s")
        if tokens:
            ratios.setdefault(row["batch_size"], []).append(tokens / row["tokens_per_s"])
        print(f"| {row['batch_size']} | {row.get('pair', 1)} | {row['tokens_per_s']:,.2f} | {fmt(tokens)} | "
              f"{fmt(tokens and tokens / row['tokens_per_s'], '{:.3f}')} | {row['gap_ms']:.2f} | "
              f"{fmt(info.get('itl_ms_p50'))} | {row['bytes_per_step'] / MiB:,.1f} | {row['roofline']:.3f} | "
              f"{fmt(info.get('roofline_fraction'), '{:.3f}')} | {row['bandwidth_gb_s']:.1f} | "
              f"{fmt(info.get('memory_bandwidth_gb_s'), '{:.1f}')} | {row['weights_mb']:,.1f} | "
              f"{row['implied_kv_mb']:,.1f} | {row['peak_above_model_mb']:,.1f} | "
              f"{fmt(info.get('peak_memory_mb'), '{:,.1f}')} | {fmt(info.get('peak_memory_above_model_mb'), '{:,.1f}')} |")
    for batch_size, values in ratios.items():
        print(f"plugin/{side} tokens/s at bs={batch_size}: median {median(values):.3f} over {len(values)} pair(s) "
              f"(min {min(values):.3f}, max {max(values):.3f})")
    if args.json and not args.compare_only:
        with open(args.json, "a", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps({"shape": args.shape, "device": args.device, "dtype": args.dtype, **row}) + "\n")


if __name__ == "__main__":
    main()
