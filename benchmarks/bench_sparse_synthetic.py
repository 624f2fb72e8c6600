"""Whole-model decode, sparse against dense, on 7B-shaped ReLU models with random weights: what our
engine would give a ProSparse- or Bamboo-class model that this machine cannot download.

    python benchmarks/bench_sparse_synthetic.py [--shape relullama-7b,bamboo-7b] [--fire 0.1]
        [--pred-width 1024] [--threads 2] [--tokens 32] [--runs 5]

Each shape is written once (about 4 GB each, Q4_0 as PowerInfer's q4 files: predictors Q4_0, head
Q6_K) into ~/.cache/powerinfer-py/bench/ and read with use_mmap=False (2 MB pages, as the speed
report). The weights are random bytes, built so that the sparse path does the work a real sparse
model makes it do, with the densities set rather than trained:
- a share of each layer's neurons is "live": their gate rows are random, so about half of them
  fire at each token (ReLU(gate x) > 0; a quarter for bamboo, which needs up x > 0 too), a share
  `fire` of the layer; the others have gate rows of zeros (read like any row) and never fire;
- the predictor's fc2 row of a live neuron holds only positive values and that of any other neuron
  only negative ones, and fc1's output passes a ReLU, so the predictor marks exactly the live
  neurons: recall 1, precision about 0.5 (bamboo 0.25), as trained predictors give (issue 7's:
  0.25-0.63).
The one difference from a real model: a live set that does not move from token to token (a real
model's hot neurons move a little). At these sizes nothing stays in the cache from one token to
the next (a token reads gigabytes), so this changes no read from memory.

Prints, per shape, the bytes one token reads in each mode and their ratio (the speed-up that
bandwidth alone allows), then the median decode tokens/s of dense and predictor modes (turns
taken within each run) and their ratio. Dense mode computes every gate and up row; both modes
skip the down rows of neurons that did not fire (as PowerInfer does).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see bench_decode.py

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sparse_decode import run_once  # noqa: E402  (prompt, then greedy steps, stats reset between)

# name: (n_embd, n_ff, n_head, n_head_kv, n_layer, n_vocab, arch)
SHAPES = {
    "relullama-7b": (4096, 11008, 32, 32, 32, 32000, "llama"),  # Llama-2-7B: ReluLLaMA, ProSparse
    "relumistral-7b": (4096, 14336, 32, 8, 32, 32000, "llama"),  # Mistral-7B with ReluLLaMA's FFN
    "bamboo-7b": (4096, 14336, 32, 8, 32, 32000, "bamboo"),  # Mistral-7B: Bamboo (dReLU)
    "tiny": (256, 1024, 4, 4, 2, 512, "llama"),  # for tests/test_bench_sparse_synthetic.py
}
# The share of the live neurons that fire at a token: ReLU(gate x) > 0 half the time (llama), and
# bamboo's ReLU(gate x) * ReLU(up x) needs up x > 0 as well.
FIRE_SHARE = {"llama": 0.5, "bamboo": 0.25}
Q4_0_BYTES, Q6_K_BYTES = 18, 210


def q4_0_rows(rng, rows: int, cols: int, *, nibbles=(1, 16), zero_rows=None) -> np.ndarray:
    """Random Q4_0 rows (uint8 [rows, cols / 32 * 18]) with nibbles drawn from [lo, hi) (values
    nibble - 8: the default 1..15 gives -7..7, mean 0, so that no direction of the residual stream
    grows layer after layer) and the block scale that gives each row a norm of about 1; rows in
    zero_rows get the scale 0."""
    nb = cols // 32
    b = np.empty((rows, nb, Q4_0_BYTES), np.uint8)
    lo, hi = nibbles
    b[:, :, 2:] = rng.integers(lo, hi, (rows, nb, 16), dtype=np.uint8) | (rng.integers(lo, hi, (rows, nb, 16), dtype=np.uint8) << 4)
    d = np.full((rows, nb), 1.0 / np.sqrt(18.7 * cols), np.float16)
    if zero_rows is not None:
        d[zero_rows] = 0
    b[:, :, :2] = d.view(np.uint8).reshape(rows, nb, 2)
    return b.reshape(rows, -1)


def q6_k_rows(rng, rows: int, cols: int) -> np.ndarray:
    """Random Q6_K rows (uint8 [rows, cols / 256 * 210]) with a small super-block scale."""
    nb = cols // 256
    b = rng.integers(0, 256, (rows, nb, Q6_K_BYTES), dtype=np.uint8)
    b[:, :, 208:] = np.full((rows, nb), 1.0 / (32 * 128 * np.sqrt(cols)), np.float16).view(np.uint8).reshape(rows, nb, 2)
    return b.reshape(rows, -1)


def write_model(path: Path, shape: str, fire: float, pred_width: int, seed: int = 0) -> None:
    import gguf

    from powerinfer_py.sparse_gguf import PWRI, _vocab, add_small_model_hparams, set_magic

    E, FF, NH, NKV, NL, NV, arch = SHAPES[shape]
    rng = np.random.default_rng(seed)
    n_live = int(round(fire / FIRE_SHARE[arch] * FF))
    live = np.zeros(FF, bool)
    live[rng.choice(FF, n_live, replace=False)] = True
    hd = E // NH
    # One array per kind of tensor, shared by every layer (the writer writes it once per layer):
    # the layers' weights are alike, their inputs are not.
    attn_q, attn_o = q4_0_rows(rng, E, E), q4_0_rows(rng, E, E)
    attn_kv = q4_0_rows(rng, NKV * hd, E)
    gate = q4_0_rows(rng, FF, E, zero_rows=~live)
    up, down_t = q4_0_rows(rng, FF, E), q4_0_rows(rng, FF, E)
    fc1 = q4_0_rows(rng, pred_width, E)
    fc2 = np.where(live[:, None], q4_0_rows(rng, FF, pred_width, nibbles=(9, 16)),
                   q4_0_rows(rng, FF, pred_width, nibbles=(1, 8)))
    ones = np.ones(E, np.float32)
    q4, q6 = gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q6_K

    tmp = path.with_name(path.name + ".part")  # an interrupted write leaves no file that looks done
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_name(f"random sparse {shape} (benchmarks/bench_sparse_synthetic.py, fire {fire})")
    add_small_model_hparams(w, arch=arch, n_embd=E, n_ff=FF, n_layer=NL, n_head=NH, n_head_kv=NKV)
    _vocab(w, NV)
    w.add_tensor("token_embd.weight", q4_0_rows(rng, NV, E), raw_dtype=q4)
    for i in range(NL):
        b = f"blk.{i}."
        for name, data in (("attn_q", attn_q), ("attn_k", attn_kv), ("attn_v", attn_kv), ("attn_output", attn_o),
                           ("ffn_gate", gate), ("ffn_up", up), ("ffn_down_t", down_t)):
            w.add_tensor(b + name + ".weight", data, raw_dtype=q4)
        w.add_tensor(b + "attn_norm.weight", ones)
        w.add_tensor(b + "ffn_norm.weight", ones)
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", q6_k_rows(rng, NV, E), raw_dtype=q6)
    for i in range(NL):
        w.add_tensor(f"blk.{i}.fc1.weight", fc1, raw_dtype=q4)
        w.add_tensor(f"blk.{i}.fc2.weight", fc2, raw_dtype=q4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    set_magic(tmp, PWRI)
    os.replace(tmp, path)


def token_bytes(shape: str, pred_width: int, computed: float, fired: float) -> dict:
    """Bytes one decode step reads: every attention weight, the head, one embedding row; dense:
    every gate and up row and the fired down rows; sparse: the predictor, then the computed gate
    and up rows and the fired down rows (the KV cache of a short context left out)."""
    E, FF, NH, NKV, NL, NV, _ = SHAPES[shape]
    q4 = Q4_0_BYTES / 32
    attn = (2 * E * E + 2 * NKV * (E // NH) * E) * q4
    fixed = NL * attn + NV * E * Q6_K_BYTES / 256 + E * q4
    row = E * q4
    dense = fixed + NL * FF * row * (2 + fired)
    sparse = fixed + NL * ((E + FF) * pred_width * q4 + FF * row * (2 * computed + fired))
    return {"dense": dense, "sparse": sparse}


def main() -> None:
    from powerinfer_py import Llama

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="relullama-7b,bamboo-7b", help=f"comma-separated, of {', '.join(SHAPES)}")
    ap.add_argument("--fire", type=float, default=0.10, help="share of each layer's neurons that fire per token")
    ap.add_argument("--pred-width", type=int, default=1024, help="the predictors' hidden width (multiple of 32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32, help="decode steps per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="~/.cache/powerinfer-py/bench")
    args = ap.parse_args()
    if not 0 < args.fire <= 0.25 or args.pred_width % 32:
        ap.error("--fire must be in (0, 0.25] and --pred-width a multiple of 32")
    folder = Path(args.dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for shape in args.shape.split(","):
        if shape not in SHAPES:
            ap.error(f"--shape {shape}: expected one of {', '.join(SHAPES)}")
        path = folder / f"{shape}-fire{args.fire:g}-w{args.pred_width}.powerinfer.gguf"
        if not path.is_file():
            t0 = time.time()
            write_model(path, shape, args.fire, args.pred_width)
            print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB, {time.time() - t0:.0f} s)", flush=True)
        modes = ("dense", "predictor")
        llms = {m: Llama(str(path), n_ctx=256, n_threads=args.threads, n_threads_batch=args.threads, use_mmap=False,
                         verbose=False, sparse_mode=m) for m in modes}
        try:
            prompt = [1] + list(range(300, 315))
            for m in modes:
                run_once(llms[m], prompt, 4)  # warm-up
            speeds = {m: [] for m in modes}
            for _ in range(args.runs):
                for m in modes:
                    speeds[m].append(run_once(llms[m], prompt, args.tokens))
            stats = {m: llms[m].sparsity_stats() for m in modes}  # of each mode's last run
            st = stats["predictor"]
            computed = st["ffn_density"]
            fired = statistics.fmean(ly["predicted_density"] * ly["precision"] for ly in st["layers"])
            tb = token_bytes(shape, args.pred_width, computed, fired)
            med = {m: statistics.median(v) for m, v in speeds.items()}
            print(f"{shape}: {args.threads} threads, {args.tokens} decode steps after {len(prompt)} tokens, "
                  f"median of {args.runs}; predicted (computed) {computed * 100:.1f}% of neurons, fired "
                  f"{fired * 100:.1f}%, predictor width {args.pred_width}")
            print(f"  bytes per token: dense {tb['dense'] / 1e6:.0f} MB, sparse {tb['sparse'] / 1e6:.0f} MB, "
                  f"ratio {tb['dense'] / tb['sparse']:.2f}x (the bound)")
            for m in modes:
                print(f"  {m:9} {med[m]:7.2f} tok/s  {med[m] / med['dense']:.2f}x dense  "
                      f"({tb['dense' if m == 'dense' else 'sparse'] * med[m] / 1e9:.1f} GB/s)  runs "
                      + " ".join(f"{v:.2f}" for v in speeds[m]))
                t = stats[m]["time_ms"]
                print("            per token: " + ", ".join(f"{k} {v / args.tokens:.1f} ms" for k, v in t.items()))
        finally:
            for llm in llms.values():
                llm.close()


if __name__ == "__main__":
    main()
