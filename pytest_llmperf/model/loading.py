"""Model loading: one ``ModelSpec`` -> one ``LoadedModel`` (model + tokenizer on the device). A
``shape:`` model is built on the device with random weights instead (``shapes.py``). A configuration
with speculative decoding shares its main model with the same configuration without it
(``with_speculation``), and with ``assisted`` holds a draft model too, loaded the same way.

Everything heavy is imported inside functions. ``unsupported_reason`` decides, before anything is
loaded, whether a combination can run on this machine at all (the test is then skipped with that
reason); ``load`` raises ``LoadError`` with a one-line message for bad input (unknown model).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..settings.config import ModelSpec
from ..settings.options import ASSISTED, BUILTIN, NO_DRAFT, PROMPT_LOOKUP
from . import builtin, quantization, shapes
from .identity import model_revision

WARMUP_PROMPT = "Hello"


class LoadError(Exception):
    """A one-line reason the model cannot be loaded."""


class UnsupportedCombination(LoadError):
    """The model loads, but not in this combination (e.g. an attention it does not implement): a skip."""


def synchronize(device: str) -> None:
    """Wait for the work queued on ``device`` (CUDA); other devices run it before returning."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any
    tokenizer: Any
    device: str  # resolved: cpu, cuda:0, ...
    dtype: str  # resolved, e.g. float32
    load_time_s: float
    compile_time_s: float | None = None
    eos_token_ids: frozenset = field(default_factory=frozenset)
    revision: str = ""  # identity.model_revision: a hub commit, or a digest of a local directory
    weight_bytes: int | None = None  # what the weights hold, quantized or not (quantization.weight_bytes)
    quantization_config: dict | None = None  # as transformers applied it (quantization.applied_config)
    model_bytes: int | None = None  # resident once this configuration is ready (``ready``): what the
    # peak memory of its cases is "above the model" of
    is_ready: bool = False
    draft: "LoadedModel | None" = None  # speculative decoding ``assisted``: the draft model, on the same device

    def ready(self, resident_bytes: Callable[[str], int | None]) -> None:
        """Once per load, before its first case: one short untimed generation, then what is resident
        (``model_bytes``). The session calls it once the workload is loaded and tokenized, so that
        every configuration's baseline holds the process's one-time allocations (the dataset
        library, the runtime's first generation): measured right after loading, the first
        configuration's "above the model" held them and the next ones' did not (106 MB against 4 MB
        for eager and sdpa on the built-in model)."""
        if not self.is_ready:
            _short_generation(self)
            self.model_bytes = resident_bytes(self.device)
            self.is_ready = True

    @property
    def random_weights(self) -> bool:
        """A ``shape:`` model (shapes.py): its outputs carry no meaning, only its speed does."""
        return shapes.is_shape(self.spec.model)

    def sync(self) -> None:
        """Wait for queued device work, so a clock read measures finished work."""
        synchronize(self.device)

    def compile_config(self):
        """transformers' ``CompileConfig`` for the requested mode, or None for ``none``."""
        if self.spec.compile_mode == "none":
            return None
        from transformers import CompileConfig

        config = CompileConfig(mode=self.spec.compile_mode)
        if not self.device.startswith("cuda"):
            config._compile_all_devices = True  # transformers only auto-compiles on accelerators otherwise
        return config

    def generation_config(self, max_new_tokens: int, ignore_eos: bool = False, speculate: bool = True):
        """Greedy decoding from the model's own generation config, with EOS and padding set. With
        ``ignore_eos``, no token ends a generation: every one runs ``max_new_tokens`` (an empty EOS
        list, which ``generate``, pipelines and continuous batching all honour; None would fall back
        to the model's own EOS). Speculative decoding ``prompt-lookup`` is a field of it
        (``prompt_lookup_num_tokens``), unless ``speculate`` is False (the non-speculative outputs)."""
        config = copy.deepcopy(self.model.generation_config)
        config.update(
            do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, min_p=None,
            max_new_tokens=max_new_tokens, max_length=None, min_new_tokens=None, min_length=0,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=[] if ignore_eos else sorted(self.eos_token_ids),
        )
        if speculate and self.spec.speculative == PROMPT_LOOKUP:
            config.prompt_lookup_num_tokens = self.spec.prompt_lookup_tokens
        compile_config = self.compile_config()
        if compile_config is None:
            config.disable_compile = True  # no silent auto-compile (e.g. a checkpoint's static/hybrid cache)
        else:
            config.cache_implementation = "static"  # transformers compiles decoding for compileable caches
            config.compile_config = compile_config
        return config

    def generate_kwargs(self, speculate: bool = True) -> dict:
        """What ``generate`` (or a pipeline call) takes besides the generation config: the draft model
        of speculative decoding ``assisted`` (with both tokenizers where the vocabularies differ:
        transformers' universal assisted decoding); nothing otherwise, or without ``speculate``."""
        if not speculate or self.draft is None:
            return {}
        kwargs = {"assistant_model": self.draft.model}
        if vocab_size(self.draft.model) != vocab_size(self.model):
            kwargs.update(tokenizer=self.tokenizer, assistant_tokenizer=self.draft.tokenizer)
        return kwargs

    def speculative_config(self) -> dict | None:
        """How candidates are proposed, as transformers resolves it: the draft's generation config
        (``num_assistant_tokens``, its schedule, the confidence under which the draft stops), or the
        prompt lookup's sizes; None without speculative decoding."""
        if self.spec.speculative == PROMPT_LOOKUP:
            return {"prompt_lookup_num_tokens": self.spec.prompt_lookup_tokens,
                    "max_matching_ngram_size": self.model.generation_config.max_matching_ngram_size or 2}
        if self.draft is None:
            return None
        config = copy.deepcopy(self.draft.model.generation_config)
        defaults = getattr(config, "_get_default_generation_params", None)  # what the candidate generator applies
        if defaults is not None:
            config.update(**defaults(), defaults_only=True)
        return {key: getattr(config, key, None)
                for key in ("num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold")}

    def close(self) -> None:
        import gc

        self.model = self.tokenizer = self.draft = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def vocab_size(model) -> int:
    return model.config.get_text_config().vocab_size


