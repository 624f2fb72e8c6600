"""Writes model files in PowerInfer's sparse layout (``*.powerinfer.gguf``), with random weights,
for tests and tools.

The layout, as PowerInfer's converters produce it (see DESIGN.md §4):

- a GGUF v3 file whose first four bytes are ``PWRI`` instead of ``GGUF`` (the magic alone marks
  the file as sparse); written here with the gguf package's ``GGUFWriter``, then the magic
  overwritten, exactly as PowerInfer's converters do;
- per block ``ffn_up`` (and ``ffn_gate`` for llama and bamboo) of dims [n_embd, n_ff] and
  ``ffn_down_t`` of dims [n_embd, n_ff] instead of ``ffn_down``: one contiguous row of n_embd per
  neuron, the transpose of the usual down projection;
- per block a predictor ``blk.N.fc1.weight`` [n_embd, H_N] and ``blk.N.fc2.weight`` [H_N, n_ff],
  no bias, with a hidden width H_N that differs between layers, all placed after every other
  tensor (token_embd, then per layer attention and FFN tensors, then output_norm and output);
- ``powerinfer.sparse_threshold`` (f32) when a threshold is given.

Architectures: ``llama`` (ReluLLaMA, ProSparse: h = ReLU(gate x) * (up x)), ``bamboo`` (h =
ReLU(gate x) * ReLU(up x)) and ``falcon`` (fused QKV [n_embd, (n_head + 2 n_head_kv) * head_dim]
in [all Q | all K | all V] order, parallel attention and FFN, h = ReLU(up x), LayerNorm with
biases, optional attn_norm_2).

    spec = write_sparse_gguf("tiny.powerinfer.gguf", arch="llama", wtype="Q4_0")
    spec.weights["blk.0.ffn_down_t.weight"]   # float32 [n_ff, n_embd], the values the file holds

``SparseModelSpec.weights`` holds every tensor as float32 in numpy order (rows first) after the
round trip through the file's type, so a numpy reference forward pass computes with exactly the
values the engine reads.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

ARCHS = ("llama", "bamboo", "falcon")
WEIGHT_TYPES = ("F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
_K_TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
PWRI = b"PWRI"
# The tensors of a llama or bamboo block (blk.N.<part>.weight), in the order of the published 7B
# file (PowerInfer's issue #81 log); the predictors blk.N.fc1/fc2 come after every other tensor.
LLAMA_BLOCK_ORDER = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down_t",
                     "attn_norm", "ffn_norm")


@dataclass
class SparseModelSpec:
    """What write_sparse_gguf wrote: the path, the hyper-parameters, the tensor order and types,
    and every tensor's values (float32, numpy order, as stored after quantization)."""

    path: Path
    arch: str
    n_embd: int
    n_ff: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    predictor_hidden: List[int]
    threshold: Optional[float]
    order: List[str] = field(default_factory=list)
    types: Dict[str, str] = field(default_factory=dict)
    weights: Dict[str, np.ndarray] = field(default_factory=dict)


def encode(type_name: str, values: np.ndarray) -> np.ndarray:
    """The data of ``values`` (float32, numpy order) as a tensor of type ``type_name`` holds it:
    the float32 or float16 array itself, or the quantized bytes as uint8 [rows, row_bytes]
    (rows of a 2-D array; the row length a multiple of the type's block)."""
    import gguf
    from gguf.quants import quantize

    values = np.ascontiguousarray(values, dtype=np.float32)
    if type_name == "F32":
        return values
    if type_name == "F16":
        return values.astype(np.float16)
    rows, cols = values.shape
    if type_name in _K_TYPES:
        from .quantize import quantize_row  # gguf.quants has no K-quant quantizer

        return quantize_row(type_name, values.reshape(-1)).reshape(rows, -1)
    qt = gguf.GGMLQuantizationType[type_name]
    return np.ascontiguousarray(quantize(values, qt)).view(np.uint8).reshape(rows, -1)


