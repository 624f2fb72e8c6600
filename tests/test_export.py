"""powerinfer_py.tools.export: a dense ReLU llama GGUF (written here with the gguf package) and
random predictors in, PowerInfer's sparse layout out.

Checked: the PWRI magic; tensor names, order, dims and types exactly as PowerInfer's layout has
them (the expected lists are spelled out here, not taken from the exporter's constants); ffn_down_t
holding the transpose of ffn_down; every metadata key copied; and the engine loading and running
the result.

Tolerances (times max |logit|; the reasoning of tests/test_sparse_forward.py, bounds set about 10x
above what this model shows, since the f16 export of this one small model errs far less than the
worst case that file allows for):
- same engine, same file, predictor mode with every neuron active against dense mode: 1e-4;
- engine against the float64 numpy reference: F32 weights 1e-4; the f16 export 5e-3 (f16 weights
  and activations; seen 2e-4 against its own values, 4e-4 against the F32 source's); the q4 export
  3e-2 against its own values (8-bit activations; seen 6e-3);
- engine on the F32 source against the engine on the f16 export: 5e-3.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

from powerinfer_py._context import Context  # noqa: E402
from powerinfer_py._model import Model  # noqa: E402
from powerinfer_py.errors import InvalidArgumentError  # noqa: E402
from powerinfer_py.sparse_gguf import _vocab, add_small_model_hparams, set_magic  # noqa: E402
from powerinfer_py.tools import export as ex  # noqa: E402

from reference_llama import ReferenceLlama  # noqa: E402

N_EMBD, N_FF, N_LAYER, N_HEAD, N_VOCAB = 64, 256, 2, 4, 300
HIDDEN = [32, 64]  # predictor widths differ between layers, as in published files
TOKENS = [5, 77, 260, 3, 141, 299, 18, 64, 200, 9]
BLOCK = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down_t", "attn_norm", "ffn_norm")


# ----------------------------------------------------------------------------- inputs
def write_source(path, *, wtype="F32", tied=True, activation="relu", arch="llama", n_embd=N_EMBD,
                 drop=(), extra=(), seed=0):
    """A dense ReLU llama: ffn_down dims [n_ff, n_embd]; 2-D weights in wtype, norms F32."""
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("dense relu test model")
    add_small_model_hparams(w, arch=arch, n_embd=n_embd, n_ff=N_FF, n_layer=N_LAYER, n_head=N_HEAD,
                            n_head_kv=N_HEAD // 2)
    if activation is not None:
        w.add_string("powerinfer.ffn_activation", activation)
    if wtype not in ("F32", "F16"):
        w.add_uint32("general.quantization_version", 2)
    w.add_array("test.some_ints", [3, 1, 4, 1, 5])
    w.add_bool("test.flag", True)
    _vocab(w, N_VOCAB)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def vec(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    kv = n_embd // N_HEAD * (N_HEAD // 2)
    tensors = {"token_embd.weight": rng.standard_normal((N_VOCAB, n_embd)).astype(np.float32)}
    for i in range(N_LAYER):
        b = f"blk.{i}."
        tensors.update({b + "attn_norm.weight": vec(n_embd), b + "attn_q.weight": mat(n_embd, n_embd),
                        b + "attn_k.weight": mat(kv, n_embd), b + "attn_v.weight": mat(kv, n_embd),
                        b + "attn_output.weight": mat(n_embd, n_embd), b + "ffn_norm.weight": vec(n_embd),
                        b + "ffn_gate.weight": mat(N_FF, n_embd), b + "ffn_up.weight": mat(N_FF, n_embd),
                        b + "ffn_down.weight": mat(n_embd, N_FF) * np.float32(np.sqrt(n_embd / N_FF))})
    tensors["output_norm.weight"] = vec(n_embd)
    if not tied:
        tensors["output.weight"] = mat(N_VOCAB, n_embd)
    tensors.update(dict(extra))
    for name, a in tensors.items():
        if name in drop:
            continue
        if a.ndim == 1 or wtype == "F32":
            w.add_tensor(name, a)
        elif wtype == "F16":
            w.add_tensor(name, a.astype(np.float16))
        else:
            raw = quantize(a, GT[wtype])
            w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=GT[wtype])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_predictors(path, *, hidden=HIDDEN, n_embd=N_EMBD, n_ff=N_FF, threshold=0.25, seed=1, change=None):
    rng = np.random.default_rng(seed)
    arrays = {"n_layer": np.int64(len(hidden)), "threshold": np.float32(threshold)}
    for il, h in enumerate(hidden):
        arrays[f"fc1_{il}"] = (rng.standard_normal((h, n_embd)) / np.sqrt(n_embd)).astype(np.float32)
        arrays[f"fc2_{il}"] = (rng.standard_normal((n_ff, h)) / np.sqrt(h)).astype(np.float32)
    arrays.update(change or {})
    np.savez(path, **arrays)
    return path


def expected_layout(n_layer=N_LAYER, predictors=True):
    """PowerInfer's order: token_embd, per layer BLOCK, output_norm, output, then every fc1/fc2."""
    names = ["token_embd.weight"]
    for i in range(n_layer):
        names += [f"blk.{i}.{p}.weight" for p in BLOCK]
    names += ["output_norm.weight", "output.weight"]
    if predictors:
        for i in range(n_layer):
            names += [f"blk.{i}.fc1.weight", f"blk.{i}.fc2.weight"]
    return names


