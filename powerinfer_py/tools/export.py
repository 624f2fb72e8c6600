"""Export: a dense GGUF of a ReLU llama-family model, plus its predictors, in PowerInfer's sparse layout.

    powerinfer-py export MODEL.gguf --predictors P.npz [--out OUT.powerinfer.gguf] [--type f16|q4|q8_0]
        [--threshold T] [--no-predictors] [--force-relu] [--gguf-magic] [--quiet]

The source is a plain GGUF (magic ``GGUF``) of architecture ``llama`` or ``bamboo`` whose FFN is
ReLU-gated: llama files must say so with ``powerinfer.ffn_activation = "relu"`` (nothing else tells
a ReLU llama from a SiLU one), bamboo always is (dReLU). Its weights may be F32, F16 or quantized.
The predictors are the .npz of powerinfer_py/tools (fc1_{L} float32 [H_L, n_embd], fc2_{L} float32
[n_ff, H_L], threshold).

What is written (PowerInfer's layout, see DESIGN.md §4 and sparse_gguf.py, which writes the same
layout with random weights):

- a GGUF v3 file whose first four bytes are ``PWRI`` (the magic alone marks it sparse), or ``GGUF``
  with ``--gguf-magic`` (the same tensors in a file engines read as dense: a layout check);
- every metadata key of the source, tokenizer arrays included, with ``general.file_type`` set for
  the variant and ``powerinfer.sparse_threshold`` (f32) from the predictors (or ``--threshold``);
- ``token_embd``, then per block, in the order of PowerInfer's published 7B file: attn_q, attn_k,
  attn_v, attn_output, ffn_gate, ffn_up, **ffn_down_t**, attn_norm, ffn_norm; then output_norm and
  output; then, last, every predictor: blk.N.fc1.weight dims [n_embd, H_N] and blk.N.fc2.weight
  dims [H_N, n_ff]. ``ffn_down_t`` is the transpose of the dense ``ffn_down`` (dims [n_embd, n_ff]:
  one contiguous row of n_embd per neuron, so the down projection adds the rows of the active
  neurons). ``output`` is always written: PowerInfer cannot tie it to token_embd, so a tied source
  gets a copy of token_embd.

Variants (the types PowerInfer's quantizer gives, facts §1.5):

    f16    2-D weights F16, predictors F16                           (PowerInfer's *.powerinfer.gguf)
    q4     2-D weights Q4_0, predictors Q4_0, output Q6_K, or Q8_0   (*.q4.powerinfer.gguf)
           when n_embd is not a multiple of 256
    q8_0   2-D weights Q8_0, predictors Q5_0, output Q8_0            (ours: PowerInfer's sparse
                                                                      kernels run F16 and Q4_0 only)

1-D tensors (norms) are F32 in every variant. A tensor whose rows do not fill whole blocks of its
type is written F16 instead, and said so. A source tensor already in its target type is copied byte
for byte; the others are dequantized (gguf.quants) and encoded again (gguf.quants, or the engine's
own row quantizer for the K-quants). The file is written under a temporary name and renamed when
complete, so a failed export leaves nothing behind.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as QType
    from gguf import GGUFValueType
    from gguf.quants import dequantize
except ImportError as e:  # pragma: no cover - gguf comes with the train and test extras
    raise ImportError("powerinfer-py export needs the gguf package: pip install 'powerinfer-py[train]'") from e

from ..sparse_gguf import LLAMA_BLOCK_ORDER, PWRI, encode, output_type_for, predictor_type_for, set_magic

PathLike = Union[str, os.PathLike]

ARCHS = ("llama", "bamboo")
GGUF_MAGIC = b"GGUF"
# The tensors of a dense llama block (blk.N.<part>.weight), all required.
DENSE_BLOCK_PARTS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                     "ffn_down")
GLOBAL_TENSORS = ("token_embd.weight", "output_norm.weight", "output.weight")
# Our own key saying how a llama file's FFN is activated (the engine reads it; PowerInfer ignores it).
ACTIVATION_KEY = "powerinfer.ffn_activation"
THRESHOLD_KEY = "powerinfer.sparse_threshold"
# Keys the GGUF reader makes up from the header, and the one GGUFWriter writes by itself.
_NOT_COPIED = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", gguf.Keys.General.ARCHITECTURE)
_QUANTIZATION_VERSION = 2  # ggml's, for files holding quantized tensors


@dataclass(frozen=True)
class Variant:
    """The tensor types of one kind of output file."""

    weights: str    # every 2-D weight but the output head and the predictors
    file_type: int  # general.file_type (llama.cpp's LLAMA_FTYPE_MOSTLY_*)

    @property
    def predictors(self) -> str:
        return predictor_type_for(self.weights)

    def output(self, n_embd: int, arch: str) -> str:
        return output_type_for(self.weights, n_embd, arch)

    @property
    def quantized(self) -> bool:
        return self.weights not in ("F16", "F32")


VARIANTS: Dict[str, Variant] = {
    "f16": Variant("F16", int(gguf.LlamaFileType.MOSTLY_F16)),
    "q4": Variant("Q4_0", int(gguf.LlamaFileType.MOSTLY_Q4_0)),
    "q8_0": Variant("Q8_0", int(gguf.LlamaFileType.MOSTLY_Q8_0)),
}


# ----------------------------------------------------------------------------- the dense source
@dataclass
class DenseSource:
    """A dense GGUF of a ReLU llama-family model, checked: every tensor present with the right dims."""

    path: Path
    reader: Any  # gguf.GGUFReader
    arch: str
    n_embd: int
    n_ff: int
    n_layer: int
    n_vocab: int
    activation: Optional[str]  # the value to write for powerinfer.ffn_activation (None: leave as is)
    tensors: Dict[str, Any] = field(default_factory=dict)  # name -> gguf ReaderTensor

    def type_name(self, name: str) -> str:
        return QType(self.tensors[name].tensor_type).name

    def dims(self, name: str) -> Tuple[int, ...]:
        """GGUF dims (ne0, the contiguous one, first)."""
        return tuple(int(d) for d in self.tensors[name].shape)

    def values(self, name: str) -> np.ndarray:
        """The tensor as float32 in numpy order (rows first), dequantized when stored quantized."""
        t = self.tensors[name]
        qt = QType(t.tensor_type)
        data = np.asarray(t.data)
        flat = data.astype(np.float32) if qt == QType.F64 else dequantize(data, qt)  # gguf.quants has no F64
        return np.asarray(flat, dtype=np.float32).reshape(tuple(reversed(self.dims(name))))


def _read_magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4)


def _field(reader, key: str, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def _required_int(reader, path: Path, key: str) -> int:
    value = _field(reader, key)
    if value is None:
        raise ValueError(f"{path}: metadata key {key} is missing")
    return int(value)


def open_source(path: PathLike, *, force_relu: bool = False) -> DenseSource:
    """Opens and checks the dense source; ValueError says what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    magic = _read_magic(path)
    if magic == PWRI:
        raise ValueError(f"{path}: already in PowerInfer's sparse layout (PWRI magic); export reads a dense GGUF")
    if magic != GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file (magic {magic!r})")
    reader = gguf.GGUFReader(str(path))
    arch = _field(reader, "general.architecture")
    if arch not in ARCHS:
        raise ValueError(f"{path}: architecture {arch!r} is not supported; export writes PowerInfer's layout "
                         f"for {' and '.join(ARCHS)} models")
    activation = _check_activation(path, arch, _field(reader, ACTIVATION_KEY), force_relu)
    tensors = {t.name: t for t in reader.tensors}
    src = DenseSource(path=path, reader=reader, arch=arch,
                      n_embd=_required_int(reader, path, f"{arch}.embedding_length"),
                      n_ff=_required_int(reader, path, f"{arch}.feed_forward_length"),
                      n_layer=_required_int(reader, path, f"{arch}.block_count"),
                      n_vocab=0, activation=activation, tensors=tensors)
    _check_tensors(src)
    return src


