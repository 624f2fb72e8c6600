"""The sparse FFN operators (pi_sparse_down, pi_sparse_ffn, pi_sparse_gather) against numpy, for
every weight type and every SIMD path this CPU can run.

Down projection. y[c] = sum_k h_k * W[a_k, c] over the active list, W = gguf.quants.dequantize of
the ffn_down_t rows (float64 in numpy). Our kernels add the m terms with h_k != 0 one after the
other in float32, each term either rounded as a product (scalar reference: p = h*w, then y += p)
or fused (AVX2 / AVX-512: y = fma(s, q, y) with s = h*d rounded, q the exact integer part of the
block). Every term thus carries at most two roundings of relative size u = 2^-24 and every partial
sum one, so by the usual bound on recursive summation
    |ours - ref| <= (m + 2) * u * sum_k |h_k| |W[a_k, c]|          (per column c)
whatever the order of the list. Dequantized weights are exact in float32 (and our dequantizers
equal gguf's bit for bit), so there is no other error source.

On CPUs with AVX512-VNNI and AVX512-VBMI, Q4_0 and Q8_0 rows go through the int8 kernel
("avx512-vnni-int8", pi_sparse_down_kernel names it): per group of 4 rows and block of 32 columns
it rounds the 4 products h_k * d_k to int8 on a common scale and adds the integer dot products.
Its reference is down_int8_model, that procedure in numpy, with the float bound above applied to
the per-group sums it adds; the float kernels are tested on this CPU too, in a subprocess with
POWERINFER_AVX512_VNNI=0 (test_float_kernels_without_vnni).

The thread split is over output columns, so each y[c] is summed by one thread in list order:
results for 1, 2 and 3 threads must be identical bit for bit.

Up and gate (pi_sparse_ffn) reuse pi_matvec_rows, tested in test_kernels.py against numpy; here
the hidden values must equal what pi_matvec_rows gives on the same rows bit for bit, combined with
the documented activation, and y must match the down bound above for those h.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

from powerinfer_py._lib import check, ffi, lib  # noqa: E402
from powerinfer_py.errors import PowerInferError  # noqa: E402
from isa_helpers import ISA_NAMES, ISAS, block_size, isa  # noqa: E402,F401  (isa is a fixture)
from powerinfer_py.quantize import quantize_row  # noqa: E402

U = 2.0**-24
FLOATS = ["F32", "F16", "BF16"]
LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
KQUANTS = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
ALL_TYPES = FLOATS + LEGACY + KQUANTS
RELU_GATE_UP, RELU_BOTH, RELU_UP = lib.PI_FFN_RELU_GATE_UP, lib.PI_FFN_RELU_BOTH, lib.PI_FFN_RELU_UP


def make_rows(name: str, n_rows: int, n_cols: int, rng: np.random.Generator, scale: float = 0.05) -> np.ndarray:
    """Weight bytes (n_rows, row_bytes) of type name from normal values (our quantizer for the
    K-quants, which gguf.quants cannot quantize; gguf's for the rest)."""
    w = (rng.standard_normal((n_rows, n_cols)) * scale).astype(np.float32)
    return encode(name, w)


def encode(name: str, w: np.ndarray) -> np.ndarray:
    n_rows = w.shape[0]
    if name in KQUANTS:
        return np.stack([quantize_row(name, r) for r in w]).reshape(n_rows, -1)
    if name == "F32":
        return np.ascontiguousarray(w, dtype=np.float32).view(np.uint8).reshape(n_rows, -1)
    return np.ascontiguousarray(quantize(w, GT[name])).view(np.uint8).reshape(n_rows, -1)


def dequant(name: str, wbytes: np.ndarray, n_cols: int) -> np.ndarray:
    if name == "F32":
        return wbytes.view(np.float32).reshape(-1, n_cols).astype(np.float64)
    return dequantize(wbytes, GT[name]).reshape(-1, n_cols).astype(np.float64)


def tid(name: str) -> int:
    return int(GT[name])


def fptr(a: np.ndarray, ctype: str = "float[]"):
    return ffi.from_buffer(ctype, a)


def sparse_down(name, wbytes, n_embd, active, h, n_threads=1, y_init=np.nan):
    active = np.ascontiguousarray(active, dtype=np.int32)
    h = np.ascontiguousarray(h, dtype=np.float32)
    y = np.full(n_embd, y_init, dtype=np.float32)
    check(lib.pi_sparse_down(tid(name), ffi.from_buffer(wbytes), wbytes.shape[0], n_embd, fptr(active, "int32_t[]"),
                             fptr(h), active.size, fptr(y), n_threads))
    return y


def down_reference(W: np.ndarray, active, h) -> tuple[np.ndarray, np.ndarray]:
    """(y, bound) for the list: the float64 sum and the rounding bound of the module doc."""
    active = np.asarray(active, dtype=np.int64)
    h = np.asarray(h, dtype=np.float32).astype(np.float64)
    nz = h != 0
    m = int(nz.sum())
    terms = h[nz, None] * W[active[nz]]
    y = terms.sum(axis=0) if m else np.zeros(W.shape[1])
    bound = (m + 2) * U * np.abs(terms).sum(axis=0) if m else np.zeros(W.shape[1])
    return y, bound


def kernel_name(name: str) -> str:
    """The down kernel pi_sparse_down uses for this type under the SIMD path in use."""
    return ffi.string(lib.pi_sparse_down_kernel(tid(name))).decode()


def uses_int8(name: str) -> bool:
    return kernel_name(name) == "avx512-vnni-int8"


def down_int8_model(name, wbytes, n_embd, active, h) -> tuple[np.ndarray, np.ndarray]:
    """(y, bound) of the int8 kernel's procedure (sparse_down_int8_avx512.cpp) in numpy.

    The rows with h != 0 in list order, in groups of 4 (the last padded with its last row at h = 0);
    per group and block b: s_k = h_k * d_kb (float32), m = max |s_k|, s'_k = rint(s_k * (127 / m)),
    and the group adds (m / 127) * sum_k s'_k * (u_kj - zero) to y, u being the stored nibble
    (Q4_0, zero 8) or the byte + 128 (Q8_0, zero 128). The integer part is exact; the float adds
    carry one rounding each in the kernel (an FMA) and in this model (float64, then float32), so
    |kernel - model| <= 2 * (groups + 1) * u * sum over groups of |group term|."""
    bytes_per_block = 18 if name == "Q4_0" else 34
    nb = n_embd // 32
    blocks = wbytes.reshape(wbytes.shape[0], nb, bytes_per_block)
    d = np.ascontiguousarray(blocks[:, :, :2]).view(np.float16).reshape(-1, nb).astype(np.float32)
    if name == "Q4_0":
        qs = blocks[:, :, 2:].astype(np.int64)
        u, zero = np.concatenate([qs & 0xF, qs >> 4], axis=2), 8
    else:
        u, zero = np.ascontiguousarray(blocks[:, :, 2:]).view(np.int8).astype(np.int64) + 128, 128
    h = np.asarray(h, dtype=np.float32)
    keep = [(int(a), np.float32(v)) for a, v in zip(np.asarray(active), h) if v != 0]
    y = np.zeros(n_embd, np.float32)
    total = np.zeros(n_embd)
    n_groups = (len(keep) + 3) // 4
    for g in range(n_groups):
        grp = keep[4 * g:4 * g + 4]
        grp += [(grp[-1][0], np.float32(0))] * (4 - len(grp))
        ids = np.array([a for a, _ in grp])
        a = np.array([v for _, v in grp], dtype=np.float32)
        s = d[ids] * a[:, None]                                     # float32 [4, nb]
        m = np.abs(s).max(axis=0)
        with np.errstate(divide="ignore"):
            inv = np.where(m > 0, np.float32(127) / m, np.float32(0)).astype(np.float32)
        q = np.rint(s * inv).astype(np.int64)                       # [4, nb]
        step = (m / np.float32(127)).astype(np.float32)
        acc = np.einsum("kb,kbj->bj", q, u[ids]) - zero * q.sum(axis=0)[:, None]
        term = (acc.astype(np.float64) * step.astype(np.float64)[:, None]).reshape(-1)
        y = (term + y.astype(np.float64)).astype(np.float32)
        total += np.abs(term)
    return y.astype(np.float64), 2 * (n_groups + 1) * U * total


def down_expected(name, wbytes, n_embd, active, h) -> tuple[np.ndarray, np.ndarray]:
    """(reference, bound) for the kernel in use: the exact sum with the float bound, or the int8
    kernel's model."""
    if uses_int8(name):
        return down_int8_model(name, wbytes, n_embd, active, h)
    return down_reference(dequant(name, wbytes, n_embd), active, h)


def assert_down(name, wbytes, n_embd, active, h, y):
    ref, bound = down_expected(name, wbytes, n_embd, active, h)
    err = np.abs(y.astype(np.float64) - ref)
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), f"{name} ({kernel_name(name)}): col {worst} err {err[worst]:.3e} > bound {bound[worst]:.3e}"