def expected_dims(name, n_embd=N_EMBD):
    kv = n_embd // N_HEAD * (N_HEAD // 2)
    if name.endswith("norm.weight"):
        return (n_embd,)
    if ".fc1." in name:
        return (n_embd, HIDDEN[int(name.split(".")[1])])
    if ".fc2." in name:
        return (HIDDEN[int(name.split(".")[1])], N_FF)
    if name.endswith(("ffn_gate.weight", "ffn_up.weight", "ffn_down_t.weight")):
        return (n_embd, N_FF)
    if name in ("token_embd.weight", "output.weight"):
        return (n_embd, N_VOCAB)
    if name.endswith(("attn_k.weight", "attn_v.weight")):
        return (n_embd, kv)
    return (n_embd, n_embd)


def reader_of(path, tmp_path):
    """The gguf package's reader over a GGUF-magic copy (it rejects PWRI, as PowerInfer's does)."""
    copy = tmp_path / (path.name + ".gguf-magic")
    shutil.copy(path, copy)
    set_magic(copy, b"GGUF")
    return gguf.GGUFReader(str(copy))


def values(reader, name):
    t = next(t for t in reader.tensors if t.name == name)
    return dequantize(np.asarray(t.data), GT(t.tensor_type)).astype(np.float32).reshape(
        tuple(int(d) for d in reversed(t.shape)))


class ReluReference(ReferenceLlama):
    """The numpy llama of reference_llama with PowerInfer's ReLU FFN, ReLU(gate) * up, over a dense
    file (ffn_down) or over a file in PowerInfer's layout with the GGUF magic (ffn_down_t)."""

    def ffn(self, il, x):
        b = f"blk.{il}."
        xn = self.rms(x, self.w(b + "ffn_norm.weight"))
        h = np.maximum(xn @ self.w(b + "ffn_gate.weight").T, 0.0) * (xn @ self.w(b + "ffn_up.weight").T)
        if b + "ffn_down_t.weight" in self.tensors:
            return h @ self.w(b + "ffn_down_t.weight")
        return h @ self.w(b + "ffn_down.weight").T


def engine_logits(path, mode, threshold=None):
    with Model(str(path), sparse_mode=mode, sparse_threshold=threshold) as m:
        with Context(m, n_ctx=64, n_batch=32, n_threads=2, n_threads_batch=2, logits_all=True, kv_type="f32") as ctx:
            ctx.decode(TOKENS)
            return ctx.all_logits()


