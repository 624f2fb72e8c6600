"""The C sampler's cost per token on real logits, beside the decode step that produced them.

    python benchmarks/bench_sampler.py [model.gguf] [--threads 2] [--reps 10]

Greedy-decodes 32 tokens after a short prompt (timing each decode step), keeps every logit row,
then times pi_sampler_sample on those rows for each chain: greedy, the default chain (top_k 40,
top_p 0.95, min_p 0.05, T 0.8), top_p alone, mirostat 1 and mirostat 2 (their mu drifts over the
draws as in a real generation). Prints medians and 90th percentiles in ms and the median as a
share of the median decode step.
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time

import numpy as np

from powerinfer_py import Llama, assets
from powerinfer_py.sampling import Sampler, SamplingParams

CHAINS = [
    ("greedy", dict(temperature=0.0)),
    ("default chain", dict()),
    ("top_p only", dict(top_k=0)),
    ("mirostat 1", dict(mirostat_mode=1)),
    ("mirostat 2", dict(mirostat_mode=2)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    llm = Llama(a.model or str(assets.smollm2_path()), n_threads=a.threads, verbose=False)
    llm.eval(llm.tokenize(b"Once upon a time, in a quiet village, there lived an old baker who"))
    rows, steps = [], []
    for _ in range(32):
        lg = np.array(llm._ctx.logits(), dtype=np.float32)
        rows.append(lg)
        t0 = time.perf_counter()
        llm.eval([int(np.argmax(lg))])
        steps.append(time.perf_counter() - t0)
    decode_ms = float(np.median(steps)) * 1e3
    print(f"decode step median {decode_ms:.3f} ms ({a.threads} threads)")
    for label, kw in CHAINS:
        s = Sampler(len(rows[0]), SamplingParams(seed=1, **kw))
        ts = []
        for _ in range(a.reps):
            for r in rows:
                t0 = time.perf_counter()
                s.sample(r)
                ts.append(time.perf_counter() - t0)
        med = float(np.median(ts)) * 1e3
        print(f"{label:14s} median {med:.3f} ms  p90 {np.percentile(ts, 90) * 1e3:.3f} ms  "
              f"= {100 * med / decode_ms:.1f}% of a decode step")
    llm.close()


if __name__ == "__main__":
    main()
