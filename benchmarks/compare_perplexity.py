"""Perplexity of one GGUF file with powerinfer_py and with llama-cpp-python 0.3.36, same text,
same procedure (llama.cpp's), same n_ctx; prints both and the relative difference.

    python benchmarks/compare_perplexity.py [--model M.gguf] [--n-ctx 512] [--chunks 8]

The text is powerinfer_py.assets.sample_text() (standard-library docstrings: no download).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from powerinfer_py import assets
from powerinfer_py.perplexity import perplexity


def peer_perplexity(peer: Path, model: str, text_file: str, n_ctx: int, threads: int, chunks: int) -> dict:
    script = Path(__file__).with_name("peer_perplexity.py")
    out = subprocess.run([str(peer), str(script), model, text_file, str(n_ctx), str(threads), str(chunks)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = args.model or str(assets.smollm2_path())
    peer = assets.peer_python()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(assets.sample_text())
        text_file = f.name
    ours = perplexity(model, Path(text_file).read_text(encoding="utf-8"), n_ctx=args.n_ctx,
                      n_threads=args.threads, n_chunks=args.chunks)
    print(f"powerinfer_py     ppl {ours.ppl:.4f}  ({ours.n_scored} tokens, {ours.n_chunks} chunks)")
    if peer is None:
        print("llama-cpp-python  (peer venv missing: bash benchmarks/setup_peer.sh)")
        return 0
    theirs = peer_perplexity(peer, model, text_file, args.n_ctx, args.threads, args.chunks)
    print(f"llama-cpp-python  ppl {theirs['ppl']:.4f}  ({theirs['n_scored']} tokens, {theirs['n_chunks']} chunks)")
    print(f"relative difference {abs(ours.ppl - theirs['ppl']) / theirs['ppl'] * 100:.3f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
