"""The sparse FFN in the forward pass: PowerInfer-layout files (write_sparse_gguf) for llama
(ReLU(gate) * up) and bamboo (ReLU(gate) * ReLU(up)), in the modes dense, predictor and oracle.

Tolerances:
- Same engine, same file (predictor with every neuron active against dense, oracle against dense):
  the active rows are dotted with the same kernels and the down projection adds the same rows in
  the same order (neurons with h = 0 add nothing), so the logits agree to float rounding of the
  batched (matmul) against the per-row (matvec_rows) products: atol 1e-4 * max |logit|.
- Engine against the float64 numpy reference (SparseReference below, computing with the exact
  values the file holds): F32 weights and an F32 KV cache leave only f32 rounding, atol 1e-4 *
  max |logit| (as tests/test_forward.py); F16 weights dot f16-rounded activations, the quantized
  types 8-bit ones, so there the bound is the activation rounding through two layers: 2e-2 (F16)
  and 6e-2 (Q4_0, Q8_0, Q4_K) times max |logit|.
"""
from __future__ import annotations

import numpy as np
import pytest

from powerinfer_py._context import Context
from powerinfer_py._model import Model
from powerinfer_py.errors import FileFormatError, InvalidArgumentError, UnsupportedError
from powerinfer_py.sparse_gguf import write_sparse_gguf

from reference_llama import ReferenceLlama

TOKENS = [5, 77, 260, 3, 141, 299, 18, 64, 200, 9]
ARCHS = ["llama", "bamboo"]


class SparseReference(ReferenceLlama):
    """ReferenceLlama over a SparseModelSpec's stored values, with the ReLU FFN of the arch, the
    transposed down projection and, when threshold is set, the predictor's mask. It records, per
    layer and token, the recall of the predictor (firing neurons it marked active / firing)."""

    def __init__(self, spec, threshold=None):
        self.act_round = self.kv_round = lambda a: a
        self.n_embd, self.n_layer = spec.n_embd, spec.n_layer
        self.n_head, self.n_head_kv = spec.n_head, spec.n_head_kv
        self.head_dim = self.n_rot = spec.n_embd // spec.n_head
        self.eps, self.rope_base, self.freq_scale = 1e-5, 10000.0, 1.0
        self.tensors = spec.weights
        self.types = spec.types
        self._cache = {k: v.astype(np.float64) for k, v in spec.weights.items()}
        self.arch, self.threshold = spec.arch, threshold
        self.recall: list[float] = []
        self.layers: list[dict] = []  # per layer: the tokens' masks and firing neurons

    def ffn(self, il, x):
        b = f"blk.{il}."
        xn = self.rms(x, self.w(b + "ffn_norm.weight"))
        gate = xn @ self.w(b + "ffn_gate.weight").T
        up = xn @ self.w(b + "ffn_up.weight").T
        if self.arch == "bamboo":
            up = np.maximum(up, 0.0)
        h = np.maximum(gate, 0.0) * up
        fires = h != 0
        active = np.ones_like(fires)
        if self.threshold is not None:
            # the engine rounds the predictor's inputs to f16 for F16 weights (as ggml does)
            rnd = (lambda a: a.astype(np.float16).astype(np.float64)) if self.types[b + "fc1.weight"] == "F16" \
                else (lambda a: a)
            score = rnd(np.maximum(rnd(x) @ self.w(b + "fc1.weight").T, 0.0)) @ self.w(b + "fc2.weight").T
            active = score >= self.threshold
            self.recall.append(float((active & fires).sum() / max(1, fires.sum())))
            h = h * active
        self.layers.append({"active": active, "fires": fires, "gate_pos": gate > 0, "x": x})
        return h @ self.w(b + "ffn_down_t.weight")


