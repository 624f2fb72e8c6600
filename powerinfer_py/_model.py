"""Tier 1: ``Model``, one loaded model file (a ``pi_model`` handle) and what the file says.

    with Model("SmolLM2-135M-Instruct.Q4_1.gguf", vocab_only=True) as m:
        m.metadata["general.architecture"]   # 'llama'
        m.tensors[0]                          # TensorInfo(name='token_embd.weight', shape=(576, 49152), ...)

A vocab-only model reads the header, metadata and vocabulary and never touches the weights.
Bad files raise a ``ValueError`` subclass from :mod:`powerinfer_py.errors` whose message names
the file and the cause; nothing a file holds can crash the process.

Higher tiers (``Llama``, contexts) use :attr:`Model.ptr`, the cffi ``pi_model *``. The model
must outlive every context made from it; ``close()`` frees it (idempotent, also on garbage
collection).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._closeable import Closeable
from ._lib import check, cstr, ffi, lib
from .errors import InvalidArgumentError, ModelFileError

_SPARSE_MODES = {
    "auto": lib.PI_SPARSE_AUTO,
    "dense": lib.PI_SPARSE_DENSE,
    "predictor": lib.PI_SPARSE_PREDICTOR,
    "oracle": lib.PI_SPARSE_ORACLE,
}


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the file's tensor table.

    ``shape`` is in GGUF order (``ne``): shape[0] is the contiguous dimension, so a weight
    applied as ``y = W x`` with x of length n_in has shape ``(n_in, n_out)``. ``offset`` is
    relative to the data section, as stored in the file (add ``Model.data_offset`` for the file
    position); ``n_bytes`` is the size of the tensor's data.
    """

    name: str
    shape: Tuple[int, ...]
    type: int
    type_name: str
    offset: int
    n_bytes: int


def _check_path(path: str) -> None:
    """Clear messages for the common mistakes; the C library checks the same things again."""
    if not path:
        raise InvalidArgumentError("model path is empty")
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a directory, not a model file")