def draft_spec(spec: ModelSpec, dtype: str) -> ModelSpec:
    """What the draft of an ``assisted`` configuration loads as: on the same device, in the main
    model's (resolved) dtype and attention, never compiled (transformers does not compile an
    assistant). ``builtin`` is the built-in model's draft."""
    source = str(builtin.DRAFT_DIR) if spec.draft == BUILTIN else spec.draft
    return ModelSpec(source, spec.device, dtype, spec.attn_implementation, "none")


def with_speculation(loaded: LoadedModel, spec: ModelSpec) -> LoadedModel:
    """``loaded`` (``spec``'s model configuration, with any or no speculative decoding) for ``spec``:
    the same main model object, and for ``assisted`` the draft, kept from ``loaded`` when it is the
    same, else loaded. Ready again (``ready``), since a draft is resident too."""
    draft = None
    if spec.speculative == ASSISTED:
        if spec.draft is None:
            raise LoadError(NO_DRAFT)
        wanted = draft_spec(spec, loaded.dtype)
        draft = loaded.draft if loaded.draft is not None and loaded.draft.spec == wanted else load_draft(wanted)
    return LoadedModel(spec=spec, model=loaded.model, tokenizer=loaded.tokenizer, device=loaded.device,
                       dtype=loaded.dtype, load_time_s=loaded.load_time_s, compile_time_s=loaded.compile_time_s,
                       eos_token_ids=loaded.eos_token_ids, revision=loaded.revision, draft=draft)


def load_draft(spec: ModelSpec) -> LoadedModel:
    """The draft model, loaded as any model is; its errors name the option."""
    reason = unsupported_reason(spec)
    if reason:
        raise UnsupportedCombination(f"the draft model: {reason}")
    try:
        return load(spec)
    except UnsupportedCombination as exc:
        raise UnsupportedCombination(f"the draft model: {exc}") from None
    except LoadError as exc:
        raise LoadError(f"--llmperf-draft-model: {exc}") from None


def resolve_device(requested: str) -> str:
    """``auto`` and ``cuda`` to a device; under pytest-xdist, worker k takes ``cuda:k % device_count``
    so that workers do not share a GPU. An explicit ``cuda:N`` is kept."""
    import torch

    if requested == "auto" and not torch.cuda.is_available():
        return "cpu"
    if requested in ("auto", "cuda"):
        return f"cuda:{worker_gpu(os.environ.get('PYTEST_XDIST_WORKER'), torch.cuda.device_count())}"
    return requested