def n_embd_for(name: str) -> int:
    return 512 if name in KQUANTS else 320  # 320: not a multiple of 64 or 256 (column split tails)


# ---- down projection ---------------------------------------------------------------------------

@pytest.mark.parametrize("density", [0.0, "one", 0.05, 1.0])
@pytest.mark.parametrize("name", ALL_TYPES)
def test_down_random(name, isa, density):
    rng = np.random.default_rng(zlib.crc32(f"{name}/{density}".encode()))
    n_ff, n_embd = 200, n_embd_for(name)
    w = make_rows(name, n_ff, n_embd, rng)
    if density == "one":
        active = np.array([137], dtype=np.int32)
    else:
        active = np.sort(rng.choice(n_ff, size=int(round(density * n_ff)), replace=False)).astype(np.int32)
    h = (rng.standard_normal(active.size) * 3).astype(np.float32)
    h[::7] = 0.0  # ReLU zeros inside the active list are skipped
    y = sparse_down(name, w, n_embd, active, h)
    if active.size == 0:
        np.testing.assert_array_equal(y, np.zeros(n_embd, np.float32))  # overwritten, not left as NaN
    assert_down(name, w, n_embd, active, h, y)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_down_full_density_is_dense_projection(name, isa):
    """All n_ff neurons in order: y = W_down @ h with W_down = down_t^T, the dense projection."""
    rng = np.random.default_rng(5)
    n_ff, n_embd = 96, n_embd_for(name)
    w = make_rows(name, n_ff, n_embd, rng)
    h = rng.standard_normal(n_ff).astype(np.float32)
    y = sparse_down(name, w, n_embd, np.arange(n_ff), h)
    if uses_int8(name):  # the int8 kernel's own rounding: against its model
        assert_down(name, w, n_embd, np.arange(n_ff), h, y)
        return
    W_down = dequant(name, w, n_embd).T  # [n_embd rows, n_ff cols]
    dense = W_down @ h.astype(np.float64)
    bound = (n_ff + 2) * U * (np.abs(W_down) @ np.abs(h.astype(np.float64)))
    assert np.all(np.abs(y - dense) <= bound)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_down_threads_identical(name, isa):
    rng = np.random.default_rng(9)
    n_ff, n_embd = 150, n_embd_for(name) * 2
    w = make_rows(name, n_ff, n_embd, rng)
    active = rng.permutation(n_ff)[:60].astype(np.int32)
    h = rng.standard_normal(60).astype(np.float32)
    ys = [sparse_down(name, w, n_embd, active, h, n_threads=t) for t in (1, 2, 3)]
    np.testing.assert_array_equal(ys[0], ys[1])
    np.testing.assert_array_equal(ys[0], ys[2])