class Model(Closeable):
    """A loaded GGUF (or PowerInfer PWRI) model file.

    Args:
        path: the .gguf file.
        vocab_only: read metadata and vocabulary only; the weights are never read or mapped.
        use_mmap: map the file (weights paged in on use); False reads the weights into memory, in
            2 MB pages where the OS allows (decodes 5-10% faster; see README "Speed").
        n_threads: threads used while loading (0 = all cores).
        n_gpu_layers: dense layers placed on the GPU (-1 = all) in GPU builds.
        sparse_mode: "auto", "dense", "predictor" or "oracle" (see the C header, pi_sparse_mode).
        sparse_threshold: predictor threshold; None keeps the file's value (or the env override).
        progress: called with a float in [0, 1] while loading; returning False (not None) aborts the load
            (raises :class:`~powerinfer_py.errors.AbortedError`).
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        *,
        vocab_only: bool = False,
        use_mmap: bool = True,
        n_threads: int = 0,
        n_gpu_layers: int = 0,
        sparse_mode: str = "auto",
        sparse_threshold: Optional[float] = None,
        progress: Optional[Callable[[float], bool]] = None,
    ) -> None:
        self._ptr = ffi.NULL
        self.path = os.fspath(path)
        _check_path(self.path)
        if sparse_mode not in _SPARSE_MODES:
            raise InvalidArgumentError(
                f"sparse_mode={sparse_mode!r}: expected one of {', '.join(sorted(_SPARSE_MODES))}"
            )

        params = lib.pi_model_default_params()
        params.vocab_only = bool(vocab_only)
        params.use_mmap = bool(use_mmap)
        params.n_threads = int(n_threads)
        params.n_gpu_layers = int(n_gpu_layers)
        params.sparse_mode = _SPARSE_MODES[sparse_mode]
        params.sparse_threshold = math.nan if sparse_threshold is None else float(sparse_threshold)

        callback = ffi.NULL
        if progress is not None:
            # Exceptions in the user's callback abort the load rather than vanish in cffi.
            def _on_progress(value, _user):
                try:
                    result = progress(value)
                    return result is None or bool(result)
                except Exception:
                    return False

            callback = ffi.callback("bool(float, void *)", _on_progress)
        params.progress_callback = callback

        out = ffi.new("pi_model **")
        status = lib.pi_model_load(self.path.encode("utf-8"), ffi.new("pi_model_params *", params), out)
        check(status)
        self._ptr = out[0]
        self.vocab_only = bool(vocab_only)
        self._metadata: Optional[Dict[str, str]] = None
        self._tensors: Optional[List[TensorInfo]] = None

    # -- lifetime --------------------------------------------------------------------------------

    @property
    def ptr(self):
        """The cffi ``pi_model *`` handle for the other tiers (raises once closed)."""
        if self._ptr == ffi.NULL:
            raise InvalidArgumentError(f"{self.path}: model is closed")
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr == ffi.NULL

    def close(self) -> None:
        """Frees the model. Safe to call twice."""
        ptr, self._ptr = getattr(self, "_ptr", ffi.NULL), ffi.NULL
        if ptr != ffi.NULL:
            lib.pi_model_free(ptr)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.tensors)} tensors"
        return f"<Model {self.path!r} {state}>"

    # -- file facts ------------------------------------------------------------------------------

    @property
    def gguf_version(self) -> int:
        return int(lib.pi_model_gguf_version(self.ptr))

    @property
    def is_sparse_file(self) -> bool:
        """True when the magic is PowerInfer's ``PWRI``."""
        return bool(lib.pi_model_is_sparse_file(self.ptr))

    @property
    def alignment(self) -> int:
        return int(lib.pi_model_alignment(self.ptr))

    @property
    def data_offset(self) -> int:
        """File position of the data section (tensor offsets are relative to it)."""
        return int(lib.pi_model_data_offset(self.ptr))

    @property
    def metadata(self) -> Dict[str, str]:
        """Every metadata key in file order, each value rendered as a string as llama-cpp-python
        shows it: integers in decimal, floats as "%f", booleans "true"/"false", strings raw,
        arrays as ``[1, 2]`` / ``["a", "b"]``. Returns a new dict on each access."""
        if self._metadata is None:
            ptr = self.ptr
            meta = {}
            for i in range(lib.pi_model_meta_count(ptr)):
                key = ffi.string(lib.pi_model_meta_key(ptr, i)).decode("utf-8", "replace")
                meta[key] = ffi.string(lib.pi_model_meta_value(ptr, i)).decode("utf-8", "replace")
            self._metadata = meta
        return dict(self._metadata)

    def metadata_type(self, key: str) -> Tuple[int, Optional[int], int]:
        """(GGUF value type, element type or None, array length or 0) of a key; KeyError if absent."""
        ptr = self.ptr
        i = lib.pi_model_meta_find(ptr, key.encode("utf-8"))
        if i < 0:
            raise KeyError(key)
        t = int(lib.pi_model_meta_type(ptr, i))
        at = int(lib.pi_model_meta_array_type(ptr, i))
        return t, (at if at >= 0 else None), int(lib.pi_model_meta_array_length(ptr, i))

    @property
    def tensors(self) -> List[TensorInfo]:
        """The tensor table in file order."""
        if self._tensors is None:
            ptr = self.ptr
            info = ffi.new("pi_tensor_info *")
            out = []
            for i in range(lib.pi_model_tensor_count(ptr)):
                check(lib.pi_model_tensor_info(ptr, i, info))
                n_dims = int(info.n_dims)
                out.append(
                    TensorInfo(
                        name=ffi.string(info.name).decode("utf-8", "replace"),
                        shape=tuple(int(info.ne[d]) for d in range(n_dims)),
                        type=int(info.type),
                        type_name=cstr(lib.pi_type_name(info.type)) or f"type{int(info.type)}",
                        offset=int(info.offset),
                        n_bytes=int(info.n_bytes),
                    )
                )
            self._tensors = out
        return list(self._tensors)

    @property
    def arch(self) -> str:
        """general.architecture ("" when the file does not say)."""
        return cstr(lib.pi_model_arch(self.ptr)) or ""

    # -- GPU split of the sparse FFN ---------------------------------------------------------------

    def offload_ffn(self, device: Optional[str], capacity: int, hot: Sequence[Sequence[int]]) -> None:
        """Puts each layer's hot neurons (hot[layer]: ascending neuron ids) on device within capacity
        bytes (0: no limit); pi_model_offload_ffn. device None or no hot neuron removes the split.
        Raises PowerInferError (OutOfMemoryError when the budget is short) with the cause."""
        n_layer = int(lib.pi_model_n_layer(self.ptr))
        if len(hot) != n_layer:
            raise InvalidArgumentError(f"{self.path}: placement for {len(hot)} layers, the model has {n_layer}")
        counts = np.array([len(h) for h in hot], dtype=np.int64)
        ids = np.ascontiguousarray(np.concatenate([np.asarray(h, dtype=np.int32) for h in hot]) if n_layer
                                   else np.zeros(0, np.int32), dtype=np.int32)
        if ids.size == 0:
            ids = np.zeros(1, np.int32)
        check(lib.pi_model_offload_ffn(self.ptr, device.encode() if device else ffi.NULL, int(capacity),
                                       ffi.from_buffer("int32_t[]", ids), ffi.from_buffer("int64_t[]", counts)))

    def offload_info(self) -> Optional[dict]:
        """{"device", "bytes", "layers": [{"layer", "hot_neurons", "bytes"}]} of the split, or None."""
        name = cstr(lib.pi_model_offload_device(self.ptr))
        if not name:
            return None
        n_hot, nbytes = ffi.new("int64_t *"), ffi.new("uint64_t *")
        layers = []
        for il in range(int(lib.pi_model_n_layer(self.ptr))):
            check(lib.pi_model_offload_layer(self.ptr, il, n_hot, nbytes))
            layers.append({"layer": il, "hot_neurons": int(n_hot[0]), "bytes": int(nbytes[0])})
        return {"device": name, "bytes": int(lib.pi_model_offload_bytes(self.ptr)), "layers": layers}