def worker_gpu(worker: str | None, device_count: int) -> int:
    """The GPU index of xdist worker ``gwK`` (K modulo the device count); 0 outside xdist."""
    if not worker or device_count < 1:
        return 0
    digits = worker.removeprefix("gw")
    return int(digits) % device_count if digits.isdigit() else 0


def unsupported_reason(spec: ModelSpec) -> str | None:
    """Why this combination cannot run on this machine, or None. Checked before loading."""
    import torch

    if spec.device.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {spec.device} requested but CUDA is not available on this machine"
        index = int(spec.device.split(":")[1]) if ":" in spec.device else 0
        if index >= torch.cuda.device_count():
            return f"device {spec.device} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
    on_cuda = resolve_device(spec.device).startswith("cuda")
    if spec.attn_implementation == "flash_attention_2":
        if not on_cuda:
            return "flash_attention_2 needs a CUDA device"
        if importlib.util.find_spec("flash_attn") is None:
            return "flash_attention_2 needs the flash-attn package, which is not installed"
        if spec.dtype not in ("bfloat16", "float16"):
            return f"flash_attention_2 runs only in bfloat16/float16; set --llmperf-dtype (got {spec.dtype})"
    if spec.attn_implementation == "flex_attention" and not on_cuda:
        return "flex_attention on CPU fails inside torch inductor's C++ compile; run it on CUDA"
    if spec.dtype == "bfloat16" and on_cuda and not torch.cuda.is_bf16_supported():
        return "bfloat16 is not supported by this GPU"
    if spec.speculative == ASSISTED and spec.draft is None:
        return NO_DRAFT
    return quantization.unsupported_reason(spec.quantization, on_cuda, spec.dtype)


def model_source(model: str) -> str:
    return str(builtin.MODEL_DIR) if model == BUILTIN else model


def _looks_like_a_path(source: str) -> bool:
    """Not a hub id (``name`` or ``org/name``): absolute, ``./``, ``~``, or deeper than ``org/name``."""
    return source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1


def load(spec: ModelSpec) -> LoadedModel:
    """Load tokenizer and model (or build a ``shape:`` model on the device), quantized at load when the
    spec says so (``quantization.py``), move to the device, and trigger compilation outside measured time;
    with speculative decoding, its draft too."""
    if spec.speculating:
        return with_speculation(load(spec.plain), spec)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shape = shapes.is_shape(spec.model)
    source = model_source(spec.model)
    if not shape and _looks_like_a_path(source) and not Path(source).expanduser().is_dir():
        raise LoadError(f"cannot load model {spec.model!r}: no such model directory")
    source = str(Path(source).expanduser()) if source.startswith("~") else source
    if not shape and Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        raise LoadError(f"cannot load model {spec.model!r}: no config.json in {source}")
    device = resolve_device(spec.device)
    if device.startswith("cuda"):
        torch.zeros(1, device=device)  # the CUDA context (seconds, once per process) is not this model's load time
        torch.cuda.synchronize(device)
    quantized = quantization.is_quantized(spec.quantization)
    start = time.perf_counter()
    try:
        if shape:  # built on the device, random weights: nothing is loaded
            model, tokenizer = shapes.build(spec, device)
            loading_info = {}
        else:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model, loading_info = AutoModelForCausalLM.from_pretrained(
                source,
                dtype="auto" if spec.dtype == "auto" else getattr(torch, spec.dtype),
                attn_implementation=spec.attn_implementation,
                output_loading_info=True,
                # quantized on the device it runs on, as a user loads it (device_map); unquantized: as before
                **({"quantization_config": quantization.quantization_config(spec.quantization, spec.dtype),
                    "device_map": {"": torch.device(device)}} if quantized else {}),
            )
    except shapes.ShapeError as exc:
        raise LoadError(f"cannot load model {spec.model!r}: {exc}") from None
    except Exception as exc:  # OSError for unknown ids/offline, ValueError for unsupported attention...
        message = shapes.one_line(exc)
        if isinstance(exc, ValueError) and "does not support" in message and "ttention" in message:
            first_sentence = message.split(". ")[0].rstrip(".")
            raise UnsupportedCombination(
                f"model {spec.model!r} with attn_implementation={spec.attn_implementation}: {first_sentence}"
            ) from None
        if type(exc).__name__ == "SafetensorError":  # its words name neither the file nor the fault
            detail = message.removeprefix("Error while deserializing header: ")
            message = f"{unreadable_weights(source)} is truncated or corrupt (safetensors: {detail})"
        elif shape:
            message = shapes.explain(exc, spec.model)
        if quantized:
            message = f"quantization {spec.quantization}: {message}"
        raise LoadError(f"cannot load model {spec.model!r}: {message}") from None
    if shape and quantized:  # the built model's weights, through the quantizer a checkpoint's go through
        try:
            model = quantization.quantize_built(model, spec.quantization, spec.dtype, device, spec.attn_implementation)
        except Exception as exc:
            raise LoadError(f"cannot load model {spec.model!r}: quantization {spec.quantization}: "
                            f"{shapes.one_line(exc)}") from None
    problem = not_a_causal_lm(model, loading_info)
    if problem:
        del model, loading_info  # not kept alive by the error's traceback for the rest of the session
        import gc

        gc.collect()
        raise LoadError(f"cannot load model {spec.model!r}: {problem}")
    model.to(device).eval()
    _prepare_tokenizer(tokenizer)
    loaded = LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=str(model.dtype).removeprefix("torch."),
        load_time_s=0.0,
        eos_token_ids=_eos_ids(model, tokenizer),
        revision=shapes.revision(spec.model) if shape else model_revision(source, model),
        weight_bytes=quantization.weight_bytes(model),
        quantization_config=quantization.applied_config(model),
    )
    loaded.sync()
    loaded.load_time_s = time.perf_counter() - start
    if spec.compile_mode != "none":  # torch.compile's first compilation here, not in a timed round
        loaded.compile_time_s = _short_generation(loaded)
    return loaded


