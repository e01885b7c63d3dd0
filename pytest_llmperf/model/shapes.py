"""Architecture-shaped models, ``--llmperf-model shape:NAME``: the exact architecture and sizes of a
popular checkpoint with random weights from a fixed seed. Nothing is downloaded.

``NAME`` is one of the published ``config.json`` files shipped in ``builtin/shapes`` (sources in its
README), or ``shape:path/to/config.json`` for any config a user has. The model is built directly on
the target device in the requested dtype: constructed with torch's per-layer default init skipped,
then initialised once by transformers' own ``init_weights`` under a fixed seed. The weights are
identical on every machine of the same device type (CPU and CUDA draw different numbers from the
same seed). The cost is that one random draw per parameter: seconds for 1B parameters on a GPU,
tens of seconds on a CPU (docs/shapes.md).

The tokenizer is the built-in model's BPE tokenizer and chat template, with filler tokens
(`` fillerbaa``...) appended up to the architecture's vocab size, so the embedding and the LM head
have their real size and text workloads still tokenize, exactly as with the built-in model. A filler
is a whole word (the BPE model's ``ignore_merges``), so its text tokenizes back to it. Built once per
vocab size (a few seconds) and kept in ``$XDG_CACHE_HOME/pytest-llmperf`` (``~/.cache``).

Loading this module imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from . import builtin
from .identity import digest

PREFIX = "shape:"
SEED = 0
FILLER = "\u0120filler"  # "Ġ" is a space to the byte-level BPE: a filler decodes to " filler<letters>"
TOKENIZER_VERSION = 1  # of the filler scheme; part of the cache key


class ShapeError(Exception):
    """A one-line reason a shape cannot be built."""


def is_shape(model: str) -> bool:
    return str(model).startswith(PREFIX)


def names() -> list[str]:
    """The shipped shapes, e.g. ``smollm2-135m``."""
    return sorted(path.stem for path in builtin.SHAPES_DIR.glob("*.json"))


def config_file(model: str) -> Path:
    """The ``config.json`` behind ``shape:NAME`` or ``shape:PATH`` (a file, or a directory holding one)."""
    name = model[len(PREFIX):]
    if name in names():
        return builtin.SHAPES_DIR / f"{name}.json"
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return path
    raise ShapeError(f"no shape {name!r}: not a shipped one ({', '.join(names())}) and no such config file")


def read_config(model: str) -> dict:
    path = config_file(model)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ShapeError(f"{path} is not a readable JSON config: {one_line(exc)}") from None
    if not isinstance(raw, dict):
        raise ShapeError(f"{path} is not a JSON object")
    if "model_type" not in raw:
        raise ShapeError("config key 'model_type' is missing: transformers cannot tell which architecture to build")
    return raw


def revision(model: str) -> str:
    """The model's identity: its config (as parsed, so formatting does not count) and the seed."""
    return f"shape:seed={SEED}:config={digest(read_config(model))}"


def build(spec, device: str):
    """``(model, tokenizer)`` for a ``shape:`` spec, built on ``device`` in ``spec.dtype``.

    Raises ``ShapeError`` for a config transformers does not know; anything transformers raises
    while building passes through (``explain`` turns it into one line naming the key)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    raw = read_config(spec.model)
    if raw["model_type"] not in CONFIG_MAPPING:
        raise ShapeError(f"config key 'model_type': {raw['model_type']!r} is not an architecture this transformers "
                         "knows")
    if raw["model_type"] not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ShapeError(f"config key 'model_type': {raw['model_type']!r} has no causal LM in transformers "
                         "(AutoModelForCausalLM)")
    config = AutoConfig.for_model(**raw)
    tokenizer = tokenizer_for(config.get_text_config().vocab_size)
    dtype = spec.dtype if spec.dtype != "auto" else raw.get("dtype") or raw.get("torch_dtype") or "float32"
    cuda_devices = list(range(torch.cuda.device_count())) if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda_devices), torch.device(device):  # the caller's RNG state is kept
        with _torch_init_skipped():
            model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype),
                                                     attn_implementation=spec.attn_implementation)
        torch.manual_seed(SEED)  # the device's own generator: CPU and CUDA draw different numbers
        model.init_weights()  # transformers' own init, once, on the device (and ties the embeddings)
    # The built-in tokenizer's special tokens, not the checkpoint's ids (which name fillers here).
    model.generation_config.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
    return model, tokenizer


def _torch_init_skipped():
    """torch's per-layer default init (``nn.Linear``'s kaiming) skipped while the modules are made:
    ``init_weights`` draws every weight again anyway, so doing both doubled the build time."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - an older transformers 5: both inits, slower but the same model
        import contextlib

        return contextlib.nullcontext()
    return no_init_weights()


