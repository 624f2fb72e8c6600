"""Matrix-vector kernel speed: GB/s of weight bytes read per second, per weight type and SIMD path,
on one thread and on several (each thread takes a share of the rows, as the engine's pool does).

    POWERINFER_LIB_PATH=build python3 benchmarks/bench_kernels.py [--mb 128] [--threads 2]
        [--types Q4_1,Q8_0] [--isas scalar,avx2,avx512] [--bandwidth 30] [--batched 64]

The matrix (--mb megabytes, larger than the last-level cache so that weights come from memory, as
in decoding) has 2048 columns, or 2304 for types whose blocks need it. Decoding is bound by memory
bandwidth, so the figure that matters is the fraction of the machine's read bandwidth
(--bandwidth, GB/s) a kernel reaches. pi_matvec releases the GIL (cffi), so Python threads run the
rows in parallel; each call also quantizes the activation, a cost the engine pays once per matrix too.
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package from this checkout
from powerinfer_py._lib import check, ffi, lib  # noqa: E402

TYPES = {  # name: (id, block size, block bytes)
    "F32": (0, 1, 4), "F16": (1, 1, 2), "BF16": (30, 1, 2),
    "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34),
    "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
}
ISAS = {"scalar": 1, "avx2": 2, "avx512": 3}
# Byte offsets of the f16 scale fields in a block of each quantized type.
SCALE_OFFSETS = {
    "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,),
    "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,),
}


def make_matrix(name: str, mb: float, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    tid, bs, bb = TYPES[name]
    n_cols = 2304 if bs == 256 else 2048
    row_bytes = n_cols // bs * bb
    n_rows = int(mb * 1e6) // row_bytes
    if name == "F32":
        w = rng.standard_normal((n_rows, n_cols), dtype=np.float32).view(np.uint8)
    elif name == "F16":
        w = rng.standard_normal((n_rows, n_cols), dtype=np.float32).astype(np.float16).view(np.uint8)
    elif name == "BF16":
        w = (rng.standard_normal((n_rows, n_cols), dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    else:
        # Random bytes are valid blocks; speed does not depend on the integer values. The f16
        # scales are set to ordinary magnitudes (random halves would include subnormals and
        # infinities, which slow some float units down and never occur in real models).
        w = rng.integers(0, 256, size=(n_rows, n_cols // bs, bb), dtype=np.uint8)
        half = np.frombuffer(np.float16(1e-3).tobytes(), dtype=np.uint8)
        for off in SCALE_OFFSETS[name]:
            w[:, :, off:off + 2] = half
    return np.ascontiguousarray(w.reshape(n_rows, row_bytes)), n_rows, n_cols


def run_once(tid: int, w: np.ndarray, n_rows: int, n_cols: int, x: np.ndarray, y: np.ndarray,
             pool: ThreadPoolExecutor | None, n_threads: int) -> None:
    row_bytes = w.shape[1]
    wp = ffi.cast("uint8_t *", ffi.from_buffer(w))
    xp = ffi.cast("float *", ffi.from_buffer(x))
    yp = ffi.cast("float *", ffi.from_buffer(y))
    if pool is None:
        check(lib.pi_matvec(tid, wp, n_rows, n_cols, xp, yp))
        return
    bounds = [n_rows * t // n_threads for t in range(n_threads + 1)]
    futures = [pool.submit(lib.pi_matvec, tid, wp + bounds[t] * row_bytes, bounds[t + 1] - bounds[t], n_cols, xp,
                           yp + bounds[t]) for t in range(n_threads)]
    for f in futures:
        check(f.result())


def measure(name: str, w: np.ndarray, n_rows: int, n_cols: int, n_threads: int, min_time: float) -> float:
    tid = TYPES[name][0]
    x = np.random.default_rng(0).standard_normal(n_cols).astype(np.float32)
    y = np.empty(n_rows, dtype=np.float32)
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        run_once(tid, w, n_rows, n_cols, x, y, pool, n_threads)  # warm up
        best = float("inf")
        spent = 0.0
        reps = 0
        while spent < min_time or reps < 3:
            t0 = time.perf_counter()
            run_once(tid, w, n_rows, n_cols, x, y, pool, n_threads)
            dt = time.perf_counter() - t0
            best = min(best, dt)
            spent += dt
            reps += 1
    finally:
        if pool:
            pool.shutdown()
    return w.nbytes / best / 1e9


def measure_batched(name: str, n_b: int, min_time: float, rng: np.random.Generator) -> float:
    """GMAC/s of pi_matmul (the prompt path) with n_b activations against a 4 MB matrix, one thread."""
    w, n_rows, n_cols = make_matrix(name, 4.0, rng)
    X = rng.standard_normal((n_b, n_cols), dtype=np.float32)
    Y = np.empty((n_b, n_rows), dtype=np.float32)
    args = (TYPES[name][0], ffi.cast("uint8_t *", ffi.from_buffer(w)), n_rows, n_cols,
            ffi.cast("float *", ffi.from_buffer(X)), n_b, ffi.cast("float *", ffi.from_buffer(Y)))
    check(lib.pi_matmul(*args))
    best, spent, reps = float("inf"), 0.0, 0
    while spent < min_time or reps < 3:
        t0 = time.perf_counter()
        check(lib.pi_matmul(*args))
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return n_rows * n_cols * n_b / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=128.0, help="weight megabytes per matrix")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--isas", default=",".join(ISAS))
    ap.add_argument("--bandwidth", type=float, default=30.0, help="machine read bandwidth, GB/s")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement")
    ap.add_argument("--batched", type=int, default=0, metavar="N_B",
                    help="instead: GMAC/s of the batched product (prompts) with N_B activations, 1 thread")
    args = ap.parse_args()

    rng = np.random.default_rng(1)
    before = lib.pi_cpu_get_isa()
    isas = [i for i in args.isas.split(",") if lib.pi_cpu_set_isa(ISAS[i]) == 0]
    check(lib.pi_cpu_set_isa(before))
    if args.batched:
        print(f"pi_matmul GMAC/s, {args.batched} activations, 1 thread (4 MB matrices)")
        try:
            for name in args.types.split(","):
                row = "  ".join(f"{isa} {measure_batched(name, args.batched, args.min_time, rng) if lib.pi_cpu_set_isa(ISAS[isa]) == 0 else 0:7.1f}"
                                for isa in isas)
                print(f"{name:6} {row}", flush=True)
        finally:
            check(lib.pi_cpu_set_isa(before))
        return
    print(f"matvec GB/s of weights ({args.mb:.0f} MB matrices; fraction of {args.bandwidth:.0f} GB/s in brackets)")
    print(f"{'type':6} {'isa':7} {'1 thread':>16} {f'{args.threads} threads':>16}")
    try:
        for name in args.types.split(","):
            w, n_rows, n_cols = make_matrix(name, args.mb, rng)
            for isa in isas:
                check(lib.pi_cpu_set_isa(ISAS[isa]))
                g1 = measure(name, w, n_rows, n_cols, 1, args.min_time)
                gn = measure(name, w, n_rows, n_cols, args.threads, args.min_time)
                print(f"{name:6} {isa:7} {g1:8.2f} ({g1 / args.bandwidth:4.0%}) {gn:8.2f} ({gn / args.bandwidth:4.0%})",
                      flush=True)
    finally:
        check(lib.pi_cpu_set_isa(before))


if __name__ == "__main__":
    main()
