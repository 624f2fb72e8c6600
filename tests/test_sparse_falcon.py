"""Falcon in PowerInfer's sparse layout (ReluFalcon): files from write_sparse_gguf(arch="falcon")
against a float64 numpy forward pass, in the modes dense, predictor and oracle.

Falcon's block differs from llama's in four ways (forward_llama.cpp marks them): LayerNorm with a
bias, one fused attn_qkv matrix whose rows are [all Q | all K | all V], NeoX RoPE (pairs i and
i + n_rot/2), and attention and FFN side by side on the layer input, the FFN through its own
LayerNorm attn_norm_2 when the model has one (Falcon-40B), else through the attention's. The FFN is
ReLU(up x) with no gate, the down projection transposed (ffn_down_t), and the predictor reads the
layer input.

Tolerances as in test_sparse_forward.py: F32 weights and KV cache 1e-4 of max |logit|, F16 2e-2,
the 8-bit types 6e-2; the same engine in two modes 1e-4.
"""
from __future__ import annotations

import numpy as np
import pytest

from powerinfer_py._model import Model
from powerinfer_py.errors import UnsupportedError
from powerinfer_py.sparse_gguf import write_sparse_gguf

from test_sparse_forward import TOKENS, close, engine_logits  # f32 KV cache, all logits


