"""Our row dequantizers and quantizers (pi_dequantize_row, pi_quantize_row) against gguf.quants.

Tolerances, stated once:
  - Dequantization, every type: EXACT. Our scalar code does the float32 operations of the format's
    definition in gguf.quants' order ((d * sc) * q - dmin * m, ...), so values are bit-identical
    (NaN where gguf gives NaN, from random bytes holding NaN scales).
  - Quantization to F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: the bytes equal gguf.quants.quantize
    bit for bit (the format's reference rounding, which gguf.quants implements).
  - K-quants (gguf.quants has no quantizer for them): our bytes read back identically through
    gguf.quants.dequantize, and the error of dequantize(quantize(x)), as RMSE relative to the RMS
    of x, stays under KQ_REL_RMSE on Gaussian data (measured: Q2_K 0.265, Q3_K 0.144, Q4_K 0.0705,
    Q5_K 0.0346, Q6_K 0.0165) and under 0.95 x the error of a plain absmax quantizer written
    below, on Gaussian data and on real SmolLM2 rows.
"""
from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf.quants import dequantize as g_dequantize  # noqa: E402
from gguf.quants import quantize as g_quantize  # noqa: E402

from powerinfer_py.errors import InvalidArgumentError, UnsupportedError  # noqa: E402
from powerinfer_py.quantize import dequantize_row, quantize_row, type_id  # noqa: E402

FLOATS = ["F32", "F16", "BF16"]
LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
KQUANTS = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
ALL_TYPES = FLOATS + LEGACY + KQUANTS
EXACT_QUANTIZERS = ["F16", "BF16"] + LEGACY  # gguf.quants can quantize these

KQ_REL_RMSE = {"Q2_K": 0.28, "Q3_K": 0.155, "Q4_K": 0.075, "Q5_K": 0.037, "Q6_K": 0.018}
BASELINE_RATIO = 0.95


def sizes(name: str) -> tuple[int, int]:
    """(values per block, bytes per block)."""
    if name == "F32":
        return 1, 4
    if name in ("F16", "BF16"):
        return 1, 2
    return gguf.GGML_QUANT_SIZES[GT[name]]


def ref_dequantize(name: str, raw: np.ndarray) -> np.ndarray:
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if name == "F32":
        return raw.view(np.float32).copy()
    if name == "BF16":  # gguf.quants.dequantize wants the BF16 rows as raw bytes of a 2-D array
        return g_dequantize(raw.reshape(1, -1), GT.BF16).reshape(-1)
    return g_dequantize(raw.reshape(1, -1), GT[name]).reshape(-1)