def _check_activation(path: Path, arch: str, declared: Optional[str], force_relu: bool) -> Optional[str]:
    """What the output's powerinfer.ffn_activation must say (None: copy the source's key as it is).

    PowerInfer's sparse FFN only computes ReLU models: ReLU(gate) * up for llama, ReLU(gate) *
    ReLU(up) for bamboo. Exporting a SiLU model would give a file that runs but computes nonsense."""
    if arch == "bamboo":
        if declared not in (None, "relu_both"):
            raise ValueError(f"{path}: a bamboo model computes ReLU(gate) * ReLU(up), but {ACTIVATION_KEY} says "
                             f"{declared!r}")
        return None
    if declared == "relu":
        return None
    if declared == "relu_both":
        raise ValueError(f"{path}: {ACTIVATION_KEY} = 'relu_both' (ReLU(gate) * ReLU(up)), but PowerInfer's llama "
                         f"computes ReLU(gate) * up; such a model is architecture 'bamboo'")
    if not force_relu:
        what = "has no" if declared is None else f"has {ACTIVATION_KEY} = {declared!r}, not"
        raise ValueError(f"{path}: a SiLU model ({what} {ACTIVATION_KEY} = 'relu'): PowerInfer's sparse FFN "
                         f"computes ReLU(gate) * up and would run it wrongly; pass --force-relu if the model "
                         f"really is ReLU-gated")
    return "relu"  # forced: say it in the output, where the engine would otherwise read SiLU


