"""What a saved case is, so that a later run knows what it may compare it with.

* **Identity of the work**: what makes two cases the same question (model, workload, generation
  settings, configuration, strategy, batch size). Cases whose identity differs are not comparable.
* **Causes**: what may change the answer without changing the question (the model's revision,
  the tokenizer, the chat template, the prompt token ids, the generation config as transformers
  resolved it). They never make cases incomparable; they explain a difference ("chat template
  changed"), and a sample whose causes differ has changed inputs: its divergence is never
  numeric drift.

Digests are short SHA-256 prefixes of a canonical JSON or text form.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..settings.options import NO_QUANTIZATION

DIGEST_CHARS = 16
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
# Generation-config keys that record where a config came from, not what it does.
GENERATION_CONFIG_BOOKKEEPING = ("transformers_version", "_from_model_config", "_commit_hash", "_original_object_hash")


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def ids_digest(ids) -> str:
    return digest(",".join(map(str, ids)))


def model_revision(source: str, model) -> str:
    """A hub commit hash, or for a local directory a digest of its config and its weight files'
    names and sizes (reading the weights themselves would cost as much as loading them)."""
    directory = Path(source).expanduser()
    if directory.is_dir():
        config = directory / "config.json"
        weights = sorted((path.name, path.stat().st_size) for path in directory.iterdir()
                         if path.suffix in WEIGHT_SUFFIXES)
        return "local:" + digest({"config": config.read_text() if config.is_file() else None, "weights": weights})
    commit = getattr(model.config, "_commit_hash", None)
    return f"hub:{commit}" if commit else f"hub:{source}@unknown"


def tokenizer_digest(tokenizer) -> str:
    """The tokenizer's whole behaviour: a fast tokenizer's serialised pipeline, else its vocabulary,
    with the special tokens either way."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return digest({"tokenizer": body, "special_tokens": tokenizer.special_tokens_map})


def chat_template_digest(tokenizer) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    return None if not template else digest(template)


def generation_config(config) -> dict:
    """The generation config as transformers resolved it, without its bookkeeping keys."""
    resolved = config.to_dict()
    return {key: value for key, value in sorted(resolved.items())
            if key not in GENERATION_CONFIG_BOOKKEEPING and not key.startswith("_")}


def as_saved(config: dict) -> dict:
    """The resolved generation config as every writer takes it (JSON): a compile mode's
    ``CompileConfig`` becomes its fields. The digest keeps the raw form's spelling, so saved
    baselines stay comparable."""
    return {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in config.items()}


def causes(target, workload) -> dict:
    """The causes of one (loaded model, workload); computed once per pair by the session. A draft
    model's revision is recorded beside them: a changed draft explains a change of speed, never one
    of outputs (greedy speculative decoding must reproduce the non-speculative ones)."""
    per_prompt = [ids_digest(ids) for ids in workload.input_ids]
    config = generation_config(target.generation_config(workload.spec.max_new_tokens, workload.spec.ignore_eos))
    draft = {"draft_revision": target.draft.revision} if target.draft is not None else {}
    return {
        **draft,
        "model_revision": target.revision,
        "tokenizer": tokenizer_digest(target.tokenizer),
        "chat_template": chat_template_digest(target.tokenizer),
        "prompt_token_ids": digest(per_prompt),
        "prompt_token_ids_per_prompt": per_prompt,
        "generation_config": digest(config),
        "generation_config_resolved": as_saved(config),
    }


def work_identity(result) -> dict:
    """The question a case answers (``result``: a ``RunResult``). A ``shape:`` model adds its config
    digest and seed (``shapes.revision``: another config is another model under the same name), the
    synthetic workload its prompt length, a quantized configuration its method, speculative decoding its
    mode and its draft or lookup size; every other case's identity is what it was before them."""
    spec, workload = result.spec, result.workload
    extra = {}
    if spec.speculating:
        extra.update(speculative=spec.speculative, draft_model=spec.draft,
                     prompt_lookup_num_tokens=spec.prompt_lookup_tokens)
    if str(result.causes.get("model_revision", "")).startswith("shape:"):
        extra["shape"] = result.causes["model_revision"]
    if workload.prompt_tokens is not None:
        extra["prompt_tokens"] = workload.prompt_tokens
    if spec.quantization != NO_QUANTIZATION:
        extra["quantization"] = spec.quantization
    return {
        "model": spec.model,
        "dataset": workload.dataset,
        "split": workload.split,
        "num_samples": result.num_samples,
        "prompts": result.prompts_digest,
        "max_new_tokens": workload.max_new_tokens,
        "decoding": "greedy",
        "dtype": spec.dtype,
        "attn_implementation": spec.attn_implementation,
        "compile_mode": spec.compile_mode,
        "strategy": result.strategy,
        "batch_size": result.batch_size,
        **extra,
    }


# What a changed cause most likely did, in the words a failure message uses.
CAUSE_LABELS = {
    "model_revision": "model weights or config changed",
    "tokenizer": "tokenizer changed",
    "chat_template": "chat template changed",
    "generation_config": "generation config changed",
}


CAUSE_KEYS = ("chat_template", "tokenizer", "model_revision", "generation_config")  # most likely culprit first


def changed_causes(baseline: dict, now: dict) -> list[str]:
    """Readable differences between two cause records, most likely culprit first. A baseline that
    recorded no causes says nothing changed, not that everything did."""
    if not baseline:
        return []
    found = [CAUSE_LABELS[key] + (_config_changes(baseline, now) if key == "generation_config" else "")
             for key in CAUSE_KEYS if baseline.get(key) != now.get(key)]
    old, new = baseline.get("prompt_token_ids_per_prompt") or [], now.get("prompt_token_ids_per_prompt") or []
    if old and len(old) == len(new):
        differ = sum(a != b for a, b in zip(old, new))
        if differ:
            found.append(f"prompt token ids differ for {differ}/{len(new)} prompts")
    return found


def changed_inputs(baseline: dict, now: dict, count: int, shared: tuple[str, ...] = ()) -> list[str]:
    """For each of ``count`` samples, what differs in what the model was given ('' where nothing
    does): the causes every sample shares (``shared``, and the chat template, tokenizer, weights and
    generation config) and the sample's own prompt token ids."""
    if not baseline:
        return [""] * count
    common = [*(CAUSE_LABELS[key] for key in CAUSE_KEYS if baseline.get(key) != now.get(key)), *shared]
    old, new = baseline.get("prompt_token_ids_per_prompt") or [], now.get("prompt_token_ids_per_prompt") or []
    if len(old) == len(new) == count:
        own = ["its prompt token ids differ" if a != b else "" for a, b in zip(old, new)]
    else:  # per-prompt digests not comparable: the digest of them all
        differ = baseline.get("prompt_token_ids") != now.get("prompt_token_ids")
        own = ["prompt token ids differ" if differ else ""] * count
    return ["; ".join(part for part in (*common, mine) if part) for mine in own]


def _config_changes(baseline: dict, now: dict) -> str:
    """`` (key: before -> after, ...)`` for the first keys of the resolved generation configs that differ."""
    before = baseline.get("generation_config_resolved") or {}
    after = now.get("generation_config_resolved") or {}
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not keys:
        return ""
    return " (" + ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys[:4]) + ")"