def engine_logits(path, mode, threshold=None, one_by_one=False, kv_type="f32", offload=None):
    """All logits of TOKENS; offload = (device, capacity, hot ids per layer) splits the FFN first."""
    with Model(str(path), sparse_mode=mode, sparse_threshold=threshold) as m:
        if offload is not None:
            m.offload_ffn(*offload)
        with Context(m, n_ctx=64, n_batch=32, n_threads=2, n_threads_batch=2, logits_all=True,
                     kv_type=kv_type) as ctx:
            if not one_by_one:
                ctx.decode(TOKENS)
                return ctx.all_logits()
            rows = []
            for t in TOKENS:
                ctx.decode([t])
                rows.append(ctx.logits())
            return np.stack(rows)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sparse_fwd")
    out = {}
    for arch in ARCHS:
        for wtype in ("F32", "F16", "Q4_0", "Q8_0", "Q4_K"):
            # the K-quants' blocks of 256 need rows of 256
            n_embd = 256 if wtype == "Q4_K" else 64
            out[arch, wtype] = write_sparse_gguf(d / f"{arch}-{wtype}.powerinfer.gguf", arch=arch, wtype=wtype,
                                                 n_embd=n_embd, seed=3)
    return out


def close(got, want, rel):
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * np.abs(want).max())


# ----------------------------------------------------------------------------- (c) dense mode vs numpy
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("wtype,rel", [("F32", 1e-4), ("F16", 2e-2), ("Q4_0", 6e-2), ("Q8_0", 6e-2), ("Q4_K", 6e-2)])
def test_dense_mode_matches_reference(files, arch, wtype, rel):
    spec = files[arch, wtype]
    want = SparseReference(spec).forward(TOKENS)
    got = engine_logits(spec.path, "dense")
    assert got.shape == want.shape
    close(got, want, rel)
    # One token at a time takes the single-token path: the same logits.
    close(engine_logits(spec.path, "dense", one_by_one=True), got, 1e-4)


# ----------------------------------------------------------------------------- (a) all-active predictor
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("wtype", ["F16", "Q4_0", "Q8_0", "Q4_K"])
def test_predictor_all_active_equals_dense(files, arch, wtype):
    path = files[arch, wtype].path
    dense = engine_logits(path, "dense")
    for one in (False, True):
        close(engine_logits(path, "predictor", threshold=-1e30, one_by_one=one), dense, 1e-4)


# ----------------------------------------------------------------------------- (b) oracle
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("wtype", ["F32", "F16", "Q4_0", "Q8_0", "Q4_K"])
def test_oracle_equals_dense(files, arch, wtype):
    path = files[arch, wtype].path
    close(engine_logits(path, "oracle"), engine_logits(path, "dense"), 1e-4)


# ----------------------------------------------------------------------------- (d) weak predictors
@pytest.mark.parametrize("arch", ARCHS)
def test_weak_predictor_changes_output_as_recall_falls(files, arch):
    spec = files[arch, "F32"]
    dense = engine_logits(spec.path, "dense")
    # The file has no threshold key: auto mode is predictor mode with threshold 0.
    assert np.array_equal(engine_logits(spec.path, "auto"), engine_logits(spec.path, "predictor", threshold=0.0))
    diffs, recalls = [], []
    for thr in (-1e30, 0.0, 0.5, 2.0):
        ref = SparseReference(spec, threshold=thr)
        want = ref.forward(TOKENS)
        got = engine_logits(spec.path, "predictor", threshold=thr)
        close(got, want, 1e-4)  # the engine applies exactly the reference's mask
        diffs.append(float(np.abs(got - dense).max()))
        recalls.append(float(np.mean(ref.recall)))
    assert recalls[0] == 1.0 and diffs[0] < 1e-4 * np.abs(dense).max()
    assert recalls[1] > recalls[2] > recalls[3] and recalls[1] < 1.0
    assert 0 < diffs[1] < diffs[2] < diffs[3], (diffs, recalls)


