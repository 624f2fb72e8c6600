"""The CPU matrix kernels (pi_matvec, pi_matvec_rows, pi_matmul) against numpy, for every weight type
and every SIMD path this CPU can run.

Reference: W = gguf.quants.dequantize(weight bytes) in float64, times x. Our kernels do not see x
itself: they first convert it as the engine does (cpu/dot.h), the way ggml converts it for the same
weight type. F16 (BF16) weights: x rounded to f16 (bf16), each value moving by at most
|x_i| 2^-11 (2^-8). The 32-blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): blocks of 32 values with scale
dx = f16(amax / 127) and integers a = round(x * 127 / amax); K-quants: blocks of 256 with the
float scale amax / 127. Each value then moves by at most
    e_i = amax(block of i) / 254 * (1 + 2^-12)    (+ amax * 2^-11 where dx is rounded to f16)
(half a step, plus float rounding of dx and of x * 127 / amax, each relative 2^-24 of a step of
at most 127). So, with w_i the weights of a row, the exact product of the weights with the
quantized x differs from the reference by at most   sum_i |w_i| * e_i   (triangle inequality).
Q4_1 and Q5_1 also take the block sum s = f16(dx * sum(a)) rounded to f16, as ggml's q8_1 does:
at most 2^-11 of |m| * sum |x~| per block more.
On top comes the float rounding of the kernel: every intermediate is a sum of at most
n_blocks + 64 float operations over terms bounded by mag_i * (|x_i| + e_i), where mag_i bounds
the size of the integer-times-scale parts the kernels keep apart (|w_i| plus the block's offset
|m|, 8|d|, 16|d| or 63 dmin, since d*q = w + offset). Recursive summation of N terms errs by at
most (N - 1) * 2^-24 * sum |terms|, whatever the order, hence
    |ours - ref| <= sum_i |w_i| e_i  +  (N + 64) * 2^-24 * sum_i mag_i (|x_i| + e_i)
with N = n_blocks for quantized types, N = n_cols for F32/F16/BF16.
Between two ISAs the quantized x is identical (the same bytes), so results may differ only by the
float term, taken twice. Every result is also compared with W x~ (plus the q8_1 sum's rounding,
computed exactly), x~ the converted activation recomputed in numpy from the documented format:
there only the float term is allowed.
"""
from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

from powerinfer_py._lib import check, ffi, lib  # noqa: E402
from powerinfer_py.errors import PowerInferError  # noqa: E402
from isa_helpers import ISA_NAMES, ISAS, block_size, isa  # noqa: E402,F401  (isa is a fixture)

U = 2.0**-24

LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
KQUANTS = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
FLOATS = ["F32", "F16", "BF16"]
ALL_TYPES = FLOATS + LEGACY + KQUANTS



# ---- weights ---------------------------------------------------------------------------------

# Byte offsets of the f16 scales in each K-quant super-block: (d, dmin or None), block bytes.
K_LAYOUT = {
    "Q2_K": (80, 82, 84),
    "Q3_K": (108, None, 110),
    "Q4_K": (0, 2, 144),
    "Q5_K": (0, 2, 176),
    "Q6_K": (208, None, 210),
}


def make_weights(name: str, n_rows: int, n_cols: int, rng: np.random.Generator) -> np.ndarray:
    """Weight bytes (n_rows, row_bytes) of type name."""
    if name in KQUANTS:
        # gguf.quants has no K-quant quantizer: random bit patterns are valid blocks, with the f16
        # scales set to sane magnitudes.
        d_off, m_off, nbytes = K_LAYOUT[name]
        nb = n_cols // 256
        raw = rng.integers(0, 256, size=(n_rows, nb, nbytes), dtype=np.uint8)
        d = (rng.uniform(0.5, 1.5, size=(n_rows, nb)) * 1e-3).astype(np.float16)
        raw[:, :, d_off : d_off + 2] = d.view(np.uint8).reshape(n_rows, nb, 2)
        if m_off is not None:
            dm = (rng.uniform(0.5, 1.5, size=(n_rows, nb)) * 1e-3).astype(np.float16)
            raw[:, :, m_off : m_off + 2] = dm.view(np.uint8).reshape(n_rows, nb, 2)
        return raw.reshape(n_rows, nb * nbytes)
    w = (rng.standard_normal((n_rows, n_cols)) * 0.05).astype(np.float32)
    q = quantize(w, GT[name])
    return np.ascontiguousarray(q).view(np.uint8).reshape(n_rows, -1)