def explain(exc: Exception, model: str) -> str:
    """What transformers raised while building a shape, in one line naming the config key(s) involved."""
    message = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    if isinstance(exc, KeyError) and exc.args:
        message = f"unknown value {exc.args[0]!r}"
    elif not message or isinstance(exc, (ZeroDivisionError, TypeError, AttributeError)):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    message = message if len(message) <= 240 else message[:237] + "..."
    try:
        raw = read_config(model)
    except ShapeError:
        return message
    keys = _keys_involved(exc, raw, message)
    if keys and not any(re.search(rf"\b{re.escape(key)}\b", message) for key in keys):
        return f"config key {', '.join(map(repr, keys))}: {message}"
    return message


def _keys_involved(exc: Exception, raw: dict, message: str) -> list[str]:
    """The config keys the error names, else those whose value it quotes, else those the failing
    source line reads (``config.hidden_act``, ``self.num_attention_heads``)."""
    named = [key for key in raw if re.search(rf"\b{re.escape(key)}\b", message)]
    if named:
        return named
    quoted = [key for key, value in raw.items()
              if any(isinstance(v, str) and repr(v) in message for v in _leaves(value))]
    if quoted:
        return quoted
    import linecache
    import traceback

    while exc is not None:  # innermost frame first, through the exceptions it was raised from
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            statement = "".join(linecache.getline(frame.filename, line)  # the whole statement, all its lines
                                for line in range(frame.lineno, (frame.end_lineno or frame.lineno) + 1))
            read = [key for key in raw if re.search(rf"\.{re.escape(key)}\b", statement)]
            if read:
                return read
        exc = exc.__cause__ or exc.__context__
    return []


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- the tokenizer ---------------------------------------------------------------------------------------

def tokenizer_for(vocab_size: int):
    """The built-in tokenizer extended with fillers to exactly ``vocab_size`` tokens (cached on disk)."""
    from transformers import AutoTokenizer

    directory = _cache_root() / f"shape-tokenizer-v{TOKENIZER_VERSION}-{_builtin_digest()}-{vocab_size}"
    if not (directory / "tokenizer.json").is_file():
        try:
            _write_tokenizer(vocab_size, directory)
        except OSError:  # an unwritable cache: build it in a temporary folder, every time
            with tempfile.TemporaryDirectory() as scratch:
                _write_tokenizer(vocab_size, Path(scratch) / "tokenizer")
                return AutoTokenizer.from_pretrained(Path(scratch) / "tokenizer")
    return AutoTokenizer.from_pretrained(directory)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-llmperf"


def _builtin_digest() -> str:
    """The built-in tokenizer's files: a change to them is a new cache entry."""
    return digest({name: (builtin.MODEL_DIR / name).read_text() for name in
                   ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")})


def _write_tokenizer(vocab_size: int, directory: Path) -> None:
    """The extended tokenizer's files, written to a scratch folder and renamed into place (two
    processes building the same one at once: the second's rename fails and its copy is dropped)."""
    from tokenizers import Tokenizer, models

    base = Tokenizer.from_file(str(builtin.MODEL_DIR / "tokenizer.json"))
    state = json.loads(base.to_str())["model"]
    vocab = dict(state["vocab"])
    if vocab_size < len(vocab):
        raise ShapeError(f"config key 'vocab_size': {vocab_size} is smaller than the built-in tokenizer's "
                         f"{len(vocab)} tokens")
    vocab.update((FILLER + _letters(index), index) for index in range(len(vocab), vocab_size))
    if len(vocab) != vocab_size or sorted(vocab.values()) != list(range(vocab_size)):
        raise ShapeError(f"filler tokens collide with the built-in vocabulary at vocab_size {vocab_size}")
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in state["merges"]]
    options = {key: value for key, value in state.items()
               if key not in ("type", "vocab", "merges", "ignore_merges") and value is not None}
    base.model = models.BPE(vocab, merges, ignore_merges=True, **options)  # a whole-word filler is one token
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
    try:
        base.save(str(scratch / "tokenizer.json"))
        settings = json.loads((builtin.MODEL_DIR / "tokenizer_config.json").read_text())
        settings.pop("model_max_length", None)  # the built-in model's 256 is not the architecture's context
        (scratch / "tokenizer_config.json").write_text(json.dumps(settings, indent=2))
        shutil.copy(builtin.MODEL_DIR / "chat_template.jinja", scratch / "chat_template.jinja")
        try:
            os.replace(scratch, directory)
        except OSError:
            if not (directory / "tokenizer.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _letters(index: int) -> str:
    """``index`` in base 26 with the letters a-z (a filler must be letters only: one pre-token)."""
    text = ""
    while True:
        index, digit = divmod(index, 26)
        text = chr(ord("a") + digit) + text
        if index == 0:
            return text