def _check_tensors(src: DenseSource) -> None:
    """Every tensor of a dense llama block present, no other (nothing is silently dropped), dims right."""
    p, e, f = src.path, src.n_embd, src.n_ff
    if "token_embd.weight" not in src.tensors:
        raise ValueError(f"{p}: tensor token_embd.weight is missing")
    src.n_vocab = src.dims("token_embd.weight")[-1]
    expected: Dict[str, Optional[Tuple[int, ...]]] = {
        "token_embd.weight": (e, src.n_vocab), "output_norm.weight": (e,), "output.weight": (e, src.n_vocab)}
    for il in range(src.n_layer):
        b = f"blk.{il}."
        for part in DENSE_BLOCK_PARTS:
            expected[b + part + ".weight"] = {"attn_norm": (e,), "ffn_norm": (e,), "ffn_gate": (e, f),
                                              "ffn_up": (e, f), "ffn_down": (f, e)}.get(part)
        if b + "ffn_down_t.weight" in src.tensors:
            raise ValueError(f"{p}: tensor {b}ffn_down_t.weight: the source is already in PowerInfer's layout; "
                             f"export reads a dense model (ffn_down)")
    for name, dims in expected.items():
        if name not in src.tensors:
            if name == "output.weight":
                continue  # tied to token_embd: written out as a copy
            layer = f"layer {name.split('.')[1]}: " if name.startswith("blk.") else ""
            raise ValueError(f"{p}: {layer}tensor {name} is missing (the model has {src.n_layer} layers)")
        got = src.dims(name)
        if dims is not None and got != dims:
            raise ValueError(f"{p}: tensor {name} has dims {list(got)}, expected {list(dims)}")
        if dims is None and (len(got) != 2 or (got[0] != e and not name.endswith("attn_output.weight"))):
            raise ValueError(f"{p}: tensor {name} has dims {list(got)}, expected [{e}, rows]")
    _check_types_readable(src)
    unknown = sorted(set(src.tensors) - set(expected))
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ValueError(f"{p}: tensors PowerInfer's llama layout has no place for: {shown}")


def _check_types_readable(src: DenseSource) -> None:
    """Every tensor type of the source one we can turn into float32 (before anything is written)."""
    for type_id in sorted({int(t.tensor_type) for t in src.tensors.values()}):
        qt = QType(type_id)
        if qt in (QType.F32, QType.F16, QType.F64):
            continue
        block_bytes = gguf.GGML_QUANT_SIZES[qt][1]
        try:
            dequantize(np.zeros((1, block_bytes), dtype=np.uint8), qt)
        except NotImplementedError:
            names = [n for n, t in src.tensors.items() if int(t.tensor_type) == type_id]
            raise ValueError(f"{src.path}: tensor {names[0]} has type {qt.name}, which export cannot read") from None


