"""The GPU split of the sparse FFN on the CPU stand-in device (issue 10): hot neurons' rows of up,
gate and ffn_down_t copied into the device's own buffers, each token's active hot rows computed
there and its cold rows on the CPU, the two down projections added (run/ffn_offload.cpp).

What must hold, and why:
- Every neuron hot: the device computes the whole active list, in the same ascending order and
  with the same kernels on copies of the same rows, so the logits are the CPU path's bit for bit.
  This checks the gather, the upload, the compact indexing and the falcon bias.
- Any other split: each neuron's h is computed by the same kernel on the same prepared input (the
  same bits), and only the down projection's sum is regrouped (cold rows, then hot rows, then
  added). With the float down kernels that is float reassociation: logits within 1e-4 x max
  |logit| (run on the AVX2 path, whose down kernels are the float ones). With the int8 kernel
  ("avx512-vnni-int8") the groups of 4 rows that share an int8 scale change too: within 2e-2 x
  max |logit| in oracle and dense modes (see that test for why not predictor mode). The same
  neurons are predicted and fire (statistics).
- A prompt batch gives each token the bits of evaluating it alone (the split runs per token).
- Placement and budget: the device's bytes are exactly the hot rows (three buffers per layer,
  64-byte aligned); a budget too small fails with the reason and leaves no split behind; a dense
  SwiGLU layer or a dense-layout ReLU file cannot split; CUDA without a CUDA build is an error,
  never a silent CPU run.
"""
from __future__ import annotations

import numpy as np
import pytest

from powerinfer_py import Llama
from powerinfer_py._context import Context
from powerinfer_py._lib import ffi, lib
from powerinfer_py._model import Model
from powerinfer_py._offload import cuda_built
from powerinfer_py.errors import InvalidArgumentError, NotCompiledError, OutOfMemoryError, UnsupportedError
from powerinfer_py.sparse_gguf import write_sparse_gguf
from powerinfer_py.tools.gpuidx import write_gpuidx

from test_sparse_forward import TOKENS, engine_logits

CASES = [("llama", "Q4_0"), ("llama", "F16"), ("bamboo", "Q8_0"), ("falcon", "Q4_0"), ("falcon", "F32"),
         ("llama", "Q4_K")]
MODES = ["predictor", "oracle", "dense"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("offload")
    return {(arch, wtype): write_sparse_gguf(d / f"{arch}-{wtype}.powerinfer.gguf", arch=arch, wtype=wtype,
                                             n_embd=256 if wtype == "Q4_K" else 64, seed=11)
            for arch, wtype in CASES}


def run(path, mode, hot=None, one_by_one=False, capacity=0):
    """All logits of TOKENS, with the split hot (per layer: ascending ids) on the stand-in."""
    return engine_logits(path, mode, one_by_one=one_by_one,
                         offload=None if hot is None else ("cpu-standin", capacity, hot))


def random_split(spec, share, seed=0):
    rng = np.random.default_rng(seed)
    return [np.flatnonzero(rng.random(spec.n_ff) < share).astype(np.int32) for _ in range(spec.n_layer)]


def int8_down(wtype: str) -> bool:
    import gguf

    k = lib.pi_sparse_down_kernel(int(gguf.GGMLQuantizationType[wtype]))
    return k != ffi.NULL and ffi.string(k) == b"avx512-vnni-int8"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch,wtype", CASES)
def test_every_neuron_hot_is_the_cpu_path_bit_for_bit(files, arch, wtype, mode):
    spec = files[arch, wtype]
    everything = [np.arange(spec.n_ff, dtype=np.int32)] * spec.n_layer
    np.testing.assert_array_equal(run(spec.path, mode, everything), run(spec.path, mode))


def float_isa() -> int:
    """A SIMD path whose down kernels are the float ones (AVX2, or the scalar reference)."""
    before = lib.pi_cpu_get_isa()
    ok = lib.pi_cpu_set_isa(2) == 0
    lib.pi_cpu_set_isa(before)
    return 2 if ok else 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch,wtype", CASES)
def test_any_split_gives_the_cpu_logits(files, arch, wtype, mode):
    """Float down kernels: the split regroups a float sum, within 1e-4 x max |logit|."""
    spec = files[arch, wtype]
    before = lib.pi_cpu_get_isa()
    try:
        assert lib.pi_cpu_set_isa(float_isa()) == 0
        want = run(spec.path, mode)
        for share, seed in ((0.3, 1), (0.8, 2), (0.02, 3)):
            got = run(spec.path, mode, random_split(spec, share, seed))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max(), err_msg=f"share {share}")
    finally:
        lib.pi_cpu_set_isa(before)


