"""Quantization at load, ``--llmperf-quantization``: every method is one of transformers' own
``quantization_config`` classes (``TorchAoConfig``, ``BitsAndBytesConfig``, ``QuantoConfig``), applied the
way a user applies it to a hub model, ``from_pretrained(..., quantization_config=...)``. The built-in model
and a model directory go through exactly that; a ``shape:`` model, built with random weights rather than
loaded, goes through it too: its state dict is handed to ``from_pretrained`` with the config
(``quantize_built``), so the same quantizer converts the same weights, and nothing is written to disk.

Each backend is optional (``pip install "pytest-llmperf[quant]"``) and imported only when one of its methods
is asked for. ``unsupported_reason`` says, before anything loads, why a method cannot run here (its package
is missing, the device or the dtype does not suit its kernels): the test is then skipped with that reason.

``weight_bytes`` is what a model's weights hold in memory, quantized or not: a quantized weight is a tensor
subclass whose shape and dtype are the original's, so ``numel() * element_size()`` would count it unquantized.

Loading this module imports nothing heavy.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

from ..settings.options import NO_QUANTIZATION, QUANTIZATIONS

INSTALL = "pip install 'pytest-llmperf[quant]'"


@dataclass(frozen=True)
class Package:
    pip: str  # the name pip installs
    module: str  # the name it imports as
    minimum: str = ""  # transformers' own minimum version constant for it (transformers.utils.import_utils)


TORCHAO = Package("torchao", "torchao", "TORCHAO_MIN_VERSION")
BITSANDBYTES = Package("bitsandbytes", "bitsandbytes", "BITSANDBYTES_MIN_VERSION")
QUANTO = Package("optimum-quanto", "optimum.quanto")
ACCELERATE = Package("accelerate", "accelerate", "ACCELERATE_MIN_VERSION")  # transformers' bnb and quanto paths


@dataclass(frozen=True)
class Method:
    name: str
    packages: tuple[Package, ...]
    config: Callable  # torch dtype (None for auto) -> transformers' quantization config
    cuda_only: str = ""  # why it cannot run on a CPU, if it cannot: "runs only on CUDA (...)"
    dtypes: tuple[str, ...] = ()  # the dtypes its kernels take; () for any


def _torchao(name: str, **kwargs) -> Callable:
    def config(dtype):
        import torchao.quantization
        from transformers import TorchAoConfig

        return TorchAoConfig(getattr(torchao.quantization, name)(**kwargs))

    return config


def _bitsandbytes(bits: int) -> Callable:
    def config(dtype):
        from transformers import BitsAndBytesConfig

        if bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        # NF4, the 4-bit type QLoRA introduced and the one most hub checkpoints use; computing in the model's dtype
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)

    return config


def _quanto(weights: str) -> Callable:
    def config(dtype):
        from transformers import QuantoConfig

        return QuantoConfig(weights=weights)

    return config


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("int8-weight", (TORCHAO,), _torchao("Int8WeightOnlyConfig")),
    Method("int8-dynamic", (TORCHAO,), _torchao("Int8DynamicActivationInt8WeightConfig")),
    # tinygemm's int4 layout: the int4 weight-only kernel torch ships for CUDA (the other layouts need the mslk
    # package, CUDA too); no layout of this torchao runs on a CPU
    Method("int4-weight", (TORCHAO,), _torchao("Int4WeightOnlyConfig", group_size=128,
                                                int4_packing_format="tile_packed_to_4d"),
           cuda_only="runs only on CUDA (tinygemm's int4 kernel; this torchao has no CPU int4 layout)",
           dtypes=("bfloat16",)),
    Method("bnb-8bit", (BITSANDBYTES, ACCELERATE), _bitsandbytes(8)),
    Method("bnb-4bit", (BITSANDBYTES, ACCELERATE), _bitsandbytes(4)),
    Method("quanto-int8", (QUANTO, ACCELERATE), _quanto("int8")),
    Method("quanto-int4", (QUANTO, ACCELERATE), _quanto("int4")),
)}
if tuple(METHODS) != QUANTIZATIONS[1:]:  # the option's choices, after none
    raise RuntimeError(f"quantization methods {tuple(METHODS)} differ from the option's {QUANTIZATIONS[1:]}")


def is_quantized(method: str) -> bool:
    return method != NO_QUANTIZATION


def unsupported_reason(method: str, on_cuda: bool, dtype: str) -> str | None:
    """Why ``method`` cannot run here, in one line, or None (also for ``none``)."""
    if not is_quantized(method):
        return None
    spec = METHODS[method]
    for package in spec.packages:
        problem = _package_problem(package)
        if problem:
            return f"quantization {method} needs {problem}"
    if spec.dtypes and dtype not in spec.dtypes:
        return (f"quantization {method} runs only in {'/'.join(spec.dtypes)}; set --llmperf-dtype "
                f"{spec.dtypes[0]} (got {dtype})")
    if spec.cuda_only and not on_cuda:
        return f"quantization {method} {spec.cuda_only}"
    return None


def _package_problem(package: Package) -> str:
    """'' when the package is there and new enough for this transformers; else what is wrong."""
    try:
        found = importlib.util.find_spec(package.module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent is missing
        found = False
    if not found:
        return f"the {package.pip} package, which is not installed ({INSTALL})"
    if package.minimum:
        from importlib.metadata import version

        from packaging.version import Version
        from transformers.utils import import_utils

        minimum = getattr(import_utils, package.minimum, None)
        if minimum and Version(version(package.pip)) < Version(minimum):
            return f"{package.pip} >= {minimum} for this transformers (installed: {version(package.pip)})"
    return ""


def quantization_config(method: str, dtype: str):
    """transformers' quantization config for ``method`` in ``dtype`` (``auto``: the checkpoint's), or None."""
    if not is_quantized(method):
        return None
    import torch

    return METHODS[method].config(None if dtype == "auto" else getattr(torch, dtype))


def quantize_built(model, method: str, dtype: str, device: str, attn_implementation: str):
    """A model built in memory (a ``shape:`` model), quantized as ``from_pretrained`` quantizes a
    checkpoint: its state dict goes through the same quantizer, on ``device``. The unquantized model
    is dropped; its generation config is kept."""
    import torch

    quantized = type(model).from_pretrained(
        None, config=model.config, state_dict=model.state_dict(), quantization_config=quantization_config(method, dtype),
        dtype=model.dtype, device_map={"": torch.device(device)}, attn_implementation=attn_implementation)
    quantized.generation_config = model.generation_config
    return quantized


def applied_config(model) -> dict | None:
    """The quantization config as transformers applied it (JSON types), or None for an unquantized model."""
    config = getattr(model.config, "quantization_config", None)
    if config is None:
        return None
    import json

    return json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else config, default=str))


# -- what the weights hold ------------------------------------------------------------------------------

def tensor_bytes(tensor) -> int:
    """Bytes ``tensor`` holds. A quantized tensor subclass (torchao, optimum-quanto) is counted by the
    tensors it is made of (``__tensor_flatten__``, recursively: packed int4 data, scales, zero points);
    a bitsandbytes weight with its quantization state (4-bit: block scales; 8-bit: row scales)."""
    import torch

    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    total = tensor.numel() * tensor.element_size()
    state = getattr(tensor, "quant_state", None)  # bitsandbytes 4-bit
    if state is not None:
        total += sum(tensor_bytes(value) for value in state.as_dict(packed=True).values()
                     if isinstance(value, torch.Tensor))
    scales = getattr(tensor, "SCB", None)  # bitsandbytes 8-bit
    if isinstance(scales, torch.Tensor):
        total += tensor_bytes(scales)
    return total


def weight_bytes(model) -> int:
    """Bytes of the model's parameters as they are held (a tied weight once)."""
    return sum(tensor_bytes(parameter) for parameter in model.parameters())