def test_env_threshold_and_file_threshold(tmp_path, monkeypatch):
    spec = write_sparse_gguf(tmp_path / "t.powerinfer.gguf", arch="llama", wtype="F32", threshold=0.5, seed=3)
    file_thr = engine_logits(spec.path, "auto")
    close(file_thr, SparseReference(spec, threshold=0.5).forward(TOKENS), 1e-4)
    monkeypatch.setenv("LLAMA_SPARSE_PRED_THRESHOLD", "2.0")
    env_thr = engine_logits(spec.path, "auto")
    close(env_thr, SparseReference(spec, threshold=2.0).forward(TOKENS), 1e-4)
    assert np.array_equal(engine_logits(spec.path, "auto", threshold=0.5), file_thr)  # params win


# ----------------------------------------------------------------------------- (e) bad files
def _rewrite(spec, path, change=None, drop=(), down_layout="t", magic=b"PWRI"):
    """The spec's model as an F32 file, with tensors replaced (name -> array) or left out;
    down_layout "t" keeps ffn_down_t, "dense" stores ffn_down (the transpose), "both" both."""
    import gguf

    change = change or {}
    w = gguf.GGUFWriter(str(path), spec.arch)
    w.add_context_length(256)
    w.add_embedding_length(spec.n_embd)
    w.add_block_count(spec.n_layer)
    w.add_feed_forward_length(spec.n_ff)
    w.add_head_count(spec.n_head)
    w.add_head_count_kv(spec.n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    for name in spec.order:
        if name in drop:
            continue
        value = np.ascontiguousarray(change.get(name, spec.weights[name]), dtype=np.float32)
        if name.endswith("ffn_down_t.weight") and down_layout != "t":
            w.add_tensor(name.replace("ffn_down_t", "ffn_down"), np.ascontiguousarray(value.T))
            if down_layout == "dense":
                continue
        w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "r+b") as f:
        f.write(magic)
    return path


@pytest.mark.parametrize("name,shape", [
    ("blk.1.fc1.weight", (64, 48)),        # dims [48, 64]: ne0 must be n_embd
    ("blk.0.fc2.weight", (256, 16)),       # ne0 must be fc1's H (32)
    ("blk.0.fc2.weight", (200, 32)),       # ne1 must be n_ff
    ("blk.1.ffn_down_t.weight", (256, 32)),
])
def test_bad_shapes_name_the_tensor(files, tmp_path, name, shape):
    spec = files["llama", "F32"]
    path = _rewrite(spec, tmp_path / "bad.gguf", change={name: np.zeros(shape, np.float32)})
    with pytest.raises(FileFormatError, match=name.replace(".", r"\.")):
        Model(str(path))


