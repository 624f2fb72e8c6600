"""powerinfer_py.quantize (pi_model_quantize): SmolLM2 Q4_1 re-quantized to Q4_0, Q8_0 and Q4_K, and a
small PowerInfer (PWRI) file with predictor tensors, read back with the gguf package.

Tolerances: the converted weights are compared with the source's (both dequantized by gguf.quants)
as RMSE relative to the source tensor's RMS: Q8_0 <= 0.01, Q4_0 <= 0.12, Q4_K (and its Q5_0
fallback) <= 0.06 (measured worst tensors: 0.0065, 0.104, 0.052). Q4_0 and Q8_0 tensors are also
checked byte for byte against gguf.quants.quantize of the dequantized source (the pipeline is
dequantize exactly, then the reference rounding). Copied tensors are byte-identical.
"""
from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf.quants import dequantize as g_dequantize  # noqa: E402
from gguf.quants import quantize as g_quantize  # noqa: E402

from powerinfer_py import quantize  # noqa: E402
from powerinfer_py.errors import FileFormatError, InvalidArgumentError, PowerInferError  # noqa: E402

FILE_TYPE = {"Q4_0": 2, "Q8_0": 7, "Q4_K": 14}
REL_RMSE = {"Q4_0": 0.12, "Q8_0": 0.01, "Q4_K": 0.06}


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def quantized(smollm2_path, tmp_path_factory):
    """{type: path} of SmolLM2 quantized by us, plus the source's hash before quantizing."""
    out = tmp_path_factory.mktemp("quantized")
    before = sha(smollm2_path)
    paths = {t: quantize(smollm2_path, out / f"smollm2.{t.lower()}.gguf", t, n_threads=2) for t in FILE_TYPE}
    assert sha(smollm2_path) == before  # the source is never touched
    return paths


@pytest.fixture(scope="module")
def source(smollm2_path):
    return gguf.GGUFReader(str(smollm2_path))


@pytest.fixture(scope="module")
def readers(quantized):
    """One GGUFReader per quantized file (parsing the 49152-token vocabulary takes seconds)."""
    return {t: gguf.GGUFReader(str(p)) for t, p in quantized.items()}


def field_bytes(field) -> bytes:
    return b"".join(np.asarray(p).tobytes() for p in field.parts)


def expected_type(qtype: str, name: str, src_type: str, n_dims: int) -> str:
    if n_dims == 1:
        return src_type
    if name == "token_embd.weight":  # the tied output head: Q6_K does not fit rows of 576 -> Q8_0
        return "Q8_0"
    if qtype == "Q4_K":
        return "Q4_K" if "ffn_down" in name else "Q5_0"  # rows of 576 are not a multiple of 256
    return qtype


@pytest.mark.parametrize("qtype", list(FILE_TYPE))
def test_metadata_kept(quantized, readers, source, qtype):
    out = readers[qtype]
    src_keys = [k for k in source.fields if not k.startswith("GGUF.")]
    out_keys = [k for k in out.fields if not k.startswith("GGUF.")]
    assert out_keys == src_keys
    for k in src_keys:
        if k == "general.file_type":
            assert out.fields[k].types == [gguf.GGUFValueType.UINT32]
            assert int(out.fields[k].parts[-1][0]) == FILE_TYPE[qtype]
        else:
            assert field_bytes(out.fields[k]) == field_bytes(source.fields[k]), k
    with open(quantized[qtype], "rb") as f:
        assert f.read(4) == b"GGUF"


@pytest.mark.parametrize("qtype", list(FILE_TYPE))
def test_tensor_types_and_shapes(readers, source, qtype):
    out = readers[qtype]
    assert [t.name for t in out.tensors] == [t.name for t in source.tensors]
    for s, t in zip(source.tensors, out.tensors):
        assert list(t.shape) == list(s.shape), s.name
        want = expected_type(qtype, s.name, s.tensor_type.name, len(s.shape))
        assert t.tensor_type.name == want, (s.name, t.tensor_type.name, want)
        if want == s.tensor_type.name:
            assert np.array_equal(np.asarray(t.data), np.asarray(s.data)), s.name


@pytest.mark.parametrize("qtype", list(FILE_TYPE))
def test_weights_close_to_source(readers, source, qtype):
    out = readers[qtype]
    src = {t.name: t for t in source.tensors}
    checked = 0
    for t in out.tensors:
        layer = t.name.split(".")[1] if t.name.startswith("blk.") else None
        if len(t.shape) < 2 or layer not in ("0", "14", "29"):
            continue
        s = src[t.name]
        x = g_dequantize(np.asarray(s.data), s.tensor_type).astype(np.float64)
        y = g_dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
        err = np.sqrt(np.mean((y - x) ** 2)) / np.sqrt(np.mean(x**2))
        assert err <= REL_RMSE[qtype], (t.name, err)
        checked += 1
    assert checked == 21


