"""powerinfer_py.sparse_gguf writes PowerInfer's sparse layout: read back with our reader (PWRI
detected, tensors in the published order, shapes as DESIGN.md §4 gives them) and with the gguf
package (after the GGUF magic is put back in a copy: gguf's reader rejects PWRI, as PowerInfer's
vendored one does)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

from powerinfer_py._model import Model  # noqa: E402
from powerinfer_py.sparse_gguf import set_magic, write_sparse_gguf  # noqa: E402

CASES = [(arch, wt) for arch in ("llama", "bamboo", "falcon") for wt in ("F16", "Q4_0", "Q8_0", "Q4_K")]


def expected_order(spec) -> list:
    """The published order: token_embd, per layer attention + FFN, output_norm, output, then every fc."""
    names = ["token_embd.weight"]
    for i in range(spec.n_layer):
        b = f"blk.{i}."
        if spec.arch == "falcon":
            names += [b + "attn_norm.weight", b + "attn_norm.bias"]
            if b + "attn_norm_2.weight" in spec.weights:
                names += [b + "attn_norm_2.weight", b + "attn_norm_2.bias"]
            names += [b + s + ".weight" for s in ("attn_qkv", "attn_output", "ffn_up", "ffn_down_t")]
        else:
            names += [b + s + ".weight" for s in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                                  "ffn_down_t", "attn_norm", "ffn_norm")]
    names += ["output_norm.weight"] + (["output_norm.bias"] if spec.arch == "falcon" else []) + ["output.weight"]
    for i in range(spec.n_layer):
        names += [f"blk.{i}.fc1.weight", f"blk.{i}.fc2.weight"]
    return names


def expected_shape(spec, name: str) -> tuple:
    """GGUF dims (ne0 contiguous first), from DESIGN.md §4."""
    e, f, v = spec.n_embd, spec.n_ff, spec.n_vocab
    hd = e // spec.n_head
    if name.endswith(".bias") or "norm" in name:
        return (e,)
    if ".fc1." in name:
        return (e, spec.predictor_hidden[int(name.split(".")[1])])
    if ".fc2." in name:
        return (spec.predictor_hidden[int(name.split(".")[1])], f)
    if name.endswith(("ffn_up.weight", "ffn_gate.weight", "ffn_down_t.weight")):
        return (e, f)  # one row of n_embd per neuron, down_t included
    if name in ("token_embd.weight", "output.weight"):
        return (e, v)
    if name.endswith("attn_qkv.weight"):
        return (e, (spec.n_head + 2 * spec.n_head_kv) * hd)
    if name.endswith(("attn_k.weight", "attn_v.weight")):
        return (e, spec.n_head_kv * hd)
    return (e, e)


@pytest.mark.parametrize("arch,wtype", CASES)
def test_written_file_reads_back(tmp_path, arch, wtype):
    n_embd = 256 if wtype == "Q4_K" else 64
    path = tmp_path / f"tiny-{arch}-{wtype}.powerinfer.gguf"
    spec = write_sparse_gguf(path, arch=arch, wtype=wtype, n_embd=n_embd, n_ff=192, n_layer=3, n_head=4,
                             n_head_kv=2 if arch != "falcon" else 1, predictor_hidden=[32, 96, 64], threshold=0.25,
                             attn_norm_2=(arch == "falcon"), seed=1)
    assert path.read_bytes()[:4] == b"PWRI"
    assert spec.order == expected_order(spec)
    hidden = spec.predictor_hidden
    assert len(set(hidden)) == 3  # widths differ between layers

    with Model(path, vocab_only=True) as m:
        assert m.is_sparse_file
        assert m.arch == arch
        assert m.gguf_version == 3
        assert float(m.metadata["powerinfer.sparse_threshold"]) == pytest.approx(0.25)
        tensors = m.tensors
    assert [t.name for t in tensors] == spec.order
    for t in tensors:
        assert t.shape == expected_shape(spec, t.name), t.name
        assert t.type_name == spec.types[t.name], t.name
    assert "blk.0.ffn_down.weight" not in spec.order
    if arch == "falcon":
        assert "blk.0.ffn_gate.weight" not in spec.order

    # The gguf package: only after the GGUF magic is put back (in a copy).
    copy = tmp_path / "copy.gguf"
    shutil.copy(path, copy)
    with pytest.raises(ValueError):
        gguf.GGUFReader(str(path))
    set_magic(copy, b"GGUF")
    reader = gguf.GGUFReader(str(copy))
    assert [t.name for t in reader.tensors] == spec.order
    assert reader.fields["general.architecture"].contents() == arch
    for t in reader.tensors:
        assert tuple(int(d) for d in t.shape) == expected_shape(spec, t.name)
        assert GT(t.tensor_type).name == spec.types[t.name]
        values = np.asarray(t.data)
        if GT(t.tensor_type) not in (GT.F32, GT.F16):
            values = dequantize(values, GT(t.tensor_type))
        np.testing.assert_array_equal(values.astype(np.float32).reshape(spec.weights[t.name].shape),
                                      spec.weights[t.name], err_msg=t.name)


def test_predictor_types_follow_powerinfer_quantizer(tmp_path):
    q4 = write_sparse_gguf(tmp_path / "a.gguf", wtype="Q4_0", n_layer=1)
    q8 = write_sparse_gguf(tmp_path / "b.gguf", wtype="Q8_0", n_layer=1)
    f16 = write_sparse_gguf(tmp_path / "c.gguf", wtype="F16", n_layer=1)
    assert q4.types["blk.0.fc1.weight"] == "Q4_0"
    assert q8.types["blk.0.fc2.weight"] == "Q5_0"
    assert f16.types["blk.0.fc1.weight"] == "F16"
    assert f16.types["blk.0.attn_norm.weight"] == "F32"


def test_no_threshold_key_and_dense_magic(tmp_path):
    path = tmp_path / "dense-magic.gguf"
    write_sparse_gguf(path, magic=False, n_layer=1)
    assert path.read_bytes()[:4] == b"GGUF"
    with Model(path, vocab_only=True) as m:
        assert not m.is_sparse_file
        assert "powerinfer.sparse_threshold" not in m.metadata


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="arch"):
        write_sparse_gguf(tmp_path / "x.gguf", arch="opt")
    with pytest.raises(ValueError, match="multiple"):
        write_sparse_gguf(tmp_path / "x.gguf", wtype="Q4_K", n_embd=64)
    with pytest.raises(ValueError, match="magic"):
        set_magic(tmp_path / "x.gguf", b"PW")