def test_missing_and_mixed_tensors(files, tmp_path):
    spec = files["bamboo", "F32"]
    path = _rewrite(spec, tmp_path / "nofc2.gguf", drop=("blk.1.fc2.weight",))
    with pytest.raises(FileFormatError, match=r"blk\.1\.fc2\.weight"):
        Model(str(path))
    with pytest.raises(FileFormatError, match=r"blk\.0\.ffn_down\.weight"):
        Model(str(_rewrite(spec, tmp_path / "both.gguf", down_layout="both")))
    path = _rewrite(spec, tmp_path / "good.gguf")
    # Without any predictor, predictor mode is refused; oracle and dense still run.
    nopred = _rewrite(spec, tmp_path / "nopred.gguf",
                      drop=[n for n in spec.order if ".fc1." in n or ".fc2." in n])
    with pytest.raises(InvalidArgumentError, match="predictor"):
        Model(str(nopred), sparse_mode="predictor")
    close(engine_logits(nopred, "auto"), engine_logits(path, "dense"), 1e-6)
    close(engine_logits(nopred, "oracle"), engine_logits(path, "dense"), 1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_dense_layout_relu_file(files, tmp_path, arch):
    """A ReLU model with ffn_down (GGUF magic, plain layout) and predictors: same logits as the
    sparse layout in every mode (the down projection then runs densely on the scattered h)."""
    spec = files[arch, "F32"]
    sparse = _rewrite(spec, tmp_path / "sparse.gguf")
    plain = _rewrite(spec, tmp_path / "plain.gguf", down_layout="dense", magic=b"GGUF")
    close(engine_logits(plain, "dense"), SparseReference(spec).forward(TOKENS), 1e-4)
    for mode in ("dense", "oracle", "predictor"):
        close(engine_logits(plain, mode), engine_logits(sparse, mode), 1e-4)


def test_plain_llama_refuses_oracle(tmp_path):
    from tiny_llama import write_tiny_llama

    path = write_tiny_llama(tmp_path / "tiny.gguf")
    with pytest.raises(UnsupportedError, match="SiLU"):
        Model(str(path), sparse_mode="oracle")


@pytest.mark.parametrize("mode", ["dense", "predictor", "oracle"])
def test_thread_count_does_not_change_logits(files, mode):
    """Every kernel of the sparse path splits rows or output columns, never a sum: any thread count
    gives the same bits."""
    path = files["bamboo", "Q4_0"].path
    with Model(str(path), sparse_mode=mode) as m:
        outs = []
        for nth in (1, 3):
            with Context(m, n_ctx=64, n_batch=32, n_threads=nth, n_threads_batch=nth, logits_all=True) as ctx:
                ctx.decode(TOKENS)
                outs.append(ctx.all_logits())
    assert np.array_equal(outs[0], outs[1])


def test_llama_api_sparse_kwargs(files):
    from powerinfer_py.llama import Llama

    spec = files["llama", "F32"]
    want = engine_logits(spec.path, "predictor", threshold=0.5, kv_type="f16")
    llm = Llama(str(spec.path), n_ctx=64, n_threads=2, logits_all=True, verbose=False, sparse_mode="predictor",
                sparse_threshold=0.5)
    try:
        llm.eval(TOKENS)
        close(np.asarray(llm.scores[: len(TOKENS)]), want, 1e-5)
    finally:
        llm.close()
    with pytest.raises(InvalidArgumentError):
        Llama(str(spec.path), verbose=False, sparse_mode="sometimes")


# ----------------------------------------------------------------------------- batches: union, dense
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("wtype", ["F16", "Q4_0", "Q8_0", "Q4_K"])
@pytest.mark.parametrize("mode,threshold", [("predictor", 0.0), ("predictor", 0.5), ("predictor", 3.0),
                                            ("oracle", None)])
def test_batch_equals_one_token_at_a_time(files, arch, wtype, mode, threshold):
    """A prompt batch takes the union path (rows of the union of the tokens' active sets) or the
    dense path (every row, masked), by the cost model; decoding one token at a time takes the
    per-token sparse path. The three give every token the same bits (ffn_sparse.cpp)."""
    spec = files[arch, wtype]
    batch = engine_logits(spec.path, mode, threshold=threshold)
    one = engine_logits(spec.path, mode, threshold=threshold, one_by_one=True)
    assert np.array_equal(batch, one), float(np.abs(batch - one).max())


def test_both_batch_paths_are_exercised(files):
    """The cost model (kGatherCost = 1.25 in ffn_sparse.cpp): the union path runs when
    |union| * 1.25 < n_ff. On the test model, thresholds 0.5 and 3.0 give unions below that bound
    (78% and 2% of the neurons) and 0.0 above it (88-94%), so test_batch_equals_one_token_at_a_time
    covers both paths."""
    spec = files["llama", "F32"]
    fractions = {}
    for thr in (0.0, 0.5, 3.0):
        ref = SparseReference(spec, threshold=thr)
        ref.forward(TOKENS)
        fractions[thr] = [float(l["active"].any(axis=0).mean()) for l in ref.layers]
    assert max(fractions[3.0]) * 1.25 < 1.0 and max(fractions[0.5]) * 1.25 < 1.0, fractions
    assert min(fractions[0.0]) * 1.25 >= 1.0, fractions


# ----------------------------------------------------------------------------- statistics
def _stats(path, mode, threshold=None, measure_truth=False, one_by_one=False):
    """(stats dict of Llama.sparsity_stats, neuron counts per layer) after evaluating TOKENS."""
    from powerinfer_py.llama import Llama

    llm = Llama(str(path), n_ctx=64, n_batch=32, n_threads=2, verbose=False, sparse_mode=mode,
                sparse_threshold=threshold, sparse_measure_truth=measure_truth, type_k=0, type_v=0)
    try:
        llm._ctx.sparse_stats_config(measure_truth=measure_truth, count_neurons=True)
        if one_by_one:
            for t in TOKENS:
                llm.eval([t])
        else:
            llm.eval(TOKENS)
        stats = llm.sparsity_stats()
        counts = [llm._ctx.neuron_counts(il) for il in range(len(stats["layers"]))]
        return stats, counts
    finally:
        llm.close()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("one_by_one", [False, True])
def test_stats_match_the_reference(files, arch, one_by_one):
    """F32 weights and activations: the engine's counts are the reference's (to the odd neuron
    whose gate lies within float rounding of 0). Predictor mode with measure_truth gives recall and
    precision; oracle and dense modes know the truth by themselves."""
    spec = files[arch, "F32"]
    thr = 0.5
    refs = {}
    for key, t in (("predictor", thr), ("dense", None)):  # the oracle computes the dense FFN exactly
        refs[key] = SparseReference(spec, threshold=t)
        refs[key].forward(TOKENS)
    n = len(TOKENS)
    for mode, truth in (("predictor", True), ("predictor", False), ("oracle", False), ("dense", False)):
        stats, counts = _stats(spec.path, mode, thr if mode == "predictor" else None, truth, one_by_one)
        ref = refs["predictor" if mode == "predictor" else "dense"]
        assert stats["mode"] == mode and len(stats["layers"]) == spec.n_layer
        for il, (st, r) in enumerate(zip(stats["layers"], ref.layers)):
            active, fires = r["active"], r["fires"]
            assert st["tokens"] == n
            # the oracle computes the neurons whose gate is positive (bamboo's ReLU(up) zeroes more)
            want_pred = active.mean() if mode == "predictor" else r["gate_pos"].mean() if mode == "oracle" else 1.0
            assert st["predicted_density"] == pytest.approx(want_pred, abs=2e-3), (mode, il)
            if mode == "predictor" and not truth:
                assert st["actual_density"] is None and st["recall"] is None
                want_counts = (active & fires).sum(axis=0)  # fired among the computed
            else:
                assert st["actual_density"] == pytest.approx(fires.mean(), abs=2e-3), (mode, il)
                want_recall = (active & fires).sum() / fires.sum() if mode == "predictor" else 1.0
                assert st["recall"] == pytest.approx(want_recall, abs=5e-3), (mode, il)
                want_counts = fires.sum(axis=0)
            if mode == "predictor":
                assert st["precision"] == pytest.approx((active & fires).sum() / active.sum(), abs=5e-3)
            assert np.abs(counts[il] - want_counts).sum() <= max(2, 0.002 * want_counts.sum()), (mode, il)
        t = stats["time_ms"]
        assert all(v >= 0 for v in t.values()) and t["attention"] > 0 and t["ffn"] > 0
        assert (t["predictor"] > 0) == (mode == "predictor")
    assert stats["ffn_density"] == 1.0  # dense mode computed every neuron


def test_stats_of_a_dense_model_and_bad_calls(tmp_path):
    from powerinfer_py.llama import Llama
    from tiny_llama import write_tiny_llama

    llm = Llama(str(write_tiny_llama(tmp_path / "tiny.gguf")), n_ctx=32, verbose=False)
    try:
        llm.eval([1, 2, 3])
        st = llm.sparsity_stats(reset=True)
        assert st["layers"] == [] and st["ffn_density"] is None and st["time_ms"]["attention"] > 0
        assert llm.sparsity_stats()["time_ms"]["attention"] == 0.0  # reset
        with pytest.raises(InvalidArgumentError, match="neuron counting is off"):
            llm._ctx.neuron_counts(0)
        with pytest.raises(InvalidArgumentError, match="out of range"):
            llm._ctx.sparse_layer_stats(99)
    finally:
        llm.close()