def ref_quantize(name: str, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(g_quantize(x.reshape(1, -1), GT[name])).view(np.uint8).reshape(-1)


def rel_rmse(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2)) / np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def distributions(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal(n).astype(np.float32)
    outliers = normal.copy()
    outliers[rng.integers(0, n, n // 50)] *= 200.0
    blocks_const = np.repeat(rng.standard_normal(n // 32), 32).astype(np.float32)
    mixed = normal.copy()
    mixed[: n // 2] = 0.0  # zero blocks next to ordinary ones
    return {
        "normal": normal,
        "uniform": rng.uniform(-3, 3, n).astype(np.float32),
        "zeros": np.zeros(n, np.float32),
        "half_zeros": mixed,
        "outliers": outliers,
        "tiny": (normal * 1e-6).astype(np.float32),
        "subnormal_scales": (normal * 1e-9).astype(np.float32),
        "large": (normal * 1e3).astype(np.float32),
        "positive": np.abs(normal) + 0.5,
        "negative": -np.abs(normal) - 0.5,
        "constant_blocks": blocks_const,
    }


# ---- real rows of SmolLM2 --------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    return gguf.GGUFReader(str(smollm2_path))


def tensor(reader, name):
    return next(t for t in reader.tensors if t.name == name)


@pytest.fixture(scope="module")
def real_values(smollm2) -> np.ndarray:
    """Real weights: 8 rows of an ffn_down (Q4_1, 1536 wide) and 8 of token_embd (Q8_0, 576 wide)
    dequantized by gguf.quants: 8 * 1536 + 8 * 576 = 16896 values (66 super-blocks)."""
    down = tensor(smollm2, "blk.5.ffn_down.weight")
    emb = tensor(smollm2, "token_embd.weight")
    a = g_dequantize(np.array(down.data[:8]), GT.Q4_1).reshape(-1)
    b = g_dequantize(np.array(emb.data[1000:1008]), GT.Q8_0).reshape(-1)
    return np.concatenate([a, b]).astype(np.float32)


def test_smollm2_tensor_types(smollm2):
    """The file holds Q4_1 and Q8_0 matrices and F32 vectors; the other types are tested on its
    real values re-quantized (test_dequantize_real_values)."""
    types = {t.tensor_type.name for t in smollm2.tensors}
    assert types == {"Q4_1", "Q8_0", "F32"}


@pytest.mark.parametrize("name", ["blk.0.ffn_down.weight", "blk.29.attn_q.weight", "token_embd.weight",
                                  "blk.3.attn_norm.weight"])
def test_dequantize_real_smollm2_rows(smollm2, name):
    t = tensor(smollm2, name)
    data = np.array(t.data)
    rows = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data.reshape(1, -1)
    qtype = t.tensor_type.name
    n = int(t.shape[0])
    for r in list(range(min(4, rows.shape[0]))) + [rows.shape[0] - 1]:
        raw = rows[r].view(np.uint8)
        ours = dequantize_row(qtype, raw, n)
        assert np.array_equal(ours, ref_dequantize(qtype, raw).reshape(-1)), (name, r)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_dequantize_real_values(real_values, name):
    """Real SmolLM2 values quantized to each type (by gguf.quants, or by us for K-quants), then
    dequantized by both: exact."""
    x = real_values
    raw = quantize_row(name, x) if name in KQUANTS or name == "F32" else ref_quantize(name, x)
    assert np.array_equal(dequantize_row(name, raw, x.size), ref_dequantize(name, raw))


# ---- dequantization of random bytes ----------------------------------------------------------


@pytest.mark.parametrize("name", ALL_TYPES)
def test_dequantize_random_bytes(name):
    """Every bit pattern of a block is a valid block: random bytes (NaN and inf scales included)
    dequantize identically, NaN where gguf gives NaN."""
    rng = np.random.default_rng(7)
    bs, bb = sizes(name)
    n = 256 * 24
    raw = rng.integers(0, 256, size=n // bs * bb, dtype=np.uint8)
    ours = dequantize_row(name, raw, n)
    with np.errstate(all="ignore"):
        ref = ref_dequantize(name, raw)
    assert np.array_equal(ours, ref, equal_nan=True)


@pytest.mark.parametrize("name", ALL_TYPES)
def test_dequantize_random_bytes_sane_scales(name):
    """Random codes with finite scales: exact, and no NaN at all."""
    rng = np.random.default_rng(11)
    bs, bb = sizes(name)
    if name in FLOATS:
        x = rng.standard_normal(4096).astype(np.float32)
        raw = quantize_row(name, x)
    else:
        raw = rng.integers(0, 256, size=(4096 // bs, bb), dtype=np.uint8)
        scale_offsets = {"Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
                         "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0]}[name]
        for off in scale_offsets:
            s = rng.uniform(-0.01, 0.01, size=raw.shape[0]).astype(np.float16)
            raw[:, off:off + 2] = s.view(np.uint8).reshape(-1, 2)
        raw = raw.reshape(-1)
    ours = dequantize_row(name, raw, 4096)
    assert np.all(np.isfinite(ours))
    assert np.array_equal(ours, ref_dequantize(name, raw))


# ---- quantization ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXACT_QUANTIZERS + ["F32"])
@pytest.mark.parametrize("dist", list(distributions(64).keys()))
def test_quantize_bit_exact_vs_gguf(name, dist):
    x = distributions(256 * 32, seed=3)[dist]
    ours = quantize_row(name, x)
    ref = x.view(np.uint8) if name == "F32" else ref_quantize(name, x)
    assert ours.size == ref.size
    diff = np.flatnonzero(ours != ref)
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:5]}"


@pytest.mark.parametrize("name", EXACT_QUANTIZERS)
def test_quantize_bit_exact_real_values(real_values, name):
    assert np.array_equal(quantize_row(name, real_values), ref_quantize(name, real_values))


def test_quantize_q8_1_codes_and_sum():
    """Q8_1 (activation format) holds Q8_0's scale and codes, plus s = d * sum(q) in half."""
    x = distributions(1024, seed=5)["normal"]
    q81 = quantize_row("Q8_1", x).reshape(-1, 36)
    q80 = ref_quantize("Q8_0", x).reshape(-1, 34)
    assert np.array_equal(q81[:, :2], q80[:, :2]) and np.array_equal(q81[:, 4:], q80[:, 2:])
    d = q81[:, :2].copy().view(np.float16).astype(np.float32).reshape(-1)
    s = q81[:, 2:4].copy().view(np.float16).reshape(-1)
    sums = q81[:, 4:].view(np.int8).astype(np.int32).sum(axis=1)
    assert np.array_equal(s, (d * sums.astype(np.float32)).astype(np.float16))
    assert np.array_equal(dequantize_row("Q8_1", q81.reshape(-1), x.size), g_dequantize(q80, GT.Q8_0).reshape(-1))


def test_quantize_q8_k_roundtrip():
    """Q8_K (K-quant activations): each value within half a step d / 2 of x, bsums = sums of 16."""
    x = distributions(2048, seed=6)["outliers"]
    raw = quantize_row("Q8_K", x)
    y = dequantize_row("Q8_K", raw, x.size)
    blocks = raw.reshape(-1, 292)
    d = blocks[:, :4].copy().view(np.float32).reshape(-1)
    assert np.all(np.abs(y - x).reshape(-1, 256) <= (d[:, None] / 2) * (1 + 1e-6))
    qs = blocks[:, 4:260].view(np.int8).astype(np.int32)
    bsums = blocks[:, 260:].copy().view(np.int16)
    assert np.array_equal(bsums, qs.reshape(-1, 16, 16).sum(axis=2))


# A plain absmax K-quantizer (the baseline): per sub-block scale = range / qmax (affine types) or
# max|x| / qmax (symmetric types), scales and mins rounded to the integer grid of the largest one.
K_SPEC = {"Q2_K": (16, True, 0, 3, 15, 15), "Q3_K": (16, False, -4, 3, 31, 0),
          "Q4_K": (32, True, 0, 15, 63, 63), "Q5_K": (32, True, 0, 31, 63, 63),
          "Q6_K": (16, False, -32, 31, 127, 0)}


def absmax_baseline(name: str, x: np.ndarray) -> np.ndarray:
    sub, affine, qmin, qmax, sc_hi, mn_hi = K_SPEC[name]
    xb = x.reshape(-1, 256 // sub, sub).astype(np.float32)

    def half(v):
        return v.astype(np.float16).astype(np.float32)

    with np.errstate(all="ignore"):
        if affine:
            lo, hi = np.minimum(xb.min(-1), 0), xb.max(-1)
            s, m = (hi - lo) / qmax, -lo
            d, dm = half(s.max(-1, keepdims=True) / sc_hi), half(m.max(-1, keepdims=True) / mn_hi)
            sc = np.clip(np.nan_to_num(np.round(s / d)), 0, sc_hi)
            mn = np.clip(np.nan_to_num(np.round(m / dm)), 0, mn_hi)
            S, M = (d * sc)[..., None], (dm * mn)[..., None]
            q = np.clip(np.nan_to_num(np.round((xb + M) / S)), qmin, qmax)
            return (S * q - M).reshape(-1)
        s = np.abs(xb).max(-1) / qmax
        d = half(s.max(-1, keepdims=True) / sc_hi)
        S = (d * np.clip(np.nan_to_num(np.round(s / d)), -sc_hi, sc_hi))[..., None]
        q = np.clip(np.nan_to_num(np.round(xb / S)), qmin, qmax)
        return (S * q).reshape(-1)


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_roundtrip_gaussian(name):
    x = distributions(256 * 256, seed=1)["normal"]
    raw = quantize_row(name, x)
    y = dequantize_row(name, raw, x.size)
    assert np.array_equal(y, ref_dequantize(name, raw))  # our bytes mean the same to gguf.quants
    err = rel_rmse(y, x)
    assert err <= KQ_REL_RMSE[name], err
    assert err <= BASELINE_RATIO * rel_rmse(absmax_baseline(name, x), x)


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_roundtrip_real_values(real_values, name):
    x = real_values
    raw = quantize_row(name, x)
    y = dequantize_row(name, raw, x.size)
    assert np.array_equal(y, ref_dequantize(name, raw))
    assert rel_rmse(y, x) <= BASELINE_RATIO * rel_rmse(absmax_baseline(name, x), x)
    assert rel_rmse(y, x) <= KQ_REL_RMSE[name]


@pytest.mark.parametrize("name", KQUANTS)
@pytest.mark.parametrize("dist", ["zeros", "half_zeros", "outliers", "tiny", "large", "positive",
                                  "negative", "constant_blocks", "uniform"])
def test_kquant_roundtrip_distributions(name, dist):
    """Edge distributions: zeros stay exactly zero; otherwise finite, never worse than absmax by
    more than 2%, and for values whose scales are normal halves (not tiny), within the Gaussian
    bound times 1.5 (uniform and constant data are easier, outliers are a worst case:
    only the baseline comparison applies)."""
    x = distributions(256 * 64, seed=2)[dist]
    raw = quantize_row(name, x)
    y = dequantize_row(name, raw, x.size)
    assert np.array_equal(y, ref_dequantize(name, raw))
    assert np.all(np.isfinite(y))
    if dist == "zeros":
        assert np.all(y == 0)
        return
    if dist == "half_zeros":
        assert np.all(y[: x.size // 2] == 0)
    err = rel_rmse(y, x)
    assert err <= 1.02 * rel_rmse(absmax_baseline(name, x), x) + 1e-7
    if dist in ("uniform", "large", "positive", "negative", "constant_blocks", "half_zeros"):
        assert err <= 1.5 * KQ_REL_RMSE[name], err


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 4, 5, 31, 99])
def test_bad_type_ids(bad):
    from powerinfer_py._lib import check, ffi, lib

    x = np.zeros(256, np.float32)
    out = np.zeros(2048, np.uint8)
    with pytest.raises(InvalidArgumentError, match="unknown type id"):
        check(lib.pi_quantize_row(bad, ffi.from_buffer("float[]", x), ffi.from_buffer(out), 256))
    with pytest.raises(InvalidArgumentError, match="unknown type id"):
        check(lib.pi_dequantize_row(bad, ffi.from_buffer(out), ffi.from_buffer("float[]", x), 256))


def test_types_without_converters():
    """IQ2_XXS (16) is a known GGUF type that we neither read nor write; I32 has no float form."""
    from powerinfer_py._lib import check, ffi, lib

    x = np.zeros(256, np.float32)
    out = np.zeros(4096, np.uint8)
    for t in (16, 26):
        with pytest.raises(UnsupportedError, match="no quantizer"):
            check(lib.pi_quantize_row(t, ffi.from_buffer("float[]", x), ffi.from_buffer(out), 256))
        with pytest.raises(UnsupportedError, match="no dequantizer"):
            check(lib.pi_dequantize_row(t, ffi.from_buffer(out), ffi.from_buffer("float[]", x), 256))


@pytest.mark.parametrize("name,n", [("Q4_0", 48), ("Q8_0", 33), ("Q4_K", 32), ("Q6_K", 300), ("Q2_K", -256)])
def test_n_not_a_multiple_of_the_block(name, n):
    from powerinfer_py._lib import check, ffi, lib

    x = np.zeros(512, np.float32)
    out = np.zeros(4096, np.uint8)
    with pytest.raises(InvalidArgumentError, match="not a multiple of the .* block size"):
        check(lib.pi_quantize_row(type_id(name), ffi.from_buffer("float[]", x), ffi.from_buffer(out), n))
    with pytest.raises(InvalidArgumentError, match="not a multiple"):
        check(lib.pi_dequantize_row(type_id(name), ffi.from_buffer(out), ffi.from_buffer("float[]", x), n))
    if n > 0:
        with pytest.raises(InvalidArgumentError, match="not a multiple"):
            quantize_row(name, np.zeros(n, np.float32))


def test_null_buffers():
    from powerinfer_py._lib import check, ffi, lib

    with pytest.raises(InvalidArgumentError, match="NULL"):
        check(lib.pi_quantize_row(2, ffi.NULL, ffi.NULL, 32))
    check(lib.pi_quantize_row(2, ffi.NULL, ffi.NULL, 0))  # nothing to do


def test_python_row_helpers_validate():
    with pytest.raises(ValueError, match="valid types: .*Q4_K"):
        quantize_row("Q4_9", np.zeros(32, np.float32))
    with pytest.raises(ValueError, match="bytes do not hold"):
        dequantize_row("Q4_0", np.zeros(17, np.uint8), 32)
    assert type_id("q4_k") == 12 and type_id(" Q8_0 ") == 8 and type_id(30) == 30
