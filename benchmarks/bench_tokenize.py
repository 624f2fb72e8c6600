#!/usr/bin/env python3
"""Tokenizer throughput: about 1 MB of mixed text (tools/mixed_text.py) tokenized with SmolLM2's
vocabulary (byte-level BPE, smollm pre-tokenizer) and with llama-spm's (SentencePiece), by us and
by llama-cpp-python 0.3.36 (the peer, run in its own interpreter on the same bytes). Prints the
median MB/s of several runs and our speed relative to the peer's.

    POWERINFER_LIB_PATH=build python3 benchmarks/bench_tokenize.py [--runs 5] [--mb 1]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

from mixed_text import mixed_text  # noqa: E402


PEER_SCRIPT = r"""
import json, sys, time, statistics, hashlib
import llama_cpp
job = json.load(sys.stdin)
llm = llama_cpp.Llama(job["model"], vocab_only=True, verbose=False)
text = open(job["text"], "rb").read()
times = []
for _ in range(job["runs"]):
    t0 = time.perf_counter(); ids = llm.tokenize(text, add_bos=False, special=False); times.append(time.perf_counter() - t0)
digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()
print(json.dumps({"median_s": statistics.median(times), "n_tokens": len(ids), "sha256": digest,
                  "version": llama_cpp.__version__}))
"""


def ours(model_path: Path, text: bytes, runs: int):
    from powerinfer_py._model import Model
    from powerinfer_py._tokenizer import tokenize

    m = Model(model_path, vocab_only=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ids = tokenize(m, text, add_bos=False, special=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), ids


def peer(model_path: Path, text_path: Path, runs: int):
    from powerinfer_py import assets

    py = assets.peer_python()
    if py is None:
        return None
    job = {"model": str(model_path), "text": str(text_path), "runs": runs}
    r = subprocess.run([str(py), "-c", PEER_SCRIPT], input=json.dumps(job), capture_output=True, text=True)
    if r.returncode != 0:
        print(f"(peer failed: {r.stderr.strip()[-300:]})", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    from powerinfer_py import assets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=float, default=1.0)
    args = ap.parse_args()
    text = mixed_text(int(args.mb * 1_000_000), seed=1).encode("utf-8")
    mb = len(text) / 1e6
    vocabs = [("SmolLM2 (BPE)", assets.smollm2_path()),
              ("llama-spm (SPM)", assets.vocab_dir() / "ggml-vocab-llama-spm.gguf")]
    with tempfile.TemporaryDirectory() as tmp:
        text_path = Path(tmp) / "text.bin"
        text_path.write_bytes(text)
        print(f"text: {len(text)} bytes of mixed text, median of {args.runs} runs, add_bos=False special=False")
        print(f"{'vocabulary':<18} {'ours MB/s':>10} {'peer MB/s':>10} {'ours/peer':>10} {'tokens':>9} {'same ids':>9}")
        for label, path in vocabs:
            t_ours, ids = ours(path, text, args.runs)
            p = peer(path, text_path, args.runs)
            if p:
                same = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest() == p["sha256"]
                print(f"{label:<18} {mb / t_ours:>10.2f} {mb / p['median_s']:>10.2f} {p['median_s'] / t_ours:>9.2f}x "
                      f"{len(ids):>9} {str(same):>9}")
            else:
                print(f"{label:<18} {mb / t_ours:>10.2f} {'-':>10} {'-':>10} {len(ids):>9} {'-':>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