class FalconReference:
    """The falcon forward pass over a SparseModelSpec's stored values (float64), with the
    predictor's mask when threshold is set."""

    def __init__(self, spec, threshold=None):
        self.spec, self.threshold = spec, threshold
        self.W = {k: v.astype(np.float64) for k, v in spec.weights.items()}
        self.eps = 1e-5
        self.layers: list[dict] = []

    def ln(self, x, name):
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.W[name + ".weight"] + self.W[name + ".bias"]

    @staticmethod
    def rope_neox(x, pos, base=10000.0):
        """x: (n_tok, n_heads, head_dim), rotating (x[i], x[i + half]) for i < half."""
        hd = x.shape[-1]
        half = hd // 2
        ang = pos[:, None] * base ** (-2.0 * np.arange(half) / hd)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., :half], x[..., half:]
        return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)

    def predictor(self, b, x):
        """fc2 · ReLU(fc1 · x), each input rounded as the engine rounds it for the predictor's type
        (to f16 for F16 weights, as ggml does), so that scores near the threshold agree."""
        rnd = (lambda a: a.astype(np.float16).astype(np.float64)) if self.spec.types[b + "fc1.weight"] == "F16" \
            else (lambda a: a)
        W = self.W
        return rnd(np.maximum(rnd(x) @ W[b + "fc1.weight"].T, 0.0)) @ W[b + "fc2.weight"].T

    def forward(self, tokens):
        sp, W = self.spec, self.W
        n, nh, nkv = len(tokens), sp.n_head, sp.n_head_kv
        hd = sp.n_embd // nh
        pos = np.arange(n, dtype=np.float64)
        x = W["token_embd.weight"][np.asarray(tokens)]
        mask = np.triu(np.full((n, n), -np.inf), k=1)
        for il in range(sp.n_layer):
            b = f"blk.{il}."
            xa = self.ln(x, b + "attn_norm")
            xf = self.ln(x, b + "attn_norm_2") if b + "attn_norm_2.weight" in W else xa
            qkv = xa @ W[b + "attn_qkv.weight"].T
            q = qkv[:, : nh * hd].reshape(n, nh, hd)
            k = qkv[:, nh * hd: (nh + nkv) * hd].reshape(n, nkv, hd)
            v = qkv[:, (nh + nkv) * hd:].reshape(n, nkv, hd)
            q, k = self.rope_neox(q, pos), self.rope_neox(k, pos)
            att = np.empty((n, nh, hd))
            for h in range(nh):
                g = h // (nh // nkv)
                sc = q[:, h] @ k[:, g].T / np.sqrt(hd) + mask
                sc = np.exp(sc - sc.max(axis=1, keepdims=True))
                att[:, h] = (sc / sc.sum(axis=1, keepdims=True)) @ v[:, g]
            attn_out = att.reshape(n, nh * hd) @ W[b + "attn_output.weight"].T
            h = np.maximum(xf @ W[b + "ffn_up.weight"].T, 0.0)
            fires = h != 0
            active = np.ones_like(fires)
            if self.threshold is not None:  # the predictor reads the layer input
                score = self.predictor(b, x)
                active = score >= self.threshold
                h = h * active
            self.layers.append({"active": active, "fires": fires})
            x = x + attn_out + h @ W[b + "ffn_down_t.weight"]
        return self.ln(x, "output_norm") @ W["output.weight"].T


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(wtype, attn_norm_2) -> spec. Multi-query attention as Falcon-7B (one KV head) without
    attn_norm_2, grouped as Falcon-40B (two KV heads of four) with it."""
    d = tmp_path_factory.mktemp("falcon")
    out = {}
    for wtype in ("F32", "F16", "Q4_0", "Q8_0", "Q4_K"):
        for norm2 in (False, True):
            out[wtype, norm2] = write_sparse_gguf(
                d / f"falcon-{wtype}-{int(norm2)}.powerinfer.gguf", arch="falcon", wtype=wtype,
                n_embd=256 if wtype == "Q4_K" else 64, n_head=4, n_head_kv=2 if norm2 else 1,
                attn_norm_2=norm2, seed=5)
    return out


@pytest.mark.parametrize("norm2", [False, True])
@pytest.mark.parametrize("wtype,rel", [("F32", 1e-4), ("F16", 2e-2), ("Q4_0", 6e-2), ("Q8_0", 6e-2),
                                       ("Q4_K", 6e-2)])
def test_dense_mode_matches_reference(files, wtype, rel, norm2):
    spec = files[wtype, norm2]
    want = FalconReference(spec).forward(TOKENS)
    got = engine_logits(spec.path, "dense")
    close(got, want, rel)
    close(engine_logits(spec.path, "dense", one_by_one=True), got, 1e-4)


@pytest.mark.parametrize("norm2", [False, True])
@pytest.mark.parametrize("wtype", ["F16", "Q4_0", "Q8_0", "Q4_K"])
def test_all_active_predictor_and_oracle_equal_dense(files, wtype, norm2):
    path = files[wtype, norm2].path
    dense = engine_logits(path, "dense")
    for one in (False, True):
        close(engine_logits(path, "predictor", threshold=-1e30, one_by_one=one), dense, 1e-4)
        close(engine_logits(path, "oracle", one_by_one=one), dense, 1e-4)


@pytest.mark.parametrize("norm2", [False, True])
def test_predictor_applies_the_references_masks(files, norm2):
    """F32: the engine equals the reference with the predictor's masks, and a higher threshold
    (lower recall) moves the logits further from the dense ones."""
    spec = files["F32", norm2]
    dense = engine_logits(spec.path, "dense")
    diffs, recalls = [], []
    for thr in (0.0, 0.5, 2.0):
        ref = FalconReference(spec, threshold=thr)
        want = ref.forward(TOKENS)
        got = engine_logits(spec.path, "predictor", threshold=thr)
        close(got, want, 1e-4)
        recalls.append(np.mean([(l["active"] & l["fires"]).sum() / max(1, l["fires"].sum()) for l in ref.layers]))
        diffs.append(float(np.abs(got - dense).max()))
    assert recalls[0] > recalls[1] > recalls[2]
    assert 0 < diffs[0] < diffs[1] < diffs[2], (diffs, recalls)


@pytest.mark.parametrize("wtype", ["F16", "Q4_0"])
@pytest.mark.parametrize("mode,threshold", [("predictor", 0.0), ("predictor", 2.0), ("oracle", None)])
def test_batch_equals_one_token_at_a_time(files, wtype, mode, threshold):
    path = files[wtype, True].path
    batch = engine_logits(path, mode, threshold=threshold)
    assert np.array_equal(batch, engine_logits(path, mode, threshold=threshold, one_by_one=True))


def test_stats_of_falcon(files):
    from powerinfer_py.llama import Llama

    spec = files["F32", True]
    ref = FalconReference(spec, threshold=0.5)
    ref.forward(TOKENS)
    llm = Llama(str(spec.path), n_ctx=64, verbose=False, sparse_mode="predictor", sparse_threshold=0.5,
                sparse_measure_truth=True, type_k=0, type_v=0)
    try:
        llm.eval(TOKENS)
        st = llm.sparsity_stats()
    finally:
        llm.close()
    for got, r in zip(st["layers"], ref.layers):
        assert got["predicted_density"] == pytest.approx(r["active"].mean(), abs=2e-3)
        assert got["actual_density"] == pytest.approx(r["fires"].mean(), abs=2e-3)
        want_recall = (r["active"] & r["fires"]).sum() / r["fires"].sum()
        assert got["recall"] == pytest.approx(want_recall, abs=5e-3)


def test_gelu_falcon_is_refused(tmp_path):
    """A falcon file with neither the PWRI magic nor ffn_down_t nor predictors is Falcon's own GELU
    model, which this build does not run: a clear error naming it."""
    import gguf

    from powerinfer_py.sparse_gguf import add_small_model_hparams

    path = tmp_path / "falcon-gelu.gguf"
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "falcon")
    add_small_model_hparams(w, arch="falcon", n_embd=64, n_ff=128, n_layer=1, n_head=4, n_head_kv=1)

    def t(name, *shape):
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))

    t("token_embd.weight", 50, 64)
    t("blk.0.attn_norm.weight", 64)
    t("blk.0.attn_norm.bias", 64)
    t("blk.0.attn_qkv.weight", 96, 64)
    t("blk.0.attn_output.weight", 64, 64)
    t("blk.0.ffn_up.weight", 128, 64)
    t("blk.0.ffn_down.weight", 64, 128)
    t("output_norm.weight", 64)
    t("output_norm.bias", 64)
    t("output.weight", 50, 64)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UnsupportedError, match="GELU"):
        Model(str(path))
