"""What the Python layer and the sampler cost per generated token, against the engine's decode time.

    POWERINFER_LIB_PATH=build python benchmarks/api_overhead.py [model.gguf] [--tokens 128]

For each setting it runs create_completion with max_tokens=N (end-of-generation tokens biased away
so every run makes N tokens), reads the engine's own timings (time inside pi_decode for the prompt
and for single tokens), and reports

    overhead per token = (wall time - prompt time - decode time) / N

i.e. sampling, stop/UTF-8 handling, dict building and every Python line of the loop, and the same
as a share of the decode time (best of 3 runs). Grammar settings show the extra cost of constrained
sampling, also for the first run, which fills the grammar's per-state caches.
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time

from powerinfer_py import Llama
from powerinfer_py.llama_grammar import LlamaGrammar


def run(llm, label, n, **kw):
    eog = [t for t in range(llm.n_vocab()) if llm.is_eog(t)] if not kw.get("grammar") else []
    bias = {t: -100.0 for t in eog}
    best = None
    for _ in range(3):
        llm.reset()
        llm._ctx.reset_timings()
        t0 = time.perf_counter()
        if label.endswith("stream"):
            n_out = 0
            for c in llm("Once upon a time, in a quiet village,", max_tokens=n, logit_bias=bias or None,
                         stream=True, **kw):
                n_out += 1
            out_tokens = n
        else:
            out = llm("Once upon a time, in a quiet village,", max_tokens=n, logit_bias=bias or None, **kw)
            out_tokens = out["usage"]["completion_tokens"]
        wall = (time.perf_counter() - t0) * 1000
        t = llm._ctx.timings()
        over = (wall - t["t_prompt_ms"] - t["t_decode_ms"]) / max(out_tokens, 1)
        dec = t["t_decode_ms"] / max(t["n_decode_tokens"], 1)
        r = dict(label=label, tokens=out_tokens, decode_ms_per_token=round(dec, 3),
                 overhead_ms_per_token=round(over, 3), overhead_share=round(over / dec, 4) if dec else None)
        if best is None:
            first = r
        if best is None or r["overhead_ms_per_token"] < best["overhead_ms_per_token"]:
            best = r
    if kw.get("grammar") is not None:  # the first run filled the grammar's per-state caches
        print(json.dumps(dict(first, label=first["label"] + ", first run (cold caches)")))
    print(json.dumps(best))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.model is None:
        from powerinfer_py.assets import smollm2_path

        args.model = str(smollm2_path())
    with Llama(args.model, n_ctx=1024, n_threads=args.threads or None, verbose=False) as llm:
        n = args.tokens
        run(llm, "greedy", n, temperature=0.0)
        run(llm, "default sampling (top_k 40, top_p 0.95, min_p 0.05, T 0.8)", n, seed=1)
        run(llm, "default sampling, stream", n, seed=1)
        run(llm, "penalties + stop strings", n, seed=1, repeat_penalty=1.1, frequency_penalty=0.2,
            stop=["\n\n\n", "THE END"])
        run(llm, "mirostat 1", n, seed=1, mirostat_mode=1)
        run(llm, "mirostat 2", n, seed=1, mirostat_mode=2)
        run(llm, "top_p only (top_k 0)", n, seed=1, top_k=0)
        LlamaGrammar.json().start(llm)  # builds the vocabulary index once (reported apart)
        schema_text = LlamaGrammar.from_json_schema(
            '{"type": "object", "properties": {"story": {"type": "string"}, "moral": {"type": "string"}},'
            ' "required": ["story", "moral"]}').grammar
        # a new compiled grammar for each setting, so that each starts with empty caches
        run(llm, "grammar: JSON schema (greedy)", n, temperature=0.0, grammar=LlamaGrammar(schema_text))
        run(llm, "grammar: JSON schema (sampled)", n, seed=1, grammar=LlamaGrammar(schema_text))


if __name__ == "__main__":
    main()
