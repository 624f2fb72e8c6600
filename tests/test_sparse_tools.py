"""The engine's side of the sparse-model tools: the powerinfer.ffn_activation key (ReLU models in
the plain dense layout), recording predictor training data (pi_context_record_ffn), the activation
profile (powerinfer_py.tools.profile) and the predictor trainer (powerinfer_py.tools.train_predictor,
which needs torch and is skipped without it). Synthetic F32 models from write_sparse_gguf against
the numpy reference of test_sparse_forward.py: with F32 weights and KV cache the engine's firing
neurons equal the reference's but for the odd gate within float rounding of zero.
"""
from __future__ import annotations

import numpy as np
import pytest

from powerinfer_py._context import Context
from powerinfer_py._model import Model
from powerinfer_py.errors import FileFormatError
from powerinfer_py.sparse_gguf import add_small_model_hparams, write_sparse_gguf

from test_sparse_forward import TOKENS, SparseReference

TEXT = "The quick brown fox jumps over the lazy dog. " * 3


def write_dense_relu(spec, path, activation="relu"):
    """The spec's llama model in the plain dense layout (ffn_down, no predictors, GGUF magic), with
    powerinfer.ffn_activation = activation (None: no key)."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    add_small_model_hparams(w, arch="llama", n_embd=spec.n_embd, n_ff=spec.n_ff, n_layer=spec.n_layer,
                            n_head=spec.n_head, n_head_kv=spec.n_head_kv)
    if activation is not None:
        w.add_string("powerinfer.ffn_activation", activation)
    for name in spec.order:
        if ".fc1." in name or ".fc2." in name:
            continue
        value = np.ascontiguousarray(spec.weights[name], dtype=np.float32)
        if name.endswith("ffn_down_t.weight"):
            name, value = name.replace("ffn_down_t", "ffn_down"), np.ascontiguousarray(value.T)
        w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def logits(path, **model_kw):
    with Model(str(path), **model_kw) as m:
        with Context(m, n_ctx=64, n_batch=32, n_threads=2, logits_all=True, kv_type="f32") as ctx:
            ctx.decode(TOKENS)
            return ctx.all_logits()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return write_sparse_gguf(tmp_path_factory.mktemp("tools") / "m.powerinfer.gguf", arch="llama", wtype="F32", seed=3)


def test_ffn_activation_key_makes_a_dense_file_relu(spec, tmp_path):
    want = SparseReference(spec).forward(TOKENS)  # ReLU(gate) * up
    relu = logits(write_dense_relu(spec, tmp_path / "relu.gguf"))
    np.testing.assert_allclose(relu, want, rtol=0, atol=1e-4 * np.abs(want).max())
    silu = logits(write_dense_relu(spec, tmp_path / "silu.gguf", activation=None))  # no key: SiLU
    assert np.abs(silu - want).max() > 0.1 * np.abs(want).max()
    with Model(str(tmp_path / "relu.gguf"), sparse_mode="oracle"):  # a ReLU model: the oracle may run
        pass
    with pytest.raises(FileFormatError, match="ffn_activation"):
        Model(str(write_dense_relu(spec, tmp_path / "bad.gguf", activation="gelu")))


@pytest.mark.parametrize("mode", ["dense", "predictor", "oracle"])
@pytest.mark.parametrize("one_by_one", [False, True])
def test_recording_gives_the_references_inputs_and_firing(spec, mode, one_by_one):
    """In every mode the recorded flags are the dense truth (recording computes every neuron) and
    x is the residual before the FFN norm; a full buffer stops recording."""
    ref = SparseReference(spec, threshold=0.5 if mode == "predictor" else None)
    ref.forward(TOKENS)
    with Model(str(spec.path), sparse_mode=mode, sparse_threshold=0.5 if mode == "predictor" else None) as m:
        with Context(m, n_ctx=64, n_batch=32, n_threads=2, kv_type="f32") as ctx:
            cap = len(TOKENS) - 2
            x = np.zeros((cap, spec.n_layer, spec.n_embd), np.float32)
            fired = np.zeros((cap, spec.n_layer, spec.n_ff), np.uint8)
            ctx.record_ffn(x, fired)
            if one_by_one:
                for t in TOKENS:
                    ctx.decode([t])
            else:
                ctx.decode(TOKENS)
            assert ctx.n_recorded() == cap
    for il, r in enumerate(ref.layers):
        np.testing.assert_allclose(x[:, il], r["x"][:cap], rtol=0, atol=1e-4 * np.abs(r["x"]).max())
        mismatch = (fired[:, il].astype(bool) != r["fires"][:cap]).sum()
        assert mismatch <= 2, (il, mismatch)


def test_profile_counts_equal_the_reference(spec):
    from powerinfer_py.tools.profile import profile_counts, summary

    ref = SparseReference(spec)
    prof = profile_counts(str(spec.path), [TEXT], n_ctx=256, progress=False)  # one window
    assert prof.n_layer == spec.n_layer and prof.n_ff == spec.n_ff
    # the same tokens through the reference (the engine's tokenizer)
    from powerinfer_py import Llama

    with Llama(str(spec.path), vocab_only=True, verbose=False) as llm:
        ids = llm.tokenize(TEXT.encode(), add_bos=True)
    assert prof.n_tokens == len(ids) <= 256
    ref.forward(ids)
    for il, r in enumerate(ref.layers):
        want = r["fires"].sum(axis=0)
        assert np.abs(prof.counts[il] - want).sum() <= 2, il
    s = summary(prof)
    assert 0 < s["layers"][0]["density"] < 1 and s["layers"][0]["hot20_share"] >= 0.2


def test_profile_round_trip_and_bad_input(spec, tmp_path, capsys):
    from powerinfer_py.tools import profile

    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    out = tmp_path / "p.npz"
    assert profile.main([str(spec.path), "--text", str(text), "--out", str(out), "--n-ctx", "64"]) == 0
    from powerinfer_py.tools.activation_profile import load_profile_npz

    prof = load_profile_npz(str(out))
    assert prof.n_layer == spec.n_layer and len(prof.counts) == spec.n_layer and prof.n_tokens > 0
    assert profile.main([str(spec.path), "--text", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_profile_refuses_a_silu_model(tmp_path):
    from tiny_llama import write_tiny_llama

    from powerinfer_py.tools.profile import profile_counts

    with pytest.raises(ValueError, match="SiLU"):
        profile_counts(str(write_tiny_llama(tmp_path / "tiny.gguf")), [TEXT], progress=False)


def test_train_predictor_on_recorded_data(spec, tmp_path):
    torch = pytest.importorskip("torch", reason="train-predictor needs torch (pip install '.[train]')")
    from powerinfer_py.tools.train_predictor import evaluate, record, train_predictors

    x, fired, layers = record(str(spec.path), [TEXT * 20], n_tokens=600, n_ctx=64, progress=False)
    assert x.shape[1:] == (spec.n_layer, spec.n_embd) and len(x) >= 100 and layers == list(range(spec.n_layer))
    arrays, report = train_predictors(x, fired, layers, widths=[64], recall=0.9, epochs=3, progress=False)
    for il in layers:
        assert arrays[f"fc1_{il}"].shape == (64, spec.n_embd) and arrays[f"fc2_{il}"].shape == (spec.n_ff, 64)
        ev = evaluate(arrays[f"fc1_{il}"], arrays[f"fc2_{il}"], x[:, il], fired[:, il])
        assert ev["recall"] > 0.5 and 0 < ev["predicted_density"] <= 1
    assert len(report["layers"]) == spec.n_layer
    del torch