@pytest.mark.parametrize("name", ALL_TYPES)
def test_isas_agree(name):
    """Across ISAs only the rounding differs: both within the bound of the exact sum, so within
    twice the bound of each other."""
    rng = np.random.default_rng(17)
    n_ff, n_embd = 120, n_embd_for(name)
    w = make_rows(name, n_ff, n_embd, rng)
    active = rng.permutation(n_ff)[:40].astype(np.int32)
    h = rng.standard_normal(40).astype(np.float32)
    _, bound = down_reference(dequant(name, w, n_embd), active, h)
    before = lib.pi_cpu_get_isa()
    try:
        ys, int8 = {}, {}
        for i in ISAS:
            check(lib.pi_cpu_set_isa(i))
            ys[i] = sparse_down(name, w, n_embd, active, h)
            int8[i] = uses_int8(name)
            if int8[i]:  # a different rounding by design: against its own model instead
                assert_down(name, w, n_embd, active, h, ys[i])
    finally:
        check(lib.pi_cpu_set_isa(before))
    for i in ISAS[1:]:
        if not int8[i]:
            assert np.all(np.abs(ys[i] - ys[ISAS[0]]) <= 2 * bound), ISA_NAMES[i]


@pytest.mark.parametrize("name", ["F32", "F16", "Q4_0", "Q8_0", "Q4_K"])
def test_down_duplicates_and_order(name, isa):
    """The list is a sequence: a repeated id counts once per occurrence; order changes rounding only."""
    rng = np.random.default_rng(21)
    n_ff, n_embd = 64, n_embd_for(name)
    w = make_rows(name, n_ff, n_embd, rng)
    active = np.array([5, 40, 5, 12, 63, 0, 40], dtype=np.int32)
    h = np.array([1.5, -2.0, 0.5, 3.0, 1.0, -1.0, 0.25], dtype=np.float32)
    y = sparse_down(name, w, n_embd, active, h)
    assert_down(name, w, n_embd, active, h, y)
    # The same as the merged, sorted list (h of a duplicate summed: exact in float here).
    merged_ids = np.array([0, 5, 12, 40, 63], dtype=np.int32)
    merged_h = np.array([-1.0, 2.0, 3.0, -1.75, 1.0], dtype=np.float32)
    y2 = sparse_down(name, w, n_embd, merged_ids, merged_h)
    if uses_int8(name):  # its rounding depends on how rows fall into groups of 4: each against the model
        assert_down(name, w, n_embd, merged_ids, merged_h, y2)
        perm = rng.permutation(active.size)
        assert_down(name, w, n_embd, active[perm], h[perm], sparse_down(name, w, n_embd, active[perm], h[perm]))
        return
    _, b1 = down_reference(dequant(name, w, n_embd), active, h)
    _, b2 = down_reference(dequant(name, w, n_embd), merged_ids, merged_h)
    assert np.all(np.abs(y - y2) <= b1 + b2)
    perm = rng.permutation(active.size)
    y3 = sparse_down(name, w, n_embd, active[perm], h[perm])
    assert np.all(np.abs(y - y3) <= 2 * b1)