def unreadable_weights(source: str) -> str:
    """The first ``.safetensors`` file of a model directory (or of its copy in the hub cache) whose
    header safetensors cannot read, as "weights file PATH"; "a weights file" where none is found."""
    from safetensors import safe_open

    directory = source
    if not Path(source).is_dir():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "config.json")
        directory = os.path.dirname(cached) if isinstance(cached, str) else None
    for name in sorted(path.name for path in Path(directory).glob("*.safetensors")) if directory else ():
        path = os.path.join(directory, name)  # as the user spelled the directory
        try:
            with safe_open(path, "pt"):
                pass
        except Exception:
            return f"weights file {path}"
    return "a weights file"


def not_a_causal_lm(model, loading_info: dict) -> str | None:
    """Why what ``AutoModelForCausalLM`` loaded is not a trained causal LM, or None.

    transformers loads an encoder (BERT and kin) as its ``...LMHeadModel`` without complaint, with
    bidirectional attention (``is_decoder=False``), and initialises any weight the checkpoint lacks
    (an LM head on a bare encoder or a classifier) at random: both generate noise."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    config = model.config
    saved_as = ", ".join(config.architectures or []) or "this"
    # An encoder family (it has a masked-LM head) that decodes only with is_decoder=True. GPT-NeoX's
    # config also carries is_decoder=False, but it is not an encoder: hence the masked-LM test.
    if getattr(config, "is_decoder", None) is False and config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return (f"not a causal LM: {saved_as} checkpoint of encoder-only model type {config.model_type!r} "
                f"(is_decoder=False), which AutoModelForCausalLM loads as {type(model).__name__}")
    missing = sorted(loading_info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return (f"{len(missing)} weight(s) newly initialised on load, missing from the {saved_as} checkpoint "
                f"({shown}): not a trained causal LM")
    return None


def _prepare_tokenizer(tokenizer) -> None:
    """Decoder-only batching needs left padding and a pad token."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise LoadError("tokenizer has no pad, eos or unk token to pad with")


def _eos_ids(model, tokenizer) -> frozenset:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(int(i) for i in ids)


def _short_generation(loaded: LoadedModel) -> float:
    """One short greedy generation; its seconds."""
    import torch

    start = time.perf_counter()
    inputs = loaded.tokenizer([WARMUP_PROMPT], return_tensors="pt").to(loaded.device)
    with torch.no_grad():
        loaded.model.generate(**inputs, generation_config=loaded.generation_config(max_new_tokens=4))
    loaded.sync()
    return time.perf_counter() - start
