"""Perplexity with llama-cpp-python (the peer), by the same procedure as powerinfer_py.perplexity
(llama.cpp's): run with the peer's venv python.

    peer-venv/bin/python benchmarks/peer_perplexity.py MODEL TEXTFILE N_CTX THREADS [N_CHUNKS]

Prints one JSON object: {"ppl": ..., "n_scored": ..., "n_chunks": ...}.
"""
import json
import math
import sys

import llama_cpp
import numpy as np


def main() -> None:
    model, textfile, n_ctx, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    n_chunks = int(sys.argv[5]) if len(sys.argv) > 5 else -1
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads,
                          n_threads_batch=threads, logits_all=True, verbose=False)
    text = open(textfile, encoding="utf-8").read()
    add_bos = bool(llm._model.add_bos_token())  # the vocabulary's flag, as llama.cpp's tool reads it
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=add_bos)
    n_chunk = len(tokens) // n_ctx
    if n_chunks >= 0:
        n_chunk = min(n_chunk, n_chunks)
    first = n_ctx // 2
    nll, count = 0.0, 0
    for c in range(n_chunk):
        chunk = tokens[c * n_ctx:(c + 1) * n_ctx]
        evaluated = list(chunk)
        if add_bos:
            evaluated[0] = llm.token_bos()
        llm.reset()
        llm.eval(evaluated)
        logits = np.asarray(llm.scores[first:n_ctx - 1], dtype=np.float64)
        targets = np.asarray(chunk[first + 1:n_ctx])
        m = logits.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        nll += float(-(logits[np.arange(len(targets)), targets] - lse).sum())
        count += len(targets)
    print(json.dumps({"ppl": math.exp(nll / count), "n_scored": count, "n_chunks": n_chunk}))


if __name__ == "__main__":
    main()