def close(got, want, rel):
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * np.abs(want).max())


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The F32 tied source, its predictors, and its f16 export (PWRI and GGUF magic)."""
    d = tmp_path_factory.mktemp("export")
    src = write_source(d / "relu.f32.gguf")
    pred = write_predictors(d / "pred.npz")
    f16 = ex.export_model(src, d / "relu.powerinfer.gguf", predictors=pred, variant="f16")
    f16_gguf = ex.export_model(src, d / "relu.dense-check.gguf", predictors=pred, variant="f16", magic=b"GGUF")
    return {"dir": d, "src": src, "pred": pred, "f16": f16, "f16_gguf": f16_gguf}


# ----------------------------------------------------------------------------- layout
def test_f16_layout_and_values(made, tmp_path):
    res, src = made["f16"], gguf.GGUFReader(str(made["src"]))
    assert res.path.read_bytes()[:4] == b"PWRI" and not res.path.with_name(res.path.name + ".tmp").exists()
    out = reader_of(res.path, tmp_path)
    names = [t.name for t in out.tensors]
    assert names == expected_layout()
    for t in out.tensors:
        assert tuple(int(d) for d in t.shape) == expected_dims(t.name), t.name
        want = "F32" if t.name.endswith("norm.weight") else "F16"
        assert GT(t.tensor_type).name == want, t.name
    assert res.tensors == {n: ("F32" if n.endswith("norm.weight") else "F16") for n in names}
    # ffn_down_t is the transpose of ffn_down (f16-rounded F32 values: exact)
    for il in range(N_LAYER):
        down = values(src, f"blk.{il}.ffn_down.weight")
        np.testing.assert_array_equal(values(out, f"blk.{il}.ffn_down_t.weight"),
                                      down.T.astype(np.float16).astype(np.float32))
    # the tied source's output head is written out as token_embd
    np.testing.assert_array_equal(values(out, "output.weight"), values(out, "token_embd.weight"))
    np.testing.assert_array_equal(values(out, "blk.1.attn_norm.weight"), values(src, "blk.1.attn_norm.weight"))
    with np.load(made["pred"]) as z:
        for il in range(N_LAYER):
            for fc in ("fc1", "fc2"):
                np.testing.assert_array_equal(values(out, f"blk.{il}.{fc}.weight"),
                                              z[f"{fc}_{il}"].astype(np.float16).astype(np.float32))


def test_metadata_copied(made, tmp_path):
    src = gguf.GGUFReader(str(made["src"]))
    out = reader_of(made["f16"].path, tmp_path)
    skip = ("GGUF.tensor_count", "GGUF.kv_count", "general.file_type")
    for key, fld in src.fields.items():
        if key in skip:
            continue
        assert key in out.fields, key
        assert out.fields[key].types == fld.types, key
        assert out.fields[key].contents() == fld.contents(), key
    assert len(src.fields["tokenizer.ggml.tokens"].contents()) == N_VOCAB
    assert out.fields["general.file_type"].contents() == 1  # MOSTLY_F16
    assert out.fields["powerinfer.sparse_threshold"].types == [gguf.GGUFValueType.FLOAT32]
    assert out.fields["powerinfer.sparse_threshold"].contents() == pytest.approx(0.25)
    assert set(out.fields) - set(src.fields) == {"powerinfer.sparse_threshold", "general.file_type"}
    with Model(str(made["f16"].path), vocab_only=True) as m:  # our reader: PWRI, sparse
        assert m.is_sparse_file and m.arch == "llama"
        assert [t.name for t in m.tensors] == expected_layout()


def test_q4_layout(made, tmp_path):
    res = ex.export_model(made["src"], tmp_path / "m.q4.powerinfer.gguf", predictors=made["pred"], variant="q4")
    out = reader_of(res.path, tmp_path)
    src = gguf.GGUFReader(str(made["src"]))
    assert [t.name for t in out.tensors] == expected_layout()
    for t in out.tensors:
        want = ("F32" if t.name.endswith("norm.weight")
                else "Q8_0" if t.name == "output.weight"  # n_embd 64: no whole Q6_K blocks of 256
                else "Q4_0")
        assert GT(t.tensor_type).name == want, t.name
        assert tuple(int(d) for d in t.shape) == expected_dims(t.name), t.name
    assert out.fields["general.file_type"].contents() == 2  # MOSTLY_Q4_0
    assert out.fields["general.quantization_version"].contents() == 2
    for il in range(N_LAYER):
        down_t = values(src, f"blk.{il}.ffn_down.weight").T
        got = values(out, f"blk.{il}.ffn_down_t.weight")
        # the Q4_0 of the transpose, and within Q4_0's error of it (a step, absmax / 8, at most)
        np.testing.assert_array_equal(got, dequantize(quantize(np.ascontiguousarray(down_t), GT.Q4_0), GT.Q4_0))
        assert np.abs(got - down_t).max() <= np.abs(down_t).max() / 8 * 1.001
    assert res.notes == []


def test_types_of_each_variant():
    """PowerInfer's quantizer rules (facts §1.5): output Q6_K when rows fill blocks of 256, else Q8_0;
    predictors Q4_0 in q4 files, Q5_0 for other quantized targets, F16 in f16 files."""
    q4, q8, f16 = ex.VARIANTS["q4"], ex.VARIANTS["q8_0"], ex.VARIANTS["f16"]
    assert (q4.weights, q4.predictors, q4.output(256, "llama"), q4.output(64, "llama")) == ("Q4_0", "Q4_0", "Q6_K",
                                                                                          "Q8_0")
    assert (q8.weights, q8.predictors, q8.output(256, "llama")) == ("Q8_0", "Q5_0", "Q8_0")
    assert (f16.weights, f16.predictors, f16.output(256, "llama")) == ("F16", "F16", "F16")


def test_q4_output_q6_k_and_quantized_source(tmp_path):
    """n_embd 256: output in Q6_K (the engine's row quantizer). The source in Q8_0, untied: its
    tensors are dequantized before ffn_down is transposed; output comes from output.weight."""
    src = write_source(tmp_path / "q8.gguf", wtype="Q8_0", tied=False, n_embd=256, seed=4)
    res = ex.export_model(src, tmp_path / "o.gguf", variant="q4", magic=b"GGUF")
    assert res.tensors["output.weight"] == "Q6_K" and res.tensors["blk.0.ffn_down_t.weight"] == "Q4_0"
    out, s = gguf.GGUFReader(str(res.path)), gguf.GGUFReader(str(src))
    down_t = values(s, "blk.1.ffn_down.weight").T
    np.testing.assert_array_equal(values(out, "blk.1.ffn_down_t.weight"),
                                  dequantize(quantize(np.ascontiguousarray(down_t), GT.Q4_0), GT.Q4_0))
    head = values(s, "output.weight")
    assert np.abs(values(out, "output.weight") - head).max() < 0.05 * np.abs(head).max()
    # a Q8_0 export of a Q8_0 source copies the big matrices byte for byte
    res8 = ex.export_model(src, tmp_path / "o8.gguf", variant="q8_0", magic=b"GGUF")
    out8 = gguf.GGUFReader(str(res8.path))
    for name in ("blk.0.ffn_gate.weight", "token_embd.weight", "output.weight"):
        a = next(t for t in out8.tensors if t.name == name)
        b = next(t for t in s.tensors if t.name == name)
        assert np.array_equal(np.asarray(a.data), np.asarray(b.data)), name


# ----------------------------------------------------------------------------- the engine runs it
def test_engine_runs_the_f16_export(made):
    path = made["f16"].path
    dense = engine_logits(path, "dense")
    # every neuron predicted active: the sparse path gives the dense logits
    close(engine_logits(path, "predictor", threshold=-1e30), dense, 1e-4)
    close(engine_logits(path, "oracle"), dense, 1e-4)
    # the same tensors behind the GGUF magic (read as a dense-layout ReLU model)
    close(engine_logits(made["f16_gguf"].path, "dense"), dense, 1e-4)
    # against numpy over the exported values, and over the source's
    close(dense, ReluReference(made["f16_gguf"].path).forward(TOKENS), 5e-3)
    close(dense, ReluReference(made["src"]).forward(TOKENS), 5e-3)
    # the source itself, read as ReLU through powerinfer.ffn_activation
    src_logits = engine_logits(made["src"], "dense")
    close(src_logits, ReluReference(made["src"]).forward(TOKENS), 1e-4)
    close(dense, src_logits, 5e-3)
    # auto mode: the predictors at the file's threshold (0.25), which switch neurons off
    auto = engine_logits(path, "auto")
    assert np.array_equal(auto, engine_logits(path, "predictor", threshold=0.25))
    assert np.abs(auto - dense).max() > 1e-3 * np.abs(dense).max()


def test_tied_output(made, tmp_path):
    """--tie-output leaves output.weight out of a tied source's export: the same logits, a smaller file."""
    res = ex.export_model(made["src"], tmp_path / "tied.powerinfer.gguf", predictors=made["pred"], variant="f16",
                          tie_output=True)
    assert "output.weight" not in res.tensors
    assert res.path.stat().st_size < made["f16"].path.stat().st_size
    assert np.array_equal(engine_logits(res.path, "dense"), engine_logits(made["f16"].path, "dense"))


def test_engine_runs_the_q4_export(made, tmp_path):
    res = ex.export_model(made["src"], tmp_path / "m.gguf", predictors=made["pred"], variant="q4", magic=b"GGUF")
    dense = engine_logits(res.path, "dense")
    close(dense, ReluReference(res.path).forward(TOKENS), 3e-2)
    close(engine_logits(res.path, "predictor", threshold=-1e30), dense, 1e-4)


def test_bamboo(made, tmp_path):
    """bamboo is ReLU(gate) * ReLU(up) by its architecture: no key needed, the same layout."""
    src = write_source(tmp_path / "bamboo.gguf", arch="bamboo", activation=None)
    res = ex.export_model(src, tmp_path / "b.powerinfer.gguf", predictors=made["pred"])
    assert list(res.tensors) == expected_layout()
    with Model(str(res.path), vocab_only=True) as m:
        assert m.arch == "bamboo" and "powerinfer.ffn_activation" not in m.metadata
    dense = engine_logits(res.path, "dense")
    close(engine_logits(res.path, "predictor", threshold=-1e30), dense, 1e-4)
    assert np.abs(dense - engine_logits(made["f16"].path, "dense")).max() > 1e-2  # not llama's FFN
    _fails(tmp_path, "bamboo model computes ReLU", write_source(tmp_path / "b2.gguf", arch="bamboo"))


def test_no_predictors(made, tmp_path):
    res = ex.export_model(made["src"], tmp_path / "np.powerinfer.gguf", variant="f16")
    assert list(res.tensors) == expected_layout(predictors=False) and res.threshold is None
    with Model(str(res.path), vocab_only=True) as m:
        assert m.is_sparse_file and "powerinfer.sparse_threshold" not in m.metadata
    close(engine_logits(res.path, "auto"), engine_logits(made["f16"].path, "dense"), 1e-6)
    with pytest.raises(InvalidArgumentError, match="predictor"):
        Model(str(res.path), sparse_mode="predictor")


# ----------------------------------------------------------------------------- refusals
def _fails(tmp_path, match, src, **kw):
    out = tmp_path / "out.powerinfer.gguf"
    with pytest.raises(ValueError, match=match):
        ex.export_model(src, out, **kw)
    assert not out.exists() and not list(tmp_path.glob("out.powerinfer.gguf*"))


def test_refuses_bad_sources(made, tmp_path):
    pred = made["pred"]
    _fails(tmp_path, "already in PowerInfer's sparse layout", made["f16"].path, predictors=pred)
    _fails(tmp_path, "already in PowerInfer's layout", made["f16_gguf"].path, predictors=pred)
    _fails(tmp_path, "architecture 'qwen2'", write_source(tmp_path / "q.gguf", arch="qwen2"), predictors=pred)
    silu = write_source(tmp_path / "silu.gguf", activation=None)
    _fails(tmp_path, "SiLU.*--force-relu", silu, predictors=pred)
    _fails(tmp_path, "SiLU", write_source(tmp_path / "silu2.gguf", activation="silu"), predictors=pred)
    _fails(tmp_path, r"layer 1: tensor blk\.1\.ffn_up\.weight is missing",
           write_source(tmp_path / "hole.gguf", drop=("blk.1.ffn_up.weight",)), predictors=pred)
    _fails(tmp_path, r"rope_freqs\.weight", write_source(
        tmp_path / "extra.gguf", extra={"rope_freqs.weight": np.ones(8, np.float32)}), predictors=pred)
    _fails(tmp_path, "not a GGUF file", made["pred"])
    # forced: written, and the output says relu (the engine would otherwise read it as SiLU)
    res = ex.export_model(silu, tmp_path / "forced.gguf", predictors=pred, force_relu=True)
    with Model(str(res.path), vocab_only=True) as m:
        assert m.metadata["powerinfer.ffn_activation"] == "relu"


@pytest.mark.parametrize("change,match", [
    ({"fc1_1": np.zeros((64, 48), np.float32)}, r"layer 1: fc1_1 has shape \(64, 48\), expected \(H, 64\)"),
    ({"fc2_0": np.zeros((256, 16), np.float32)}, r"layer 0: fc2_0 has shape \(256, 16\), expected \(256, 32\)"),
    ({"fc2_1": np.zeros((200, 64), np.float32)}, r"layer 1: fc2_1 has shape \(200, 64\), expected \(256, 64\)"),
    ({"n_layer": np.int64(3)}, r"layer 2 is missing"),
    ({"n_layer": np.int64(1)}, r"1 layers of predictors for a model of 2 layers"),
    ({"fc1_0": np.full((32, 64), np.nan, np.float32)}, r"layer 0: fc1_0 holds NaN"),
])
def test_refuses_bad_predictors(made, tmp_path, change, match):
    pred = write_predictors(tmp_path / "bad.npz", change=change)
    _fails(tmp_path, match, made["src"], predictors=pred)


def test_failed_write_leaves_nothing(made, tmp_path, monkeypatch):
    def broken(type_name, values):
        raise OSError("disk full")

    monkeypatch.setattr(ex, "encode", broken)
    out = tmp_path / "x.powerinfer.gguf"
    with pytest.raises(OSError, match="disk full"):
        ex.export_model(made["src"], out, predictors=made["pred"])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- command line
def test_main(made, tmp_path, capsys):
    out = tmp_path / "cli.q4.powerinfer.gguf"
    rc = ex.main([str(made["src"]), "--predictors", str(made["pred"]), "--out", str(out), "--type", "q4",
                  "--threshold", "0.5", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert '"n_tensors": %d' % len(expected_layout()) in capsys.readouterr().out
    with Model(str(out), vocab_only=True) as m:
        assert float(m.metadata["powerinfer.sparse_threshold"]) == pytest.approx(0.5)
    assert ex.default_out("a/relu.f32.gguf", "q4").as_posix() == "a/relu.f32.q4.powerinfer.gguf"

    assert ex.main([str(made["f16"].path), "--no-predictors", "--out", str(tmp_path / "y.gguf")]) == 2
    assert "already in PowerInfer's sparse layout" in capsys.readouterr().err
    assert ex.main([str(made["src"]), "--out", str(tmp_path / "y.gguf")]) == 2  # neither predictors nor none
    assert "--predictors" in capsys.readouterr().err
    assert ex.main([str(made["src"]), "--no-predictors", "--threshold", "1", "--out", str(tmp_path / "y.gguf")]) == 2
    assert "--threshold needs predictors" in capsys.readouterr().err
    assert ex.main([str(tmp_path / "none.gguf"), "--no-predictors"]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "y.gguf").exists()