@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0"])
def test_bytes_equal_reference_rounding(readers, source, qtype):
    out = {t.name: t for t in readers[qtype].tensors}
    for name in ("blk.0.attn_q.weight", "blk.29.ffn_up.weight", "blk.7.ffn_down.weight"):
        s = next(t for t in source.tensors if t.name == name)
        ref = g_quantize(g_dequantize(np.asarray(s.data), s.tensor_type), GT[qtype])
        assert np.array_equal(np.asarray(out[name].data), ref), name


# ---- a small PowerInfer file ------------------------------------------------------------------


def write_pwri_model(path, rng) -> None:
    """A sparse-format model: tied embeddings, ffn_down_t, predictors (fc2 with rows of 40, which
    no 32-block fits), norms; PWRI magic; no general.file_type key."""
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_uint32("llama.block_count", 1)
    w.add_float32("powerinfer.sparse_threshold", 0.25)
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "<s>"])
    w.add_array("test.ints", [1, -2, 3])
    w.add_bool("test.flag", True)
    w.add_string("test.text", "héllo")
    tensors = {
        "token_embd.weight": (64, 256),
        "blk.0.attn_norm.weight": (256,),
        "blk.0.attn_q.weight": (256, 256),
        "blk.0.ffn_up.weight": (512, 256),
        "blk.0.ffn_down_t.weight": (512, 256),
        "blk.0.fc1.weight": (40, 256),
        "blk.0.fc2.weight": (512, 40),
        "output_norm.weight": (256,),
    }
    for name, shape in tensors.items():
        w.add_tensor(name, (rng.standard_normal(shape) * 0.05).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "r+b") as f:
        f.write(b"PWRI")


def read_pwri(path, tmp_path):
    """The gguf package only reads the GGUF magic: read a copy with the magic swapped back."""
    copy = tmp_path / (os.path.basename(path) + ".asgguf")
    shutil.copyfile(path, copy)
    with open(copy, "r+b") as f:
        assert f.read(4) == b"PWRI"
        f.seek(0)
        f.write(b"GGUF")
    return gguf.GGUFReader(str(copy))


def test_pwri_file(tmp_path):
    src = tmp_path / "tiny.powerinfer.gguf"
    write_pwri_model(src, np.random.default_rng(0))
    dst = quantize(src, tmp_path / "tiny.q4.powerinfer.gguf", "q4_0")
    s, t = read_pwri(src, tmp_path), read_pwri(dst, tmp_path)
    for k in s.fields:
        if not k.startswith("GGUF."):
            assert field_bytes(t.fields[k]) == field_bytes(s.fields[k]), k
    assert int(t.fields["general.file_type"].parts[-1][0]) == 2  # added: the source had none
    assert int(t.fields["general.quantization_version"].parts[-1][0]) == 2
    types = {x.name: x.tensor_type.name for x in t.tensors}
    assert types == {
        "token_embd.weight": "Q6_K",  # tied output head: at least Q6_K
        "blk.0.attn_norm.weight": "F32",
        "blk.0.attn_q.weight": "Q4_0",
        "blk.0.ffn_up.weight": "Q4_0",
        "blk.0.ffn_down_t.weight": "Q4_0",
        "blk.0.fc1.weight": "Q4_0",
        "blk.0.fc2.weight": "F16",  # rows of 40: no block type fits
        "output_norm.weight": "F32",
    }
    src_t = {x.name: x for x in s.tensors}
    for x in t.tensors:
        want = g_quantize(np.asarray(src_t[x.name].data), GT[x.tensor_type.name]) if x.tensor_type.name != "Q6_K" \
            else None
        if want is not None:
            assert np.array_equal(np.asarray(x.data), want), x.name
    # quantize_output=False leaves the tied head as it was
    dst2 = quantize(src, tmp_path / "tiny2.gguf", "Q4_0", quantize_output=False)
    t2 = read_pwri(dst2, tmp_path)
    assert {x.name: x.tensor_type.name for x in t2.tensors}["token_embd.weight"] == "F32"


# ---- arguments and failures -------------------------------------------------------------------


def test_type_names(tmp_path, smollm2_path):
    with pytest.raises(ValueError, match="valid types: F32, F16, BF16, Q4_0"):
        quantize(smollm2_path, tmp_path / "x.gguf", "Q4_X")
    with pytest.raises(ValueError, match="valid types"):
        quantize(smollm2_path, tmp_path / "x.gguf", "Q8_K")  # an activation format, not a file type
    with pytest.raises(ValueError, match="valid types"):
        quantize(smollm2_path, tmp_path / "x.gguf", 5)
    assert list(tmp_path.iterdir()) == []


