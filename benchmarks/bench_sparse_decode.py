"""Whole-model decode, sparse against dense, on the same file in the same process (issue 6 and
issue 9's "sparse decode >= 2x our own dense decode").

    python benchmarks/bench_sparse_decode.py [--model PATH] [--threads 2] [--tokens 128] [--runs 5]

The model defaults to the bundled one (powerinfer_py/models/relu-django-18m.q4.powerinfer.gguf).
One Llama per mode (dense, predictor, and oracle with --oracle), loaded once; each run evaluates a
fixed prompt, then times --tokens greedy decode steps (argmax of the logits, one token per call,
no sampling or detokenizing), the modes taking turns within each run so that a busy moment of the
machine falls on all of them alike. Prints per mode the median tokens/s over --runs, the ratio to
dense, the FFN density of the last run and the engine's stage times (attention, predictor, FFN) per
token.
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "from django.db import models\n\n\nclass Article(models.Model):\n"


def run_once(llm, prompt_ids, n_tokens: int) -> float:
    llm.reset()
    llm.eval(prompt_ids)
    llm._ctx.reset_sparse_stats()
    t0 = time.perf_counter()
    for _ in range(n_tokens):
        llm.eval([int(np.argmax(llm._ctx.logits()))])
    return n_tokens / (time.perf_counter() - t0)


def main() -> None:
    from powerinfer_py import Llama
    from powerinfer_py.assets import bundled_model_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a ReLU model with predictors (default: the bundled one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--oracle", action="store_true", help="also the oracle mode (gate computed densely)")
    args = ap.parse_args()
    path = args.model or str(bundled_model_path())
    modes = ["dense", "predictor"] + (["oracle"] if args.oracle else [])
    llms = {m: Llama(path, n_ctx=512, n_threads=args.threads, n_threads_batch=args.threads, verbose=False,
                     sparse_mode=m) for m in modes}
    try:
        prompt_ids = llms["dense"].tokenize(PROMPT.encode(), add_bos=True)
        speeds = {m: [] for m in modes}
        for m in modes:  # warm-up: page the weights in, size the buffers
            run_once(llms[m], prompt_ids, 8)
        for _ in range(args.runs):
            for m in modes:
                speeds[m].append(run_once(llms[m], prompt_ids, args.tokens))
        print(f"model {os.path.basename(path)}, {args.threads} threads, {args.tokens} greedy tokens after a "
              f"{len(prompt_ids)}-token prompt, median of {args.runs}")
        dense = statistics.median(speeds["dense"])
        for m in modes:
            tps = statistics.median(speeds[m])
            st = llms[m].sparsity_stats()
            t = st["time_ms"]
            dens = "-" if st["ffn_density"] is None else f"{st['ffn_density'] * 100:.1f}%"
            # the statistics cover the last run's decode steps: run_once resets them after the prompt
            stages = ", ".join(f"{k} {v / args.tokens * 1000:.0f} us" for k, v in t.items())
            print(f"{m:9} {tps:8.1f} tok/s  {tps / dense:5.2f}x dense  FFN density {dens:>6}  per token: {stages}")
    finally:
        for llm in llms.values():
            llm.close()


if __name__ == "__main__":
    main()