def dequant(name: str, wbytes: np.ndarray, n_cols: int) -> np.ndarray:
    if name == "F32":
        return wbytes.view(np.float32).reshape(-1, n_cols)
    if name == "F16":
        return wbytes.view(np.float16).astype(np.float32).reshape(-1, n_cols)
    return dequantize(wbytes, GT[name]).reshape(-1, n_cols)


def offsets(name: str, wbytes: np.ndarray, n_cols: int) -> np.ndarray:
    """Per value, the size of the offset the kernels carry apart from d * q (see the module doc)."""
    n_rows = wbytes.shape[0]
    if name in FLOATS or name in ("Q8_0", "Q3_K", "Q6_K"):
        return np.zeros((n_rows, n_cols))
    bs = block_size(name)
    nb = n_cols // bs
    blocks = wbytes.reshape(n_rows, nb, -1)
    if name in ("Q4_0", "Q5_0"):
        d = blocks[:, :, 0:2].copy().view(np.float16).astype(np.float64)[..., 0]
        per_block = np.abs(d) * (8 if name == "Q4_0" else 16)
    elif name in ("Q4_1", "Q5_1"):
        per_block = np.abs(blocks[:, :, 2:4].copy().view(np.float16).astype(np.float64)[..., 0])
    else:  # Q2_K, Q4_K, Q5_K: dmin times the largest min (15 or 63)
        m_off = K_LAYOUT[name][1]
        dmin = blocks[:, :, m_off : m_off + 2].copy().view(np.float16).astype(np.float64)[..., 0]
        per_block = np.abs(dmin) * 63
    return np.repeat(per_block, bs, axis=1)


F16_REL = {"F32": 0.0, "F16": 2.0**-11, "BF16": 2.0**-8}  # half an ulp of the activation's rounding
SUM_F16 = ("Q4_1", "Q5_1")  # their activation's block sum is stored in f16 (ggml's q8_1)


def act_error(name: str, x: np.ndarray) -> np.ndarray:
    """e_i: how far the converted activation can be from x_i."""
    if name in FLOATS:
        return np.abs(x.astype(np.float64)) * F16_REL[name]
    bs = 32 if name in LEGACY else 256
    amax = np.abs(x.astype(np.float64)).reshape(-1, bs).max(axis=1)
    e = amax / 254 * (1 + 2.0**-12)
    if name in LEGACY:
        e = e + amax * 2.0**-11  # dx rounded to f16
    return np.repeat(e, bs)