def _encode(type_name: str, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(the data as encode gives it, the float32 values read back from it)."""
    import gguf
    from gguf.quants import dequantize

    data = encode(type_name, values)
    if data.dtype != np.uint8:
        return data, data.astype(np.float32)
    back = dequantize(data, gguf.GGMLQuantizationType[type_name])
    return data, back.reshape(np.shape(values)).astype(np.float32)


def predictor_type_for(wtype: str) -> str:
    """The type PowerInfer's quantizer gives fc1/fc2 in a file whose weights are ``wtype``: F16 in
    F16/F32 files, Q4_0 in Q4_0 files, Q5_0 for every other target (facts §1.5)."""
    if wtype in ("F16", "F32"):
        return "F16"
    return "Q4_0" if wtype == "Q4_0" else "Q5_0"


def output_type_for(wtype: str, n_embd: int, arch: str = "llama") -> str:
    """The type PowerInfer's quantizer gives output.weight for a quantized target ``wtype``: Q6_K,
    or Q8_0 for falcon or when the rows (n_embd) do not fill whole blocks of 256 (facts §1.5); a
    Q8_0 target keeps Q8_0 (never lowered to Q6_K); F16/F32 files keep their own type."""
    if wtype in ("F16", "F32", "Q8_0"):
        return wtype
    return "Q8_0" if arch == "falcon" or n_embd % 256 else "Q6_K"


def _vocab(w, n_vocab: int) -> None:
    """A small SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(max(0, n_vocab - len(tokens)))]
    tokens = tokens[:n_vocab]
    types = [2, 3, 3] + [6] * min(256, n_vocab - 3) + [1] * max(0, n_vocab - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([-float(i) for i in range(n_vocab)])
    w.add_token_types(types[:n_vocab])
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def add_small_model_hparams(w, *, arch: str, n_embd: int, n_ff: int, n_layer: int,
                            n_head: int, n_head_kv: int) -> None:
    """The <arch>.* hyper-parameter keys of a small random test model (context 256, RoPE base 10000,
    norm epsilon 1e-5: LayerNorm for falcon, RMSNorm otherwise). Also used by tests/tiny_llama.py."""
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_rope_freq_base(10000.0)
    if arch == "falcon":
        w.add_layer_norm_eps(1e-5)
        w.add_string("falcon.tensor_data_layout", "jploski")
    else:
        w.add_layer_norm_rms_eps(1e-5)


def write_sparse_gguf(
    path: Union[str, os.PathLike],
    *,
    arch: str = "llama",
    wtype: str = "F16",
    predictor_type: Optional[str] = None,
    n_embd: int = 64,
    n_ff: int = 256,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: Optional[int] = None,
    n_vocab: int = 300,
    predictor_hidden: Optional[Sequence[int]] = None,
    threshold: Optional[float] = None,
    attn_norm_2: bool = False,
    magic: bool = True,
    seed: int = 0,
) -> SparseModelSpec:
    """Writes a random model in PowerInfer's sparse layout and returns what it holds.

    Args:
        arch: "llama", "bamboo" or "falcon".
        wtype: type of the 2-D weights (token_embd, attention, FFN, output): one of WEIGHT_TYPES;
            n_embd must be a multiple of its block size (every 2-D weight has rows of n_embd, but fc2).
        predictor_type: type of fc1/fc2; default as PowerInfer's quantizer does: F16 for F16/F32
            files, Q4_0 for Q4_0 files, Q5_0 otherwise.
        predictor_hidden: H per layer; default 32 * (layer + 1) (differing, as in published files),
            rounded up to the predictor type's block.
        threshold: written as powerinfer.sparse_threshold; None leaves the key out (default 0).
        attn_norm_2: falcon only: add blk.N.attn_norm_2 (weight and bias), as Falcon-40B has.
        magic: write PWRI (True) or leave the GGUF magic (a dense-layout file with the same tensors).
    """
    import gguf

    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r}: expected one of {', '.join(ARCHS)}")
    if wtype not in WEIGHT_TYPES:
        raise ValueError(f"wtype={wtype!r}: expected one of {', '.join(WEIGHT_TYPES)}")
    if predictor_type is None:
        predictor_type = predictor_type_for(wtype)
    n_head_kv = n_head if n_head_kv is None else n_head_kv
    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError(f"n_embd={n_embd}, n_head={n_head}, n_head_kv={n_head_kv} do not divide")
    bs_w = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[wtype]][0]
    bs_p = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[predictor_type]][0]
    if n_embd % bs_w or n_embd % bs_p:  # every 2-D tensor has rows of n_embd, but fc2 (rows of H)
        raise ValueError(f"n_embd={n_embd} must be a multiple of the {wtype} block ({bs_w}) and of the "
                         f"{predictor_type} block ({bs_p})")
    if predictor_hidden is None:
        predictor_hidden = [32 * (i + 1) for i in range(n_layer)]
    hidden = [int(-(-h // bs_p) * bs_p) for h in predictor_hidden]
    if len(hidden) != n_layer:
        raise ValueError(f"predictor_hidden has {len(hidden)} entries for {n_layer} layers")
    hd = n_embd // n_head
    rng = np.random.default_rng(seed)
    path = Path(path)
    spec = SparseModelSpec(path=path, arch=arch, n_embd=n_embd, n_ff=n_ff, n_layer=n_layer, n_head=n_head,
                           n_head_kv=n_head_kv, n_vocab=n_vocab, predictor_hidden=hidden, threshold=threshold)

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"random sparse {arch}")
    add_small_model_hparams(w, arch=arch, n_embd=n_embd, n_ff=n_ff, n_layer=n_layer, n_head=n_head,
                            n_head_kv=n_head_kv)
    if threshold is not None:
        w.add_float32("powerinfer.sparse_threshold", float(threshold))
    _vocab(w, n_vocab)

    def mat(rows: int, cols: int) -> np.ndarray:  # scaled so that activations stay O(1)
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    def add(name: str, values: np.ndarray, type_name: str) -> None:
        data, back = _encode(type_name, values)
        if data.dtype == np.uint8:
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=gguf.GGMLQuantizationType[type_name])
        else:
            w.add_tensor(name, data)
        spec.order.append(name)
        spec.types[name] = type_name
        spec.weights[name] = back

    add("token_embd.weight", rng.standard_normal((n_vocab, n_embd)).astype(np.float32), wtype)
    for i in range(n_layer):
        b = f"blk.{i}."
        if arch == "falcon":
            add(b + "attn_norm.weight", norm(n_embd), "F32")
            add(b + "attn_norm.bias", 0.1 * norm(n_embd), "F32")
            if attn_norm_2:
                add(b + "attn_norm_2.weight", norm(n_embd), "F32")
                add(b + "attn_norm_2.bias", 0.1 * norm(n_embd), "F32")
            add(b + "attn_qkv.weight", mat((n_head + 2 * n_head_kv) * hd, n_embd), wtype)  # [Q | K | V]
            add(b + "attn_output.weight", mat(n_embd, n_embd), wtype)
            add(b + "ffn_up.weight", mat(n_ff, n_embd), wtype)
            add(b + "ffn_down_t.weight", mat(n_ff, n_embd) * np.sqrt(n_embd / n_ff), wtype)
        else:  # llama, bamboo: the order of the published 7B file
            # made in that order, so that a seed gives the same values as it always did
            make = {
                "attn_q": lambda: mat(n_embd, n_embd),
                "attn_k": lambda: mat(n_head_kv * hd, n_embd),
                "attn_v": lambda: mat(n_head_kv * hd, n_embd),
                "attn_output": lambda: mat(n_embd, n_embd),
                "ffn_gate": lambda: mat(n_ff, n_embd),
                "ffn_up": lambda: mat(n_ff, n_embd),
                "ffn_down_t": lambda: mat(n_ff, n_embd) * np.sqrt(n_embd / n_ff),
                "attn_norm": lambda: norm(n_embd),
                "ffn_norm": lambda: norm(n_embd),
            }
            for part in LLAMA_BLOCK_ORDER:
                add(b + part + ".weight", make[part](), "F32" if part.endswith("_norm") else wtype)
    add("output_norm.weight", norm(n_embd), "F32")
    if arch == "falcon":
        add("output_norm.bias", 0.1 * norm(n_embd), "F32")
    add("output.weight", mat(n_vocab, n_embd), wtype)
    for i, h in enumerate(hidden):  # predictors last, as in published files
        add(f"blk.{i}.fc1.weight", mat(h, n_embd), predictor_type)  # dims [n_embd, H]
        add(f"blk.{i}.fc2.weight", mat(n_ff, h), predictor_type)    # dims [H, n_ff]

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if magic:
        set_magic(path, PWRI)
    return spec


def set_magic(path: Union[str, os.PathLike], magic: bytes) -> None:
    """Overwrites the first four bytes (b"PWRI" marks a sparse file, b"GGUF" a plain one)."""
    if len(magic) != 4:
        raise ValueError(f"magic must be 4 bytes, got {magic!r}")
    with open(path, "r+b") as f:
        f.write(magic)
