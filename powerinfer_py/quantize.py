"""Quantizing models and rows of values (the INT4 path).

    from powerinfer_py import quantize
    quantize("model.f16.gguf", "model.q4_0.gguf", "Q4_0")

``quantize`` writes a new GGUF file: every 2-D weight matrix converted to the target type (the
output head at Q6_K or better, matrices whose rows do not fit the type's block at the nearest type
that fits), 1-D tensors copied, every metadata key kept with ``general.file_type`` updated, and
PowerInfer's ``PWRI`` magic kept. Source tensors may be in any type the library reads, so a Q4_1 file
can be re-quantized to Q4_0. The file is written to ``dst + ".tmp"`` and renamed when complete.

``quantize_row`` / ``dequantize_row`` convert one row with the library's kernels (tests, tools).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ._lib import check, ffi, lib

# GGUF tensor type ids, by name.
TYPE_IDS = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q8_1": 9,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15, "BF16": 30,
}
# The types a whole model can be quantized to.
MODEL_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
               "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

TypeLike = Union[str, int]


def type_id(t: TypeLike, allowed=tuple(TYPE_IDS)) -> int:
    """The GGUF id of a type given by name ("q4_k", case-insensitive) or id; ValueError otherwise."""
    if isinstance(t, str):
        name = t.strip().upper()
        if name in allowed:
            return TYPE_IDS[name]
    elif isinstance(t, (int, np.integer)) and not isinstance(t, bool):
        for name in allowed:
            if TYPE_IDS[name] == int(t):
                return int(t)
    raise ValueError(f"unknown or unsupported type {t!r}; valid types: {', '.join(allowed)}")


def quantize(src: Union[str, os.PathLike], dst: Union[str, os.PathLike], type: TypeLike = "Q4_0",
             n_threads: int = 0, quantize_output: bool = True,
             progress: Optional[Callable[[float], Optional[bool]]] = None) -> Path:
    """Writes a copy of the GGUF file ``src`` to ``dst`` with its weights quantized to ``type``.

    ``type``: one of F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
    (case-insensitive) or its GGUF id. ``n_threads`` 0 uses every core. ``quantize_output=False``
    leaves the output head (``output.weight``, or the tied ``token_embd.weight``) as in the source.
    ``progress(fraction)`` is called as tensors are converted; returning False stops the work
    (AbortedError, nothing written). Returns ``Path(dst)``. Raises ValueError subclasses for bad arguments (``dst`` being ``src``,
    an unknown type) and unreadable files; nothing is left at ``dst`` on failure.
    """
    tid = type_id(type, MODEL_TYPES)
    if n_threads < 0:
        raise ValueError(f"n_threads must be >= 0, got {n_threads}")
    params = ffi.new("pi_quantize_params *", lib.pi_quantize_default_params())
    params.type = tid
    params.n_threads = int(n_threads)
    params.quantize_output = bool(quantize_output)
    on_progress = ffi.NULL
    if progress is not None:
        @ffi.callback("bool(float, void *)", onerror=lambda *exc: False)
        def on_progress(fraction, _user):
            return progress(float(fraction)) is not False

        params.progress_callback = on_progress
    check(lib.pi_model_quantize(os.fsencode(src), os.fsencode(dst), params))
    return Path(dst)


def _block(tid: int) -> tuple:
    return int(lib.pi_type_block_size(tid)), int(lib.pi_type_block_bytes(tid))


def quantize_row(type: TypeLike, values) -> np.ndarray:
    """The bytes (uint8 array) of ``values`` (float32, length a multiple of the block) in ``type``."""
    tid = type_id(type)
    x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    bs, bb = _block(tid)
    out = np.empty(x.size // bs * bb if x.size % bs == 0 else 0, dtype=np.uint8)
    check(lib.pi_quantize_row(tid, ffi.from_buffer("float[]", x), ffi.from_buffer(out), x.size))
    return out


def dequantize_row(type: TypeLike, data, n: int) -> np.ndarray:
    """The ``n`` float32 values held by ``data`` (bytes or a uint8 array) in ``type``."""
    tid = type_id(type)
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) \
        else np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    bs, bb = _block(tid)
    if n < 0 or n % bs != 0:
        raise ValueError(f"n = {n} is not a multiple of the {type} block size {bs}")
    if raw.size != n // bs * bb:
        raise ValueError(f"{raw.size} bytes do not hold {n} values of {type} ({n // bs * bb} bytes expected)")
    out = np.empty(n, dtype=np.float32)
    check(lib.pi_dequantize_row(tid, ffi.from_buffer(raw), ffi.from_buffer("float[]", out), n))
    return out


__all__ = ["quantize", "quantize_row", "dequantize_row", "type_id", "MODEL_TYPES", "TYPE_IDS"]