@pytest.mark.parametrize("mode", ["oracle", "dense"])
@pytest.mark.parametrize("arch,wtype", [c for c in CASES if c[1] in ("Q4_0", "Q8_0")])
def test_any_split_with_the_int8_down_kernel(files, arch, wtype, mode):
    """The int8 kernel rounds h x scale per group of 4 rows, and a split changes the groups: within
    2e-2 x max |logit| here (measured 0.5-0.8%). Predictor mode is left out: there a changed
    residual can move a neuron's score across the threshold in the next layer, a discrete change
    of the active set that any rounding difference can cause (measured up to 14% on one token of
    this random model), so it says nothing about the split."""
    if not int8_down(wtype):
        pytest.skip("this CPU takes the float down kernels (tested above)")
    spec = files[arch, wtype]
    want = run(spec.path, mode)
    for share, seed in ((0.3, 1), (0.8, 2)):
        got = run(spec.path, mode, random_split(spec, share, seed))
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-2 * np.abs(want).max(), err_msg=f"share {share}")


@pytest.mark.parametrize("mode", MODES)
def test_batch_equals_one_token_at_a_time(files, mode):
    spec = files["bamboo", "Q8_0"]
    hot = random_split(spec, 0.4)
    np.testing.assert_array_equal(run(spec.path, mode, hot), run(spec.path, mode, hot, one_by_one=True))


def test_statistics_do_not_change(files):
    spec = files["llama", "Q4_0"]

    def stats(hot):
        with Model(str(spec.path), sparse_mode="predictor") as m:
            if hot is not None:
                m.offload_ffn("cpu-standin", 0, hot)
            with Context(m, n_ctx=64, n_batch=32, n_threads=2) as ctx:
                ctx.sparse_stats_config(measure_truth=True)
                ctx.decode(TOKENS)
                return [ctx.sparse_layer_stats(il) for il in range(spec.n_layer)]

    # On the float kernels (with the int8 one, layer 0's regrouped rounding can move a layer-1
    # score across the threshold: see test_any_split_with_the_int8_down_kernel).
    before = lib.pi_cpu_get_isa()
    try:
        assert lib.pi_cpu_set_isa(float_isa()) == 0
        assert stats(random_split(spec, 0.5)) == stats(None)
    finally:
        lib.pi_cpu_set_isa(before)