def tolerance(name: str, wbytes: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bound on |ours - ref|, the float-rounding part alone), per row."""
    n_cols = x.shape[0]
    W = np.abs(dequant(name, wbytes, n_cols).astype(np.float64))
    e = act_error(name, x)
    n_terms = n_cols if name in FLOATS else n_cols // block_size(name)
    mag = W + offsets(name, wbytes, n_cols)
    rounding = (n_terms + 64) * U * (mag @ (np.abs(x.astype(np.float64)) + e))
    bound = W @ e + rounding
    if name in SUM_F16:
        bound = bound + 2.0**-11 * (offsets(name, wbytes, n_cols) @ (np.abs(x.astype(np.float64)) + e))
    return bound, rounding


# ---- calls -----------------------------------------------------------------------------------


def matvec(name: str, wbytes: np.ndarray, x: np.ndarray) -> np.ndarray:
    n_rows, n_cols = wbytes.shape[0], x.shape[0]
    wbytes = np.ascontiguousarray(wbytes)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty(n_rows, dtype=np.float32)
    check(lib.pi_matvec(int(GT[name]), ffi.from_buffer(wbytes), n_rows, n_cols,
                        ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(y))))
    return y


def matvec_rows(name: str, wbytes: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    n_rows, n_cols = wbytes.shape[0], x.shape[0]
    wbytes = np.ascontiguousarray(wbytes)
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    y = np.empty(len(rows), dtype=np.float32)
    check(lib.pi_matvec_rows(int(GT[name]), ffi.from_buffer(wbytes), n_rows, n_cols,
                             ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("int32_t *", ffi.from_buffer(rows)),
                             len(rows), ffi.cast("float *", ffi.from_buffer(y))))
    return y


def matmul(name: str, wbytes: np.ndarray, X: np.ndarray) -> np.ndarray:
    n_rows = wbytes.shape[0]
    n_b, n_cols = X.shape
    wbytes = np.ascontiguousarray(wbytes)
    X = np.ascontiguousarray(X, dtype=np.float32)
    Y = np.empty((n_b, n_rows), dtype=np.float32)
    check(lib.pi_matmul(int(GT[name]), ffi.from_buffer(wbytes), n_rows, n_cols,
                        ffi.cast("float *", ffi.from_buffer(X)), n_b, ffi.cast("float *", ffi.from_buffer(Y))))
    return Y


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 value (ties to even), as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def q8_blocks(name: str, x: np.ndarray):
    """The quantized activation as cpu/dot.h specifies it: (d, a, d unrounded) per block, float32:
    amax, d = amax / 127 (rounded to f16 for the 32-blocks), a = round-half-even(x * (127 / amax))."""
    bs = 32 if name in LEGACY else 256
    xb = x.astype(np.float32).reshape(-1, bs)
    amax = np.abs(xb).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    a = np.rint((xb * inv).astype(np.float32))
    d_raw = (amax / np.float32(127)).astype(np.float32)
    d = d_raw.astype(np.float16).astype(np.float32) if name in LEGACY else d_raw
    return d, a, d_raw


def quantized_activation(name: str, x: np.ndarray) -> np.ndarray:
    """The activation the kernels actually multiply: x rounded to f16 / bf16 for those weights,
    x~ = d * a for the quantized ones."""
    if name == "F16":
        return x.astype(np.float16).astype(np.float64)
    if name == "BF16":
        return round_bf16(x).astype(np.float64)
    if name in FLOATS:
        return x.astype(np.float64)
    d, a, _ = q8_blocks(name, x)
    return (d.astype(np.float64) * a).reshape(-1)


def sum_rounding(name: str, wbytes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per row, what the f16 block sums of Q4_1 / Q5_1 add to W x~: sum over blocks of
    m * (f16(d_raw * sum(a)) - d * sum(a)). Zero for the other types."""
    if name not in SUM_F16:
        return np.zeros(wbytes.shape[0])
    d, a, d_raw = q8_blocks(name, x)
    sums = a.sum(axis=1, keepdims=True).astype(np.float32)
    s16 = (d_raw * sums).astype(np.float16).astype(np.float64)
    delta = (s16 - d.astype(np.float64) * sums)[:, 0]
    nb = delta.shape[0]
    m = wbytes.reshape(wbytes.shape[0], nb, -1)[:, :, 2:4].copy().view(np.float16).astype(np.float64)[..., 0]
    return m @ delta