def test_down_skips_zero_h():
    """A row whose h is 0 is not read: NaN weights in it do not reach y (ReLU zeros are free)."""
    n_ff, n_embd = 8, 64
    w = np.ones((n_ff, n_embd), np.float32)
    w[3] = np.nan
    wb = w.view(np.uint8).reshape(n_ff, -1)
    for i in ISAS:
        before = lib.pi_cpu_get_isa()
        check(lib.pi_cpu_set_isa(i))
        try:
            y = sparse_down("F32", wb, n_embd, [1, 3, 6, 7, 2], [2.0, 0.0, 1.0, 0.5, 0.25])
        finally:
            check(lib.pi_cpu_set_isa(before))
        np.testing.assert_array_equal(y, np.full(n_embd, 3.75, np.float32))


def test_down_bad_arguments():
    w = np.zeros((4, 64), np.float32).view(np.uint8)
    y = np.zeros(64, np.float32)
    h = np.ones(1, np.float32)
    with pytest.raises(PowerInferError, match="outside"):
        check(lib.pi_sparse_down(0, ffi.from_buffer(w), 4, 64, ffi.new("int32_t[]", [4]), fptr(h), 1, fptr(y), 1))
    with pytest.raises(PowerInferError, match="block size"):
        check(lib.pi_sparse_down(tid("Q4_0"), ffi.from_buffer(w), 4, 48, ffi.new("int32_t[]", [0]), fptr(h), 1, fptr(y), 1))
    with pytest.raises(PowerInferError, match="no sparse kernel"):
        check(lib.pi_sparse_down(26, ffi.from_buffer(w), 4, 64, ffi.new("int32_t[]", [0]), fptr(h), 1, fptr(y), 1))
    with pytest.raises(PowerInferError, match="NULL"):
        check(lib.pi_sparse_down(0, ffi.from_buffer(w), 4, 64, ffi.new("int32_t[]", [0]), ffi.NULL, 1, fptr(y), 1))


