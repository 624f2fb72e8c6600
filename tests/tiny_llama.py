"""Writes small random llama-architecture GGUF files with the gguf package's writer, for tests that
need exact arithmetic (F32 weights: the engine keeps F32 activations for them) or a file that is
wrong in one chosen way (architecture, tensor type, shape, a missing tensor).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import gguf
import numpy as np

from powerinfer_py.sparse_gguf import add_small_model_hparams


def write_tiny_llama(path: Path, *, arch: str = "llama", tied: bool = True, n_embd: int = 64, n_head: int = 4,
                     n_head_kv: int = 2, n_ff: int = 96, n_layer: int = 2, n_vocab: int = 200,
                     rope_linear_factor: Optional[float] = None, seed: int = 0,
                     override: Optional[Dict[str, tuple]] = None, drop: tuple = ()) -> Path:
    """A random model. override maps a tensor name to (raw bytes or array, shape, GGMLQuantizationType)
    to put a chosen tensor in place of the random one; drop lists tensors to leave out."""
    rng = np.random.default_rng(seed)
    hd = n_embd // n_head
    w = gguf.GGUFWriter(str(path), arch)
    add_small_model_hparams(w, arch=arch, n_embd=n_embd, n_ff=n_ff, n_layer=n_layer, n_head=n_head,
                            n_head_kv=n_head_kv)
    if rope_linear_factor:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope_linear_factor)

    def mat(rows, cols):  # scaled so that activations stay O(1) through the layers
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def vec(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    tensors = {"token_embd.weight": rng.standard_normal((n_vocab, n_embd)).astype(np.float32),
               "output_norm.weight": vec(n_embd)}
    if not tied:
        tensors["output.weight"] = mat(n_vocab, n_embd)
    for i in range(n_layer):
        b = f"blk.{i}."
        tensors[b + "attn_norm.weight"] = vec(n_embd)
        tensors[b + "attn_q.weight"] = mat(n_head * hd, n_embd)
        tensors[b + "attn_k.weight"] = mat(n_head_kv * hd, n_embd)
        tensors[b + "attn_v.weight"] = mat(n_head_kv * hd, n_embd)
        tensors[b + "attn_output.weight"] = mat(n_embd, n_head * hd)
        tensors[b + "ffn_norm.weight"] = vec(n_embd)
        tensors[b + "ffn_gate.weight"] = mat(n_ff, n_embd)
        tensors[b + "ffn_up.weight"] = mat(n_ff, n_embd)
        tensors[b + "ffn_down.weight"] = mat(n_embd, n_ff)
    for name, a in tensors.items():
        if name in drop:
            continue
        if override and name in override:
            data, shape, qtype = override[name]
            w.add_tensor(name, np.frombuffer(bytes(data), dtype=np.uint8) if isinstance(data, (bytes, bytearray))
                         else data, raw_shape=shape, raw_dtype=qtype)
        else:
            w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