def test_dst_is_src_refused(tmp_path, smollm2_path):
    src = tmp_path / "m.gguf"
    shutil.copyfile(smollm2_path, src)
    before = sha(src)
    with pytest.raises(InvalidArgumentError, match="destination is the source"):
        quantize(src, src, "Q8_0")
    os.link(src, tmp_path / "hardlink.gguf")
    with pytest.raises(InvalidArgumentError, match="destination is the source"):
        quantize(src, tmp_path / "hardlink.gguf", "Q8_0")
    with pytest.raises(InvalidArgumentError, match="destination is the source"):
        quantize(src, tmp_path / "." / "m.gguf", "Q8_0")
    assert sha(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hardlink.gguf", "m.gguf"]


def test_failures_leave_nothing_behind(tmp_path, smollm2_path):
    with pytest.raises(PowerInferError):
        quantize(smollm2_path, tmp_path / "missing_dir" / "out.gguf", "Q4_0")
    (tmp_path / "a_dir").mkdir()
    with pytest.raises(PowerInferError):  # the final rename over a directory fails
        quantize(smollm2_path, tmp_path / "a_dir", "Q8_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir"]
    assert list((tmp_path / "a_dir").iterdir()) == []
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(open(smollm2_path, "rb").read(5000))
    with pytest.raises(FileFormatError):
        quantize(bad, tmp_path / "out.gguf", "Q4_0")
    with pytest.raises(PowerInferError):
        quantize(tmp_path / "no_such.gguf", tmp_path / "out.gguf", "Q4_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir", "truncated.gguf"]


def write_small_model(path, tensors: dict) -> None:
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_file_type(1)
    for name, data in tensors.items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_untied_output_head_and_k_types(tmp_path):
    """With output.weight present it is the head (Q6_K for a 4-bit target) and token_embd takes
    the target; rows of 256 fit every K-quant; F16 sources are read too."""
    rng = np.random.default_rng(1)
    src = tmp_path / "m.gguf"
    write_small_model(src, {
        "token_embd.weight": (rng.standard_normal((32, 512)) * 0.02).astype(np.float16),
        "blk.0.attn_q.weight": (rng.standard_normal((512, 512)) * 0.02).astype(np.float32),
        "output.weight": (rng.standard_normal((32, 512)) * 0.02).astype(np.float16),
    })
    for qtype, ftype, head in (("Q4_K", 14, "Q6_K"), ("Q2_K", 10, "Q6_K"), ("Q5_K", 16, "Q6_K"),
                               ("Q6_K", 18, "Q6_K"), ("Q3_K", 11, "Q6_K"), ("BF16", 32, "BF16"),
                               ("Q8_0", 7, "Q8_0"), ("F16", 1, "F16")):
        out = gguf.GGUFReader(str(quantize(src, tmp_path / f"m.{qtype}.gguf", qtype)))
        types = {t.name: t.tensor_type.name for t in out.tensors}
        assert types == {"token_embd.weight": qtype, "blk.0.attn_q.weight": qtype, "output.weight": head}
        assert int(out.fields["general.file_type"].parts[-1][0]) == ftype
        if qtype == "F16":  # F16 source tensors are copied, the F32 one converted by round to nearest even
            t = {t.name: t for t in out.tensors}["blk.0.attn_q.weight"]
            src_t = {t.name: t for t in gguf.GGUFReader(str(src)).tensors}["blk.0.attn_q.weight"]
            assert np.array_equal(np.asarray(t.data), np.asarray(src_t.data).astype(np.float16))


def test_nan_weights_refused(tmp_path):
    w = np.random.default_rng(2).standard_normal((64, 256)).astype(np.float32)
    w[17, 100] = np.nan
    src = tmp_path / "nan.gguf"
    write_small_model(src, {"blk.0.ffn_up.weight": w})
    with pytest.raises(FileFormatError, match="blk.0.ffn_up.weight holds NaN"):
        quantize(src, tmp_path / "out.gguf", "Q4_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.gguf"]


def test_same_bytes_for_any_thread_count(tmp_path):
    src = tmp_path / "tiny.powerinfer.gguf"
    write_pwri_model(src, np.random.default_rng(3))
    outs = [quantize(src, tmp_path / f"q{n}.gguf", "Q4_K", n_threads=n) for n in (1, 3, 0)]
    assert sha(outs[0]) == sha(outs[1]) == sha(outs[2])


def test_progress_reports_rise_to_one(smollm2_path, tmp_path):
    seen = []
    quantize(smollm2_path, tmp_path / "q.gguf", "Q8_0", n_threads=2, progress=seen.append)
    assert seen and seen == sorted(seen) and seen[-1] == 1.0
    assert all(0.0 < f <= 1.0 for f in seen)


def test_progress_false_stops_and_writes_nothing(smollm2_path, tmp_path):
    from powerinfer_py.errors import AbortedError

    dst = tmp_path / "stopped.gguf"
    calls = []

    def stop_at_a_quarter(fraction):
        calls.append(fraction)
        return fraction < 0.25

    with pytest.raises(AbortedError, match="stopped by the progress callback"):
        quantize(smollm2_path, dst, "Q4_0", n_threads=1, progress=stop_at_a_quarter)
    assert calls[-1] >= 0.25 and max(calls) < 0.5  # stopped soon after the answer
    assert not dst.exists() and list(tmp_path.iterdir()) == []
