"""Writes tests/data/greedy_smollm2.json: llama.cpp's greedy continuations of five prompts.

Run once with the peer's interpreter (llama-cpp-python 0.3.36, built by benchmarks/setup_peer.sh):

    ~/.cache/powerinfer-py/assets/peer-venv/bin/python tools/make_expected_greedy.py

For each prompt the peer tokenizes the text (special tokens parsed, BOS as the vocabulary says),
evaluates it in one batch (Llama.eval), then takes the argmax of the last logits 128 times, feeding each
token back. It does not stop at end-of-generation tokens, so every continuation is 128 ids
long. Beside each expected id it records llama.cpp's five best ids and their logits, so that a
difference at a near-tie can be told from a real one. tests/test_greedy.py feeds
the same prompt ids to our engine and compares.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def load_assets():
    """powerinfer_py/assets.py (the cached SmolLM2 file), loaded by path: the peer's interpreter
    has no cffi, so the package itself is not imported."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pi_assets", ROOT / "powerinfer_py" / "assets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

N_NEW = 128
TOP_K = 5  # llama.cpp's best ids and logits recorded at each step
N_CTX = 512
N_THREADS = 2
PROMPTS = [
    "The capital of France is",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the largest planet in the solar system?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, there was a little robot who",
    "def fibonacci(n):\n",
    "<|im_start|>user\nGive me three tips for staying healthy.<|im_end|>\n<|im_start|>assistant\n",
]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="llama.cpp's greedy continuations of the test prompts")
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "greedy_smollm2.json"),
                    help="where to write (default: the test data file); another path lets two builds "
                         "of the peer be compared")
    args = ap.parse_args()
    import llama_cpp
    from llama_cpp import Llama

    model_path = load_assets().smollm2_path()
    llm = Llama(model_path=str(model_path), n_ctx=N_CTX, n_batch=N_CTX, n_threads=N_THREADS,
                n_threads_batch=N_THREADS, logits_all=False, verbose=False, seed=0)
    cases = []
    for text in PROMPTS:
        prompt = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        llm.reset()
        llm.eval(prompt)
        out, top_ids, top_logits = [], [], []
        for _ in range(N_NEW):
            # The last evaluated position's logits, straight from llama.cpp (Llama.scores is only
            # filled with logits_all in this version).
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
            tok = int(np.argmax(logits))
            top = np.argsort(logits)[-TOP_K:][::-1]
            out.append(tok)
            top_ids.append([int(i) for i in top])
            top_logits.append([round(float(logits[i]), 4) for i in top])
            llm.eval([tok])
        cases.append({"prompt": text, "prompt_ids": [int(t) for t in prompt], "expected_ids": out,
                      "top_ids": top_ids, "top_logits": top_logits,
                      "expected_text": llm.detokenize(out).decode("utf-8", "replace")})
        print(f"{text[:40]!r}: {len(prompt)} prompt ids -> {llm.detokenize(out)[:60]!r}", file=sys.stderr)
    data = {
        "model": model_path.name,
        "producer": f"llama-cpp-python {llama_cpp.__version__}",
        "system_info": llama_cpp.llama_print_system_info().decode(),
        "settings": {"n_ctx": N_CTX, "n_batch": N_CTX, "n_threads": N_THREADS, "greedy": "argmax of the last "
                     "logits, fed back; no stop at end-of-generation tokens", "n_new": N_NEW},
        "cases": cases,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(data, indent=1) + "\n")
    print(out_path, file=sys.stderr)


if __name__ == "__main__":
    main()
