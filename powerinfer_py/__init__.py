"""powerinfer-py: fast local LLM inference with activation sparsity (hot neurons, cold neurons).

    from powerinfer_py import Llama
    llm = Llama(model_path="model.gguf")
    print(llm("The capital of France is", max_tokens=16)["choices"][0]["text"])
"""
from __future__ import annotations

import json

__version__ = "0.1.0"

from ._lib import LIB_PATH, ffi, lib  # noqa: E402
from . import _logger  # noqa: E402,F401  (installs the log callback)
from .errors import (  # noqa: E402
    AbortedError,
    ContextFullError,
    FileFormatError,
    InternalError,
    InvalidArgumentError,
    ModelFileError,
    NotCompiledError,
    OutOfMemoryError,
    PowerInferError,
    UnsupportedError,
)
from .llama import Llama, LlamaState  # noqa: E402
from .llama_grammar import LlamaGrammar  # noqa: E402
from .sampling import LogitsProcessorList, StoppingCriteriaList  # noqa: E402
from .quantize import quantize  # noqa: E402


def system_info() -> dict:
    """What the loaded library was built with and what this CPU supports.

    Keys: version, abi_version, backends (built), simd_built, simd_in_use, cpu (feature flags),
    cuda (devices, when the CUDA backend was built), offload_devices (the names Llama's
    offload_device accepts on this machine: "cpu-standin", and "cuda:N" per GPU found), library
    (its path).
    """
    info = json.loads(ffi.string(lib.pi_system_info()).decode())
    gpus = (info.get("cuda") or {}).get("devices") or []
    info["offload_devices"] = ["cpu-standin"] + [f"cuda:{i}" for i in range(len(gpus))]
    info["library"] = str(LIB_PATH)
    return info


__all__ = [
    "__version__",
    "system_info",
    "Llama",
    "LlamaState",
    "LlamaGrammar",
    "LogitsProcessorList",
    "StoppingCriteriaList",
    "quantize",
    "PowerInferError",
    "InvalidArgumentError",
    "ModelFileError",
    "FileFormatError",
    "UnsupportedError",
    "ContextFullError",
    "OutOfMemoryError",
    "NotCompiledError",
    "AbortedError",
    "InternalError",
]