# ---- real SmolLM2 rows -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_matrices(smollm2_path):
    """Two SmolLM2 matrices as they are stored (rows of 576 and of 1536 values)."""
    reader = gguf.GGUFReader(str(smollm2_path))
    tensors = {t.name: t for t in reader.tensors}
    out = {}
    for tensor in ("blk.0.ffn_up.weight", "blk.5.ffn_down.weight"):
        t = tensors[tensor]
        name = GT(t.tensor_type).name
        data = np.ascontiguousarray(np.asarray(t.data).view(np.uint8).reshape(int(t.shape[1]), -1))
        out[tensor] = (name, int(t.shape[0]), data)
    return out


@pytest.mark.parametrize("tensor", ["blk.0.ffn_up.weight", "blk.5.ffn_down.weight"])
@pytest.mark.parametrize("as_type", ["stored", "F16", "Q4_0", "Q8_0"])
def test_down_real_smollm2_rows(smollm2_matrices, isa, tensor, as_type):
    """Real weights, stored type and re-encoded into the SIMD types, at 10% density."""
    name, n_embd, w = smollm2_matrices[tensor]
    if as_type != "stored":
        w = encode(as_type, dequant(name, w, n_embd).astype(np.float32))
        name = as_type
    rng = np.random.default_rng(4)
    n_ff = w.shape[0]
    active = np.sort(rng.choice(n_ff, size=n_ff // 10, replace=False)).astype(np.int32)
    h = np.maximum(rng.standard_normal(active.size), 0).astype(np.float32) * 4  # ReLU-like
    y = sparse_down(name, w, n_embd, active, h)
    assert_down(name, w, n_embd, active, h, y)


# ---- gather and the whole sparse FFN -------------------------------------------------------------

def gather(values, threshold, strict):
    values = np.ascontiguousarray(values, dtype=np.float32)
    ids = np.empty(values.size, np.int32)
    n = ffi.new("int64_t *")
    check(lib.pi_sparse_gather(fptr(values), values.size, threshold, strict, fptr(ids, "int32_t[]"), n))
    return ids[: n[0]]


def test_gather():
    v = np.array([0.0, -1.0, 0.5, 2.0, -0.0, 0.49, np.nan], np.float32)
    np.testing.assert_array_equal(gather(v, 0.0, False), [0, 2, 3, 4, 5])   # scores >= 0
    np.testing.assert_array_equal(gather(v, 0.0, True), [2, 3, 5])          # gate > 0 (oracle)
    np.testing.assert_array_equal(gather(v, 0.5, False), [2, 3])
    assert gather(np.zeros(0, np.float32), 0.0, False).size == 0
    rng = np.random.default_rng(0)
    s = rng.standard_normal(5000).astype(np.float32)
    np.testing.assert_array_equal(gather(s, 0.3, False), np.nonzero(s >= np.float32(0.3))[0])


def matvec_rows(name, w, n_embd, x, rows):
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    y = np.empty(rows.size, np.float32)
    check(lib.pi_matvec_rows(tid(name), ffi.from_buffer(w), w.shape[0], n_embd, fptr(x), fptr(rows, "int32_t[]"),
                             rows.size, fptr(y)))
    return y


def sparse_ffn(act, name, up, gate, down, n_embd, x, active, n_threads=1):
    active = np.ascontiguousarray(active, dtype=np.int32)
    h = np.empty(active.size, np.float32)
    y = np.full(n_embd, np.nan, np.float32)
    check(lib.pi_sparse_ffn(act, tid(name), ffi.from_buffer(up), ffi.from_buffer(gate) if gate is not None else ffi.NULL,
                            ffi.from_buffer(down), up.shape[0], n_embd, fptr(x), fptr(active, "int32_t[]"), active.size,
                            fptr(h), fptr(y), n_threads))
    return h, y


def relu(v):
    return np.maximum(v, np.float32(0))


@pytest.mark.parametrize("act", [RELU_GATE_UP, RELU_BOTH, RELU_UP])
@pytest.mark.parametrize("name", ["F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q6_K"])
def test_sparse_ffn(name, act, isa):
    rng = np.random.default_rng(31 + act)
    n_ff, n_embd = 160, n_embd_for(name)
    up, gate, down = (make_rows(name, n_ff, n_embd, rng) for _ in range(3))
    if act == RELU_UP:
        gate = None
    x = rng.standard_normal(n_embd).astype(np.float32)
    active = rng.permutation(n_ff)[:50].astype(np.int32)
    h, y = sparse_ffn(act, name, up, gate, down, n_embd, x, active)
    u = matvec_rows(name, up, n_embd, x, active)
    if act == RELU_UP:
        want = relu(u)
    else:
        g = matvec_rows(name, gate, n_embd, x, active)
        want = relu(g) * (relu(u) if act == RELU_BOTH else u)
    np.testing.assert_array_equal(h, want)
    assert_down(name, down, n_embd, active, h, y)
    # Oracle: the neurons whose gate (or up) fires give the same y as all neurons, bit for bit
    # (non-firing neurons have h = 0 and are skipped either way).
    every = np.arange(n_ff, dtype=np.int32)
    pre = matvec_rows(name, gate if gate is not None else up, n_embd, x, every)
    fired = gather(pre, 0.0, True)
    _, y_all = sparse_ffn(act, name, up, gate, down, n_embd, x, every)
    _, y_oracle = sparse_ffn(act, name, up, gate, down, n_embd, x, fired)
    np.testing.assert_array_equal(y_oracle, y_all)
    for t in (2, 3):
        h_t, y_t = sparse_ffn(act, name, up, gate, down, n_embd, x, active, n_threads=t)
        np.testing.assert_array_equal(h_t, h)
        np.testing.assert_array_equal(y_t, y)
    # pi_sparse_hidden is the first half of pi_sparse_ffn.
    h2 = np.empty(active.size, np.float32)
    check(lib.pi_sparse_hidden(act, tid(name), ffi.from_buffer(up), ffi.from_buffer(gate) if gate is not None else ffi.NULL,
                               n_ff, n_embd, fptr(x), fptr(active, "int32_t[]"), active.size, fptr(h2), 2))
    np.testing.assert_array_equal(h2, h)


def test_sparse_ffn_f32_equals_dense_numpy():
    """F32 weights (x not quantized), every neuron active: the dense ReLU FFN of numpy."""
    rng = np.random.default_rng(2)
    n_ff, n_embd = 256, 128
    Wu, Wg, Wd = (rng.standard_normal((n_ff, n_embd)).astype(np.float32) * 0.1 for _ in range(3))
    x = rng.standard_normal(n_embd).astype(np.float32)
    h, y = sparse_ffn(RELU_GATE_UP, "F32", *(w.view(np.uint8) for w in (Wu, Wg, Wd)), n_embd, x, np.arange(n_ff))
    x64 = x.astype(np.float64)
    h_ref = relu(Wg.astype(np.float64) @ x64) * (Wu.astype(np.float64) @ x64)
    y_ref = Wd.astype(np.float64).T @ h_ref
    # h: each dot of n_embd terms errs by <= n_embd u sum|w x|, and the product by one more u.
    hb = (n_embd + 2) * U * (np.abs(Wg) @ np.abs(x64)) * (np.abs(Wu) @ np.abs(x64)) * 2
    assert np.all(np.abs(h - h_ref) <= hb)
    yb = (n_ff + 2) * U * (np.abs(Wd).T @ np.abs(h)) + np.abs(Wd).T @ hb
    assert np.all(np.abs(y - y_ref) <= yb)


def test_sparse_ffn_bad_arguments():
    w = np.zeros((4, 64), np.float32).view(np.uint8)
    x = np.zeros(64, np.float32)
    y = np.zeros(64, np.float32)
    ids = ffi.new("int32_t[]", [0])
    with pytest.raises(PowerInferError, match="pi_ffn_act"):
        check(lib.pi_sparse_ffn(7, 0, ffi.from_buffer(w), ffi.from_buffer(w), ffi.from_buffer(w), 4, 64, fptr(x), ids, 1,
                                ffi.NULL, fptr(y), 1))
    with pytest.raises(PowerInferError, match="gate is NULL"):
        check(lib.pi_sparse_ffn(RELU_GATE_UP, 0, ffi.from_buffer(w), ffi.NULL, ffi.from_buffer(w), 4, 64, fptr(x), ids, 1,
                                ffi.NULL, fptr(y), 1))


def test_env_scalar_forces_reference(tmp_path):
    """POWERINFER_ISA=scalar at start gives the scalar reference's bits (the FMA paths differ)."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(8)
    n_ff, n_embd = 64, 256
    w = make_rows("F16", n_ff, n_embd, rng)
    active = rng.permutation(n_ff)[:20].astype(np.int32)
    h = rng.standard_normal(20).astype(np.float32)
    before = lib.pi_cpu_get_isa()
    check(lib.pi_cpu_set_isa(1))
    try:
        want = sparse_down("F16", w, n_embd, active, h)
    finally:
        check(lib.pi_cpu_set_isa(before))
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "a.npy", active)
    np.save(tmp_path / "h.npy", h)
    code = (
        "import numpy as np, sys\n"
        "from powerinfer_py._lib import check, ffi, lib\n"
        f"d = {str(tmp_path)!r}\n"
        "w, a, h = (np.load(f'{d}/{n}.npy') for n in 'wah')\n"
        f"y = np.empty({n_embd}, np.float32)\n"
        f"check(lib.pi_sparse_down(1, ffi.from_buffer(w), {n_ff}, {n_embd}, ffi.from_buffer('int32_t[]', a),"
        " ffi.from_buffer('float[]', h), a.size, ffi.from_buffer('float[]', y), 1))\n"
        "assert lib.pi_cpu_get_isa() == 1\n"
        "np.save(f'{d}/y.npy', y)\n"
    )
    env = dict(os.environ, POWERINFER_ISA="scalar")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=os.getcwd())
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_int8_kernel_chosen_where_the_cpu_has_it():
    """The int8 kernel serves Q4_0 and Q8_0 on the AVX-512 path exactly when the CPU reports VNNI
    and VBMI (pi_system_info), and never another type or path."""
    import json

    cpu = json.loads(ffi.string(lib.pi_system_info()).decode())["cpu"]
    before = lib.pi_cpu_get_isa()
    try:
        for i in ISAS:
            check(lib.pi_cpu_set_isa(i))
            for name in ALL_TYPES:
                want = i == 3 and name in ("Q4_0", "Q8_0") and cpu["avx512_vnni"] and cpu["avx512_vbmi"]
                assert uses_int8(name) == want, (ISA_NAMES[i], name, kernel_name(name))
    finally:
        check(lib.pi_cpu_set_isa(before))
    assert lib.pi_sparse_down_kernel(26) == ffi.NULL  # a type without a down kernel


def test_float_kernels_without_vnni():
    """POWERINFER_AVX512_VNNI=0 keeps Q4_0 and Q8_0 on the AVX-512 float kernels (the path of CPUs
    without VNNI or VBMI); the down tests of this file then hold them to the float bound. The
    kernel tables are built once per process, hence the child process."""
    if 3 not in ISAS:
        pytest.skip("no AVX-512 on this CPU")
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = dict(os.environ, POWERINFER_AVX512_VNNI="0",
               PYTHONPATH=os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]))
    code = (
        "import test_sparse_ops as T\n"
        "from powerinfer_py._lib import check, lib\n"
        "check(lib.pi_cpu_set_isa(3))\n"
        "assert T.kernel_name('Q4_0') == T.kernel_name('Q8_0') == 'avx512-float', T.kernel_name('Q4_0')\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "test_sparse_ops.py"),
                        "-k", "(Q4_0 or Q8_0) and avx512 and down and not without_vnni"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and " passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