# ----------------------------------------------------------------------------- the predictors
@dataclass
class Predictors:
    """Per layer fc1 float32 [H_L, n_embd] and fc2 float32 [n_ff, H_L] (numpy order), and the
    threshold the predictors were trained for (None when the .npz has none)."""

    fc1: List[np.ndarray]
    fc2: List[np.ndarray]
    threshold: Optional[float] = None


def load_predictors(path: PathLike) -> Predictors:
    """Reads the predictors .npz of powerinfer_py/tools (fc1_{L}, fc2_{L}, threshold, n_layer)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such predictors file")
    with np.load(path) as z:
        keys = set(z.files)
        n_layer = int(z["n_layer"]) if "n_layer" in keys else sum(1 for k in keys if k.startswith("fc1_"))
        fc1, fc2 = [], []
        for il in range(n_layer):
            missing = [k for k in (f"fc1_{il}", f"fc2_{il}") if k not in keys]
            if missing:
                raise ValueError(f"predictors {path}: layer {il} is missing ({', '.join(missing)} not in the file)")
            fc1.append(np.asarray(z[f"fc1_{il}"], dtype=np.float32))
            fc2.append(np.asarray(z[f"fc2_{il}"], dtype=np.float32))
        threshold = float(z["threshold"]) if "threshold" in keys else None
    return Predictors(fc1=fc1, fc2=fc2, threshold=threshold)


def check_predictors(pred: Predictors, src: DenseSource, where: str = "predictors") -> None:
    """One predictor per layer of the model, shapes that fit it, finite values; ValueError otherwise."""
    if len(pred.fc1) != src.n_layer or len(pred.fc2) != src.n_layer:
        raise ValueError(f"{where}: {len(pred.fc1)} layers of predictors for a model of {src.n_layer} layers")
    for il, (fc1, fc2) in enumerate(zip(pred.fc1, pred.fc2)):
        if fc1.ndim != 2 or fc1.shape[1] != src.n_embd or fc1.shape[0] == 0:
            raise ValueError(f"{where}: layer {il}: fc1_{il} has shape {fc1.shape}, expected (H, {src.n_embd}) "
                             f"(H hidden rows of n_embd)")
        hidden = fc1.shape[0]
        if fc2.shape != (src.n_ff, hidden):
            raise ValueError(f"{where}: layer {il}: fc2_{il} has shape {fc2.shape}, expected {(src.n_ff, hidden)} "
                             f"(n_ff rows of fc1's H)")
        for name, a in ((f"fc1_{il}", fc1), (f"fc2_{il}", fc2)):
            if not np.isfinite(a).all():
                raise ValueError(f"{where}: layer {il}: {name} holds NaN or infinite values")


# ----------------------------------------------------------------------------- the plan of the output
@dataclass
class PlannedTensor:
    """One tensor of the output: its name, type, shape (numpy order) and how to get its data."""

    name: str
    type_name: str
    shape: Tuple[int, ...]
    data: Callable[[], np.ndarray]  # the bytes to write: a float32/float16 array or uint8 blocks

    @property
    def nbytes(self) -> int:
        block, block_bytes = gguf.GGML_QUANT_SIZES[QType[self.type_name]]
        return math.prod(self.shape[:-1]) * (self.shape[-1] // block) * block_bytes


def _fitting_type(type_name: str, name: str, ne0: int, notes: List[str]) -> str:
    """type_name when rows of ne0 fill whole blocks of it, else F16 (and a note saying so)."""
    block = gguf.GGML_QUANT_SIZES[QType[type_name]][0]
    if ne0 % block == 0:
        return type_name
    notes.append(f"{name}: rows of {ne0} do not fill {type_name} blocks of {block}; written as F16")
    return "F16"


def _from_source(src: DenseSource, out_name: str, type_name: str, *, src_name: Optional[str] = None,
                 transpose: bool = False) -> PlannedTensor:
    """A tensor of the source (src_name, default out_name) written as out_name in type_name,
    transposed (numpy .T) when asked. An unchanged tensor already in its type is copied as stored
    (no second rounding); every other is dequantized and encoded again."""
    src_name = src_name or out_name
    shape = tuple(reversed(src.dims(src_name)))
    if transpose:
        shape = shape[::-1]
    if not transpose and src.type_name(src_name) == type_name:
        return PlannedTensor(out_name, type_name, shape, lambda: np.asarray(src.tensors[src_name].data))

    def convert() -> np.ndarray:
        values = src.values(src_name)
        return encode(type_name, np.ascontiguousarray(values.T) if transpose else values)

    return PlannedTensor(out_name, type_name, shape, convert)


def _from_array(name: str, type_name: str, values: np.ndarray) -> PlannedTensor:
    return PlannedTensor(name, type_name, tuple(values.shape), lambda: encode(type_name, values))


def plan_tensors(src: DenseSource, pred: Optional[Predictors], variant: Variant,
                 notes: List[str], tie_output: bool = False) -> List[PlannedTensor]:
    """Every tensor of the output in PowerInfer's order, with the variant's types."""
    e = src.n_embd

    def weight(name: str, ne0: int) -> str:
        return _fitting_type(variant.weights, name, ne0, notes)

    plan = [_from_source(src, "token_embd.weight", weight("token_embd.weight", e))]
    for il in range(src.n_layer):
        b = f"blk.{il}."
        for part in LLAMA_BLOCK_ORDER:
            name = b + part + ".weight"
            if part.endswith("_norm"):
                plan.append(_from_source(src, name, "F32"))
            elif part == "ffn_down_t":  # dense [n_ff, n_embd] -> one row of n_embd per neuron
                plan.append(_from_source(src, name, weight(name, e), src_name=b + "ffn_down.weight",
                                         transpose=True))
            else:
                plan.append(_from_source(src, name, weight(name, src.dims(name)[0])))
    plan.append(_from_source(src, "output_norm.weight", "F32"))
    # PowerInfer cannot tie the output head to token_embd: a tied source gets an explicit copy,
    # unless tie_output asks for the smaller file that only our engine reads (it ties).
    head = "output.weight" if "output.weight" in src.tensors else "token_embd.weight"
    if not (tie_output and head == "token_embd.weight"):
        out_type = _fitting_type(variant.output(e, src.arch), "output.weight", e, notes)
        plan.append(_from_source(src, "output.weight", out_type, src_name=head))
    if pred is not None:
        for il, (fc1, fc2) in enumerate(zip(pred.fc1, pred.fc2)):
            # numpy [H, n_embd] is GGUF dims [n_embd, H]; numpy [n_ff, H] is dims [H, n_ff]
            name1, name2 = f"blk.{il}.fc1.weight", f"blk.{il}.fc2.weight"
            plan.append(_from_array(name1, _fitting_type(variant.predictors, name1, fc1.shape[1], notes), fc1))
            plan.append(_from_array(name2, _fitting_type(variant.predictors, name2, fc2.shape[1], notes), fc2))
    return plan


# ----------------------------------------------------------------------------- metadata
def _field_value(field) -> Tuple[Any, GGUFValueType, Optional[GGUFValueType]]:
    """(value, type, array item type) of a source key, as GGUFWriter.add_key_value takes them.
    Strings stay bytes, so that a vocabulary piece that is not valid UTF-8 is copied unchanged."""
    main = GGUFValueType(field.types[0])
    if main == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]), main, None
    if main != GGUFValueType.ARRAY:
        return field.parts[field.data[0]][0].item(), main, None
    if len(field.types) != 2:
        raise ValueError(f"metadata key {field.name}: nested arrays are not supported")
    item = GGUFValueType(field.types[1])
    if item == GGUFValueType.STRING:
        return [bytes(field.parts[i]) for i in field.data], main, item
    if not field.data:
        return [], main, item
    return np.concatenate([field.parts[i] for i in field.data]).tolist(), main, item


def plan_metadata(src: DenseSource, variant: Variant, threshold: Optional[float],
                  notes: List[str]) -> Dict[str, Tuple[Any, GGUFValueType, Optional[GGUFValueType]]]:
    """Every key of the source in its order, general.file_type set for the variant, the threshold
    and the activation added or replaced."""
    kv: Dict[str, Tuple[Any, GGUFValueType, Optional[GGUFValueType]]] = {}
    for key, fld in src.reader.fields.items():
        if key in _NOT_COPIED:
            continue
        value = _field_value(fld)
        if value[2] is not None and not value[0]:
            notes.append(f"metadata key {key}: an empty array, which the gguf writer cannot write; left out")
            continue
        kv[key] = value
    kv[gguf.Keys.General.FILE_TYPE] = (variant.file_type, GGUFValueType.UINT32, None)
    if variant.quantized and gguf.Keys.General.QUANTIZATION_VERSION not in kv:
        kv[gguf.Keys.General.QUANTIZATION_VERSION] = (_QUANTIZATION_VERSION, GGUFValueType.UINT32, None)
    if src.activation is not None:
        kv[ACTIVATION_KEY] = (src.activation, GGUFValueType.STRING, None)
    if threshold is not None:
        kv[THRESHOLD_KEY] = (float(threshold), GGUFValueType.FLOAT32, None)
    return kv


# ----------------------------------------------------------------------------- writing
def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="export", unit="tensor", disable=not enabled, file=sys.stderr)


def _write_gguf(path: Path, arch: str, kv: Dict[str, Tuple[Any, GGUFValueType, Optional[GGUFValueType]]],
                plan: Sequence[PlannedTensor], progress: bool) -> None:
    """Header, keys and tensor infos first (every size is known ahead), then each tensor's data as
    it is made, so that only one tensor is in memory at a time whatever the model's size."""
    w = gguf.GGUFWriter(str(path), arch)
    try:
        for key, (value, vtype, item) in kv.items():
            w.add_key_value(key, value, vtype, item)
        if gguf.Keys.General.ALIGNMENT in kv:  # the writer pads to its own field, not to the key
            w.data_alignment = int(kv[gguf.Keys.General.ALIGNMENT][0])
        for t in plan:
            w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=QType[t.type_name])
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        with _progress_bar(len(plan), progress) as bar:
            for t in plan:
                data = t.data()
                if data.nbytes != t.nbytes:  # a bug of ours, not of the input: fail loudly
                    raise RuntimeError(f"{t.name}: {data.nbytes} bytes made for {t.nbytes} planned ({t.type_name})")
                w.write_tensor_data(data)
                bar.update(1)
    finally:
        w.close()