def test_report_bytes_and_removal(files):
    spec = files["llama", "Q4_0"]
    hot = random_split(spec, 0.25)
    row = 64 // 32 * 18  # a Q4_0 row of 64 values
    with Model(str(spec.path)) as m:
        assert m.offload_info() is None
        m.offload_ffn("cpu-standin", 0, hot)
        info = m.offload_info()
        assert info["device"] == "cpu-standin"
        # up, gate, down_t rows of the hot neurons, and the layer's predictor (fc1, fc2), each buffer
        # 64-byte aligned
        pred = [-(-(H * row) // 64) * 64 + -(-(spec.n_ff * (H // 32 * 18)) // 64) * 64 for H in spec.predictor_hidden]
        assert spec.types["blk.0.fc1.weight"] == "Q4_0"
        want = [3 * (-(-len(h) * row // 64) * 64) + p for h, p in zip(hot, pred)]
        assert [l["hot_neurons"] for l in info["layers"]] == [len(h) for h in hot]
        assert [l["bytes"] for l in info["layers"]] == want
        assert info["bytes"] == sum(want)
        m.offload_ffn("cpu-standin", 0, [[]] * spec.n_layer)  # nothing hot: no split
        assert m.offload_info() is None
        m.offload_ffn("cpu-standin", 0, hot)
        m.offload_ffn(None, 0, hot)  # no device: no split
        assert m.offload_info() is None


def test_budget_too_small_fails_and_leaves_no_split(files):
    spec = files["llama", "Q4_0"]
    hot = random_split(spec, 0.5)
    with Model(str(spec.path)) as m:
        m.offload_ffn("cpu-standin", 0, hot)
        need = m.offload_info()["bytes"]
        with pytest.raises(OutOfMemoryError, match="budget"):
            m.offload_ffn("cpu-standin", need - 64, hot)
        assert m.offload_info() is None
        m.offload_ffn("cpu-standin", need, hot)  # exactly enough
        assert m.offload_info()["bytes"] == need


def test_bad_placements(files, tmp_path):
    spec = files["llama", "F16"]
    with Model(str(spec.path)) as m:
        with pytest.raises(InvalidArgumentError, match="ascending"):
            m.offload_ffn("cpu-standin", 0, [[3, 2], []])
        with pytest.raises(InvalidArgumentError, match="ascending"):
            m.offload_ffn("cpu-standin", 0, [[spec.n_ff], []])
        with pytest.raises(InvalidArgumentError, match="layers"):
            m.offload_ffn("cpu-standin", 0, [[1]])
        with pytest.raises(InvalidArgumentError, match="unknown device"):
            m.offload_ffn("tpu", 0, [[1], [2]])
        if not cuda_built():
            with pytest.raises(NotCompiledError, match="no CUDA backend"):
                m.offload_ffn("cuda", 0, [[1], [2]])
    from test_sparse_forward import _rewrite

    plain = _rewrite(files["falcon", "F32"], tmp_path / "plain.gguf", down_layout="dense", magic=b"GGUF")
    with Model(str(plain)) as m:
        with pytest.raises(UnsupportedError, match="ffn_down_t"):
            m.offload_ffn("cpu-standin", 0, [[1], [2]])
    from tiny_llama import write_tiny_llama

    with Model(str(write_tiny_llama(tmp_path / "dense.gguf"))) as m:
        with pytest.raises(UnsupportedError, match="SwiGLU"):
            m.offload_ffn("cpu-standin", 0, [[1], [2]])


# ---- through Llama, on the bundled model --------------------------------------------------------

@pytest.fixture(scope="module")
def bundled_split(tmp_path_factory):
    """The bundled model and a GPU index with about a third of each layer's neurons hot."""
    from powerinfer_py.assets import bundled_model_path

    path = str(bundled_model_path())
    with Model(path, vocab_only=True) as m:
        meta = m.metadata
    n_layer, n_ff = int(meta["llama.block_count"]), int(meta["llama.feed_forward_length"])
    rng = np.random.default_rng(7)
    masks = [rng.random(n_ff) < 0.3 for _ in range(n_layer)]
    gi = tmp_path_factory.mktemp("gpuidx") / "split.gpuidx"
    write_gpuidx(gi, masks, vram_capacity=0)
    return path, str(gi), masks


def test_llama_split_generates_the_same_text(bundled_split):
    path, gi, masks = bundled_split
    prompt = "from django.db import models\n\n\nclass"
    with Llama(path, n_ctx=256, n_threads=2, verbose=False) as ref, \
            Llama(path, n_ctx=256, n_threads=2, verbose=False, offload_device="cpu-standin", gpu_index=gi) as llm:
        want = ref(prompt, max_tokens=24, temperature=0.0)["choices"][0]["text"]
        got = llm(prompt, max_tokens=24, temperature=0.0)["choices"][0]["text"]
        assert got == want
        split = llm.gpu_split()
        assert split["device"] == "cpu-standin"
        assert [l["hot_neurons"] for l in split["layers"]] == [int(m.sum()) for m in masks]
        assert split["hot_neurons"] == sum(int(m.sum()) for m in masks)
        assert split["total_neurons"] == sum(m.size for m in masks)
        assert split["used_bytes"] == sum(l["bytes"] for l in split["layers"]) > 0
        assert ref.gpu_split()["device"] is None


def test_llama_split_budget_and_errors(bundled_split, tmp_path):
    path, gi, _ = bundled_split
    with pytest.raises(OutOfMemoryError, match="budget"):
        Llama(path, verbose=False, offload_device="cpu-standin", gpu_index=gi, vram_budget="256KiB")
    with Llama(path, verbose=False, offload_device="cpu-standin", gpu_index=gi, vram_budget="64MiB") as llm:
        assert llm.gpu_split()["budget_bytes"] == 64 << 20
        assert llm.gpu_split()["used_bytes"] <= 64 << 20
    with pytest.raises(ValueError, match="powerinfer-py place"):
        Llama(path, verbose=False, offload_device="cpu-standin", gpu_index=str(tmp_path / "missing.gpuidx"))
    with pytest.raises(ValueError, match="cannot parse size"):
        Llama(path, verbose=False, offload_device="cpu-standin", gpu_index=gi, vram_budget="lots")
    if not cuda_built():
        # Asking for a GPU in a CPU build is an error, never a silent CPU run ...
        with pytest.raises(NotCompiledError, match="no CUDA backend"):
            Llama(path, verbose=False, vram_budget="1GiB", gpu_index=gi)
        # ... and n_gpu_layers, which scripts written for llama-cpp-python often pass, warns.
        with pytest.warns(UserWarning, match="no CUDA backend"):
            Llama(path, verbose=False, n_gpu_layers=-1).close()


def test_system_info_lists_the_offload_devices():
    import powerinfer_py

    info = powerinfer_py.system_info()
    gpus = (info.get("cuda") or {}).get("devices") or []
    assert info["offload_devices"] == ["cpu-standin"] + [f"cuda:{i}" for i in range(len(gpus))]


def test_llama_places_from_a_profile(bundled_split, tmp_path):
    """offload_profile= with vram_budget=: our solver places the hottest neurons under the budget
    and writes the gpuidx next to the model (here a copy in tmp_path)."""
    import shutil

    from powerinfer_py.tools.activation_profile import Profile, save_profile_npz
    from powerinfer_py.tools.gpuidx import read_gpuidx

    path, _, masks = bundled_split
    model = tmp_path / "model.powerinfer.gguf"
    shutil.copy(path, model)
    rng = np.random.default_rng(5)
    counts = [rng.integers(0, 1000, size=m.size).astype(np.float64) for m in masks]
    prof = tmp_path / "p.npz"
    save_profile_npz(Profile(n_layer=len(masks), n_ff=masks[0].size, n_tokens=1000, counts=counts), prof)
    with pytest.raises(ValueError, match="vram_budget"):
        Llama(str(model), verbose=False, offload_device="cpu-standin", offload_profile=str(prof))
    with pytest.raises(ValueError, match="short of what must be on the GPU"):
        Llama(str(model), verbose=False, offload_device="cpu-standin", offload_profile=str(prof), vram_budget="16MiB")
    # Attention, predictors, head, a KV cache, buffers and a 64 MiB margin come first; then room for
    # half of the FFN's bytes.
    from powerinfer_py.tools.place import plan_budget, read_model_facts

    facts = read_model_facts(str(model))
    big = 1 << 40
    first = big - plan_budget(facts, big, n_ctx=512).ffn
    budget = first + sum(b * n for b, n in zip(facts.neuron_bytes, facts.n_ff)) // 2
    with Llama(str(model), n_ctx=512, verbose=False, offload_device="cpu-standin", offload_profile=str(prof),
               vram_budget=budget) as llm:
        split = llm.gpu_split()
        written = read_gpuidx(str(model) + ".generated.gpuidx")
        assert [l["hot_neurons"] for l in split["layers"]] == [int(m.sum()) for m in written]
        assert 0 < split["hot_neurons"] < split["total_neurons"]
        # The device holds the hot rows and the predictors, which the placement counted among what
        # comes first: within the budget.
        assert split["used_bytes"] <= budget
        # The hottest neurons of each layer by the profile's counts are the ones placed.
        for c, m in zip(counts, written):
            k = int(m.sum())
            if 0 < k < c.size:
                assert c[m].min() >= np.sort(c)[::-1][k - 1] - 1e-9