def assert_within(name: str, wbytes: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Two checks: against W x within the activation-quantization bound (the engine's error), and
    against W x~ (x~ the quantized activation) within float rounding alone, which catches any
    integer or scale mistake far smaller than the first bound."""
    W = dequant(name, wbytes, x.shape[0]).astype(np.float64)
    ref = W @ x.astype(np.float64)
    bound, rounding = tolerance(name, wbytes, x)
    err = np.abs(y.astype(np.float64) - ref)
    worst = int(np.argmax(err - bound))
    assert np.all(err <= bound), (
        f"{name}: row {worst}: |ours - ref| = {err[worst]:.3e} > bound {bound[worst]:.3e} "
        f"(ours {y[worst]:.6g}, ref {ref[worst]:.6g})"
    )
    exact = W @ quantized_activation(name, x) + sum_rounding(name, wbytes, x)
    err = np.abs(y.astype(np.float64) - exact)
    worst = int(np.argmax(err - rounding))
    assert np.all(err <= rounding), (
        f"{name}: row {worst}: |ours - W x~| = {err[worst]:.3e} > rounding bound {rounding[worst]:.3e}"
    )


# ---- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_TYPES)
def test_matvec_random_shapes(name, isa):
    rng = np.random.default_rng(1000 + int(GT[name]))
    bs = 256 if name in KQUANTS else 32
    for n_rows, n_blocks in [(1, 1), (7, 3), (33, 5), (67, 18), (130, 2), (17, 48)]:
        n_cols = bs * n_blocks
        w = make_weights(name, n_rows, n_cols, rng)
        x = rng.standard_normal(n_cols).astype(np.float32)
        x[rng.integers(0, n_cols)] *= 30  # an outlier, as real activations have
        assert_within(name, w, x, matvec(name, w, x))


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_matvec_rows_longer_than_the_ordered_activation_buffer(name, isa):
    """The 4- and 5-bit AVX-512 row loop puts the activation in nibble order once, on the stack, for
    rows of up to 32768 values; longer rows take the loop that shuffles per row. Both must give the
    bits of the one-row kernel (pi_matvec_rows calls it per row)."""
    rng = np.random.default_rng(3)
    for n_blocks in (1024, 1025):  # 32768 values (the buffer's size), then one block more
        n_cols = 32 * n_blocks
        w = make_weights(name, 17, n_cols, rng)
        x = rng.standard_normal(n_cols).astype(np.float32)
        y = matvec(name, w, x)
        np.testing.assert_array_equal(y, matvec_rows(name, w, x, np.arange(17, dtype=np.int32)))
        assert_within(name, w, x, y)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_isas_agree(name):
    """Every ISA against the scalar path: only float rounding may differ."""
    if len(ISAS) < 2:
        pytest.skip("only the scalar path runs on this CPU")
    rng = np.random.default_rng(7 + int(GT[name]))
    bs = 256 if name in KQUANTS else 32
    n_cols = bs * (9 if bs == 32 else 3)
    w = make_weights(name, 45, n_cols, rng)
    x = rng.standard_normal(n_cols).astype(np.float32)
    _, rounding = tolerance(name, w, x)
    before = lib.pi_cpu_get_isa()
    try:
        results = {}
        for isa in ISAS:
            check(lib.pi_cpu_set_isa(isa))
            results[isa] = matvec(name, w, x).astype(np.float64)
    finally:
        check(lib.pi_cpu_set_isa(before))
    for isa in ISAS[1:]:
        diff = np.abs(results[isa] - results[ISAS[0]])
        assert np.all(diff <= 2 * rounding), f"{name}: {ISA_NAMES[isa]} vs scalar: {diff.max():.3e}"


REAL_TENSORS = [("Q4_1", "blk.0.ffn_down.weight"), ("Q4_1", "blk.3.attn_k.weight"), ("Q8_0", "token_embd.weight")]


@pytest.fixture(scope="module")
def smollm2_rows(smollm2_path):
    """The first 200 rows of a few SmolLM2 matrices, and an activation made from an embedding row."""
    reader = gguf.GGUFReader(str(smollm2_path))
    tensors = {t.name: t for t in reader.tensors}
    rows = {}
    for name, tensor in REAL_TENSORS:
        t = tensors[tensor]
        assert t.tensor_type == GT[name]
        data = np.asarray(t.data).view(np.uint8).reshape(int(t.shape[1]), -1)
        rows[tensor] = (int(t.shape[0]), np.ascontiguousarray(data[:200]))
    emb = np.asarray(tensors["token_embd.weight"].data)
    e = dequantize(emb[np.random.default_rng(3).integers(0, 1000)], GT.Q8_0).reshape(-1)
    return rows, e


@pytest.mark.parametrize("name,tensor", REAL_TENSORS)
def test_matvec_real_smollm2_rows(smollm2_rows, isa, name, tensor):
    rows, e = smollm2_rows
    n_cols, w = rows[tensor]
    # A realistic activation: an embedding row, scaled like the residual stream.
    x = np.resize(e, n_cols).astype(np.float32) * 20
    assert_within(name, w, x, matvec(name, w, x))


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K", "F16"])
def test_matvec_rows_equals_matvec(name, isa):
    rng = np.random.default_rng(11)
    bs = 256 if name in KQUANTS else 32
    n_cols = bs * 3
    w = make_weights(name, 50, n_cols, rng)
    x = rng.standard_normal(n_cols).astype(np.float32)
    full = matvec(name, w, x)
    rows = np.array([49, 0, 7, 7, 31, 2], dtype=np.int32)  # unsorted, with a repeat
    np.testing.assert_array_equal(matvec_rows(name, w, x, rows), full[rows])


def check_matmul_against_matvec(name: str, w: np.ndarray, n_cols: int, n_b: int, rng: np.random.Generator,
                                which=None) -> None:
    """n_b random activations through pi_matmul: the rows `which` (default: all) must hold exactly
    what pi_matvec gives each activation alone, and the last one must be within rounding of W x."""
    X = rng.standard_normal((n_b, n_cols)).astype(np.float32)
    Y = matmul(name, w, X)
    for b in (range(n_b) if which is None else sorted(set(which))):
        np.testing.assert_array_equal(Y[b], matvec(name, w, X[b]),
                                      err_msg=f"{name} {w.shape[0]} rows x {n_cols} n_b={n_b} b={b}")
    assert_within(name, w, X[n_b - 1], Y[n_b - 1])


@pytest.mark.parametrize("name", ALL_TYPES)
def test_matmul_equals_matvec(name, isa):
    """The batched path gives each activation exactly what matvec gives it, for batch sizes below,
    at and above the kernels' groups of 4 and the 64-activation chunks."""
    rng = np.random.default_rng(21 + int(GT[name]))
    bs = 256 if name in KQUANTS else 32
    n_cols = bs * (5 if bs == 32 else 2)
    w = make_weights(name, 13, n_cols, rng)
    for n_b in (1, 3, 4, 6, 70):
        check_matmul_against_matvec(name, w, n_cols, n_b, rng, which=(0, n_b // 2, n_b - 1))


@pytest.mark.parametrize("name", ["F16", "F32"])
def test_matmul_sixteen_row_path_equals_matvec(name, isa):
    """Attention's products: F16/F32 rows of any length (keys: head_dim; values: the positions
    seen, rarely a multiple of 16) against up to 4 activations go through the kernel that reduces
    sixteen rows together, with a masked last vector (rows of exactly 64, a common head_dim, have
    their own version that holds the activations in registers). Each (row, activation) must get
    the bits matvec gives it, for row counts around 16 and lengths with every kind of tail."""
    rng = np.random.default_rng(77)
    for n_rows, n_cols in [(37, 64), (16, 300), (45, 1000), (33, 7), (20, 257)]:
        w = make_weights(name, n_rows, n_cols, rng)
        for n_b in (1, 3, 4, 6):
            check_matmul_against_matvec(name, w, n_cols, n_b, rng)


def weighted_rows(name: str, V: np.ndarray, P: np.ndarray) -> np.ndarray:
    n_rows, n_cols = V.shape
    n_b = P.shape[0]
    out = np.full((n_b, n_cols), np.nan, dtype=np.float32)
    Pc = np.ascontiguousarray(P, dtype=np.float32)
    check(lib.pi_weighted_rows(int(GT[name]), ffi.from_buffer(np.ascontiguousarray(V)), n_rows, n_cols,
                               ffi.cast("float *", ffi.from_buffer(Pc)), n_b, ffi.cast("float *", ffi.from_buffer(out))))
    return out


def weighted_rows_in_order(V: np.ndarray, P: np.ndarray) -> np.ndarray:
    """The documented arithmetic: per output, a float32 fma chain over the rows in order. Emulated in
    float64: the product of an f32 and an f16/f32 is exact there, and the sum with the f32
    accumulator is rounded twice (to float64, then float32) instead of once, which can differ from
    fma only when the float64 sum lands exactly halfway between two floats; the assertion below
    would show such a case, and none occurs for these inputs."""
    Vf = V.astype(np.float64)
    acc = np.zeros((P.shape[0], V.shape[1]), dtype=np.float32)
    for r in range(V.shape[0]):
        acc = (P[:, r:r + 1].astype(np.float64) * Vf[r] + acc.astype(np.float64)).astype(np.float32)
    return acc


@pytest.mark.parametrize("name", ["F16", "F32"])
def test_weighted_rows_is_the_in_order_fma_sum(name, isa):
    """Attention's value product (V rows by position, weighted by the probabilities): every ISA
    gives exactly the in-order fma sum, for head sizes with and without a vector tail and for 1 to 9
    weight rows (query heads per KV head), so prompt and decoding and every ISA agree bit for bit."""
    rng = np.random.default_rng(5)
    dtype = np.float16 if name == "F16" else np.float32
    for n_rows, n_cols, n_b in [(1, 64, 1), (37, 64, 3), (300, 128, 4), (50, 80, 5), (17, 7, 2), (90, 200, 9)]:
        V = rng.standard_normal((n_rows, n_cols)).astype(dtype)
        P = rng.random((n_b, n_rows)).astype(np.float32)
        P /= P.sum(axis=1, keepdims=True)
        got = weighted_rows(name, V, P)
        want = weighted_rows_in_order(V, P)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} {n_rows}x{n_cols} n_b={n_b}")
        # and within float rounding of the exact product
        exact = P.astype(np.float64) @ V.astype(np.float64)
        assert np.abs(got - exact).max() <= 1e-5 * np.abs(V.astype(np.float64)).max() * 4


def test_weighted_rows_bad_arguments():
    V = np.ones((4, 8), dtype=np.float32)
    P = np.ones((1, 4), dtype=np.float32)
    out = np.empty((1, 8), dtype=np.float32)
    args = (ffi.from_buffer(V), 4, 8, ffi.cast("float *", ffi.from_buffer(P)), 1, ffi.cast("float *", ffi.from_buffer(out)))
    assert lib.pi_weighted_rows(int(GT.Q4_0), *args) == lib.PI_ERR_UNSUPPORTED
    assert lib.pi_weighted_rows(int(GT.F32), ffi.from_buffer(V), 4, 0, args[3], 1, args[5]) == lib.PI_ERR_INVALID_ARGUMENT
    assert lib.pi_weighted_rows(int(GT.F32), ffi.NULL, 4, 8, args[3], 1, args[5]) == lib.PI_ERR_INVALID_ARGUMENT


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
def test_matmul_row_blocks_equal_matvec(name, isa):
    """The batched product of the 32-value block types on AVX-512 takes sixteen rows and four
    activations at a time (the 4- and 5-bit types with the activations reordered once per chunk of
    64): every (row, activation) must get matvec's bits,
    for row counts with and without a remainder, batches not a multiple of 4 and past one chunk."""
    rng = np.random.default_rng(41 + int(GT[name]))
    for n_rows, n_blocks in [(37, 18), (16, 5), (48, 3)]:
        n_cols = 32 * n_blocks
        w = make_weights(name, n_rows, n_cols, rng)
        for n_b in (1, 3, 6, 70):
            check_matmul_against_matvec(name, w, n_cols, n_b, rng, which=(0, 1 % n_b, n_b // 2, n_b - 1))


def test_bad_arguments():
    x = np.ones(64, dtype=np.float32)
    y = np.empty(2, dtype=np.float32)
    w = np.zeros(2 * 36, dtype=np.uint8)
    xp = ffi.cast("float *", ffi.from_buffer(x))
    yp = ffi.cast("float *", ffi.from_buffer(y))
    with pytest.raises(PowerInferError, match="no matrix kernel"):
        check(lib.pi_matvec(int(GT.Q8_1), ffi.from_buffer(w), 2, 32, xp, yp))
    with pytest.raises(PowerInferError, match="multiple"):
        check(lib.pi_matvec(int(GT.Q4_0), ffi.from_buffer(w), 2, 48, xp, yp))
    rows = np.array([0, 2], dtype=np.int32)
    with pytest.raises(PowerInferError, match="outside"):
        check(lib.pi_matvec_rows(int(GT.Q4_0), ffi.from_buffer(w), 2, 32, xp,
                                 ffi.cast("int32_t *", ffi.from_buffer(rows)), 2, yp))
    assert lib.pi_cpu_set_isa(99) != 0


def test_isa_selection():
    before = lib.pi_cpu_get_isa()
    assert before in ISAS
    check(lib.pi_cpu_set_isa(0))  # auto: the best one
    assert lib.pi_cpu_get_isa() == max(ISAS)
    check(lib.pi_cpu_set_isa(before))


def test_avx512_without_vnni():
    """CPUs with AVX-512 but no VNNI (Skylake-X, Cascade Lake without it) take a vpmaddubsw path;
    POWERINFER_AVX512_VNNI=0 forces it here. The kernel table is built once per process, hence the
    child process."""
    if 3 not in ISAS:
        pytest.skip("no AVX-512 on this CPU")
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np, test_kernels as T\n"
        "from powerinfer_py._lib import check, lib\n"
        "check(lib.pi_cpu_set_isa(3))\n"
        "rng = np.random.default_rng(99)\n"
        "for name in T.LEGACY:\n"
        "    for n_rows, nb in [(5, 1), (9, 7), (33, 18)]:\n"
        "        w = T.make_weights(name, n_rows, 32 * nb, rng)\n"
        "        x = rng.standard_normal(32 * nb).astype(np.float32)\n"
        "        T.assert_within(name, w, x, T.matvec(name, w, x))\n"
        "        X = rng.standard_normal((5, 32 * nb)).astype(np.float32)\n"
        "        Y = T.matmul(name, w, X)\n"
        "        T.assert_within(name, w, X[4], Y[4])\n"
        "print('ok')\n"
    )
    here = Path(__file__).resolve().parent
    env = dict(os.environ, POWERINFER_AVX512_VNNI="0",
               PYTHONPATH=os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_f16_conversion_equals_numpy(isa):
    """Rows quantized to F16 (the KV cache's writes and pi_quantize_row go through the same SIMD
    conversion, 8 values at a time plus a scalar tail) give numpy's float16 bits: ties to even,
    subnormals, overflow to infinity, signed zeros; NaN stays NaN."""
    rng = np.random.default_rng(5)
    special = np.array([0.0, -0.0, 65504.0, 65520.0, -65520.0, 1e9, 6e-8, 3e-8, -2.9e-8, 1e-5, np.inf, -np.inf,
                        1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 2.0**-24, 2.0**-25], np.float32)
    for n in (1, 7, 8, 9, 64, 67, 1000):
        x = (rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 5, n)).astype(np.float32)
        x[: min(n, special.size)] = special[: min(n, special.size)]
        got = np.zeros(n, np.uint16)
        check(lib.pi_quantize_row(int(GT["F16"]), ffi.from_buffer("float[]", x), ffi.from_buffer(got), n))
        with np.errstate(over="ignore"):  # overflow to infinity is one of the cases
            want = x.astype(np.float16).view(np.uint16)
        np.testing.assert_array_equal(got, want, err_msg=f"n={n}")
    x = np.full(9, np.nan, np.float32)
    got = np.zeros(9, np.uint16)
    check(lib.pi_quantize_row(int(GT["F16"]), ffi.from_buffer("float[]", x), ffi.from_buffer(got), 9))
    assert np.isnan(got.view(np.float16)).all()
