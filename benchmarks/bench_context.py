"""Decode speed against context length: ours beside llama-cpp-python (the peer) after prompts of
16, 512, 1536 and 3072 tokens, each run in a fresh child process (bench_decode.py's child), the
engines alternating, medians of --runs.

    python benchmarks/bench_context.py [--positions 16,512,1536,3072] [--gen 64] [--runs 3]

Decoding at long contexts is where attention's reads of the KV cache (and its softmax) weigh: the
model file is the same at every length, only the positions differ.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decode import PEER_PY, model_and_peer, run_child  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="GGUF file (default: the cached SmolLM2 Q4_1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--positions", default="16,512,1536,3072")
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-python", default=str(PEER_PY))
    ap.add_argument("--ours-mmap", action="store_true", help="ours maps the file (default: use_mmap=False, as the speed report)")
    args = ap.parse_args()
    model = model_and_peer(args)
    rows = []
    for n_prompt in (int(v) for v in args.positions.split(",")):
        n_ctx = n_prompt + args.gen + 16
        tps = {"ours": [], "peer": []}
        for i in range(args.runs):
            for engine, py in (("ours", sys.executable), ("peer", args.peer_python)):
                r = run_child(py, engine, model, args.threads, n_prompt, args.gen, n_ctx,
                              engine == "peer" or args.ours_mmap)
                tps[engine].append(r["decode_tps"])
                print(f"{n_prompt:5d} run {i + 1}/{args.runs} {engine}: decode {r['decode_tps']:.1f} tok/s", file=sys.stderr)
        o, p = statistics.median(tps["ours"]), statistics.median(tps["peer"])
        rows.append((n_prompt, o, p, o / p))
    print(f"\nmodel {os.path.basename(model)}, {args.threads} threads, {args.gen} tokens decoded after the prompt, "
          f"medians of {args.runs}")
    print("| prompt tokens | ours tok/s | llama.cpp tok/s | ratio |")
    print("|---|---|---|---|")
    for n, o, p, r in rows:
        print(f"| {n} | {o:.1f} | {p:.1f} | {r:.2f} |")


if __name__ == "__main__":
    main()