@dataclass
class ExportResult:
    """What export_model wrote."""

    path: Path
    variant: str
    magic: bytes
    tensors: Dict[str, str]       # name -> type, in file order
    threshold: Optional[float]    # the powerinfer.sparse_threshold written (None: key left out)
    notes: List[str]              # what was done differently from the variant's rule, and why


def export_model(source: PathLike, out: PathLike, *, predictors: Union[PathLike, Predictors, None] = None,
                 variant: str = "f16", threshold: Optional[float] = None, magic: bytes = PWRI,
                 force_relu: bool = False, tie_output: bool = False, progress: bool = False) -> ExportResult:
    """Writes ``source`` (a dense ReLU llama/bamboo GGUF) to ``out`` in PowerInfer's layout.

    predictors: the .npz path, a Predictors, or None to write no predictors (every layer then
    runs every neuron). threshold: powerinfer.sparse_threshold, overriding the predictors' own.
    magic: PWRI (sparse) or b"GGUF" (the same tensors in a file read as dense). tie_output: write no
    output.weight when the source ties it to token_embd (a smaller file for our engine, which ties;
    PowerInfer cannot load it). Raises ValueError
    for a bad source, bad predictors or bad arguments; on any failure nothing is left at ``out``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"type {variant!r}: expected one of {', '.join(VARIANTS)}")
    if magic not in (PWRI, GGUF_MAGIC):
        raise ValueError(f"magic {magic!r}: expected {PWRI!r} or {GGUF_MAGIC!r}")
    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold {threshold}: must be a finite number")
    out = Path(out)
    src = open_source(source, force_relu=force_relu)
    if out.exists() and out.resolve() == src.path.resolve():
        raise ValueError(f"{out}: the output would overwrite the source")
    pred = None
    if predictors is not None:
        where = "predictors" if isinstance(predictors, Predictors) else f"predictors {predictors}"
        pred = predictors if isinstance(predictors, Predictors) else load_predictors(predictors)
        check_predictors(pred, src, where)
        if threshold is None:
            threshold = pred.threshold
    spec = VARIANTS[variant]
    notes: List[str] = []
    plan = plan_tensors(src, pred, spec, notes, tie_output=tie_output)
    kv = plan_metadata(src, spec, threshold, notes)

    tmp = out.with_name(out.name + ".tmp")
    try:
        _write_gguf(tmp, src.arch, kv, plan, progress)
        set_magic(tmp, magic)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(path=out, variant=variant, magic=magic, tensors={t.name: t.type_name for t in plan},
                        threshold=threshold, notes=notes)


# ----------------------------------------------------------------------------- command line
def default_out(model: PathLike, variant: str) -> Path:
    """MODEL.gguf -> MODEL.powerinfer.gguf (f16), MODEL.q4.powerinfer.gguf, MODEL.q8_0.powerinfer.gguf."""
    model = Path(model)
    stem = model.name[:-len(".gguf")] if model.name.endswith(".gguf") else model.name
    infix = "" if variant == "f16" else f".{variant}"
    return model.with_name(f"{stem}{infix}.powerinfer.gguf")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="powerinfer-py export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="dense GGUF of a ReLU llama or bamboo model")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--predictors", help="predictors .npz (fc1_{L}, fc2_{L}, threshold)")
    which.add_argument("--no-predictors", action="store_true",
                       help="write no predictors: every layer runs every neuron")
    ap.add_argument("--out", default=None, help="output file (default: MODEL.powerinfer.gguf, "
                                                "MODEL.q4.powerinfer.gguf, ...)")
    ap.add_argument("--type", choices=tuple(VARIANTS), default="f16", help="f16 (default), q4 or q8_0")
    ap.add_argument("--threshold", type=float, default=None,
                    help="powerinfer.sparse_threshold to write (default: the predictors' own)")
    ap.add_argument("--force-relu", action="store_true",
                    help="export a llama model that does not say powerinfer.ffn_activation = relu")
    ap.add_argument("--gguf-magic", action="store_true",
                    help="write the GGUF magic instead of PWRI (the same layout, read as dense: a check)")
    ap.add_argument("--tie-output", action="store_true",
                    help="no output.weight when the source ties it (smaller; our engine ties, PowerInfer cannot)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    ap = build_parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # usage errors: argparse has printed them; hand back its status
        return int(e.code or 0)
    if a.threshold is not None and a.no_predictors:
        print("powerinfer-py export: --threshold needs predictors (it is the predictors' score cut-off)",
              file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else default_out(a.model, a.type)
    try:
        result = export_model(a.model, out, predictors=None if a.no_predictors else a.predictors,
                              variant=a.type, threshold=a.threshold, magic=GGUF_MAGIC if a.gguf_magic else PWRI,
                              force_relu=a.force_relu, tie_output=a.tie_output, progress=not a.quiet)
    except (ValueError, OSError) as e:
        print(f"powerinfer-py export: {e}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"powerinfer-py export: note: {note}", file=sys.stderr)
    types: Dict[str, int] = {}
    for type_name in result.tensors.values():
        types[type_name] = types.get(type_name, 0) + 1
    print(json.dumps({"out": str(result.path), "type": result.variant, "magic": result.magic.decode(),
                      "n_tensors": len(result.tensors), "tensor_types": types, "threshold": result.threshold,
                      "bytes": result.path.stat().st_size}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
