"""Prefill and decode speed and peak memory: powerinfer_py beside llama-cpp-python (the peer).

    POWERINFER_LIB_PATH=build python3 benchmarks/bench_decode.py --threads 2 --runs 5

Both engines run the same GGUF file (SmolLM2-135M-Instruct Q4_1 by default), the same thread
count, n_ctx and n_batch, and the same 512 prompt token ids, each in a fresh child process so
that peak RSS (VmHWM of the child; see the child code on ru_maxrss) is its own. A run measures
  prefill: one 512-token batch, tokens / second;
  decode:  128 single-token steps, each taking the argmax of the last logits and feeding it back
           (the Python-visible rate, as a user of either package sees it).
Runs alternate between the engines so that both see the same machine load. The medians of the
runs and our/peer ratios are printed, and written as JSON with --json.
Weights: the peer maps the file (its default, and its faster way here: 88.5 against 80.9 tok/s
read into memory); ours reads them into 2 MB pages (use_mmap=False, see
vendor/powerinfer-core/src/core/huge_pages.h) unless --ours-mmap.
The peer is llama-cpp-python 0.3.36 in its own venv (benchmarks/setup_peer.sh).
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_PY = Path(os.environ.get("POWERINFER_ASSETS", Path.home() / ".cache" / "powerinfer-py" / "assets")) \
    / "peer-venv" / "bin" / "python"

# The child: one engine, one run; prints a JSON line. Kept to numpy + the engine's package.
CHILD = r"""
import json, resource, sys, time
import numpy as np
engine, path, threads, n_prompt, n_gen, n_ctx = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
use_mmap = sys.argv[7] == "1"
prompt = [int(t) for t in np.random.default_rng(1234).integers(300, 40000, n_prompt)]
if engine == "ours":
    from powerinfer_py._model import Model
    from powerinfer_py._context import Context
    model = Model(path, use_mmap=use_mmap)
    ctx = Context(model, n_ctx=n_ctx, n_batch=n_prompt, n_threads=threads, n_threads_batch=threads)
    def prefill(ids):
        ctx.decode(ids)
    def step(tok):
        ctx.decode([tok])
    def last_logits():
        return ctx.logits()
    def reset():
        ctx.kv_truncate(0)
else:
    import llama_cpp
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=n_prompt, n_threads=threads, n_threads_batch=threads,
                use_mmap=use_mmap, verbose=False)
    def prefill(ids):
        llm.eval(ids)
    def step(tok):
        llm.eval([tok])
    n_vocab = llm.n_vocab()
    def last_logits():  # a copy, as ours returns (Llama.scores is only kept with logits_all)
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,)).copy()
    def reset():
        llm.reset()
# Warm-up: touch every weight page once (both engines map the file).
prefill(prompt[:16]); reset()
t0 = time.perf_counter(); prefill(prompt); t_prefill = time.perf_counter() - t0
t0 = time.perf_counter()
tok = int(np.argmax(last_logits()))
for _ in range(n_gen):
    step(tok)
    tok = int(np.argmax(last_logits()))
t_decode = time.perf_counter() - t0
# Peak RSS of this process image: VmHWM, reset by exec. (ru_maxrss is not: Linux carries the
# high-water mark of the forking parent across fork + exec, so a parent that once held 240 MB made
# every child report at least that.)
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with open("/proc/self/status") as f:
        rss_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"prefill_tps": n_prompt / t_prefill, "decode_tps": n_gen / t_decode, "peak_rss_mb": rss_kb / 1024}))
"""


def run_child(python: str, engine: str, model: str, threads: int, n_prompt: int, n_gen: int, n_ctx: int,
              use_mmap: bool = True) -> dict:
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"  # numpy's BLAS threads would compete with the engines'
    env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([python, "-c", CHILD, engine, model, str(threads), str(n_prompt), str(n_gen), str(n_ctx),
                        "1" if use_mmap else "0"],
                       capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{engine} run failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def model_and_peer(args: argparse.Namespace) -> str:
    """The model file (--model, else the cached SmolLM2 Q4_1); exits when the peer interpreter
    (--peer-python) is missing."""
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT))
        from powerinfer_py import assets

        model = str(assets.smollm2_path())
    if not Path(args.peer_python).is_file():
        sys.exit(f"peer interpreter {args.peer_python} not found: run benchmarks/setup_peer.sh")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="GGUF file (default: the cached SmolLM2 Q4_1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens (one batch)")
    ap.add_argument("--gen", type=int, default=128, help="decoded tokens")
    ap.add_argument("--peer-python", default=str(PEER_PY))
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--ours-mmap", action="store_true", help="ours maps the file too (use_mmap=True)")
    args = ap.parse_args()

    model = model_and_peer(args)
    n_ctx = args.prompt + args.gen + 16

    results = {"ours": [], "peer": []}
    for i in range(args.runs):
        for engine, py in (("ours", sys.executable), ("peer", args.peer_python)):
            use_mmap = engine == "peer" or args.ours_mmap
            r = run_child(py, engine, model, args.threads, args.prompt, args.gen, n_ctx, use_mmap)
            results[engine].append(r)
            print(f"run {i + 1}/{args.runs} {engine:4s}: prefill {r['prefill_tps']:8.1f} tok/s  "
                  f"decode {r['decode_tps']:7.1f} tok/s  peak RSS {r['peak_rss_mb']:6.1f} MB", file=sys.stderr)

    med = {e: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for e, rs in results.items()}
    ratio = {k: med["ours"][k] / med["peer"][k] for k in med["ours"]}
    print(f"model {Path(model).name}, {args.threads} threads, prompt {args.prompt}, decode {args.gen}, "
          f"median of {args.runs} runs, ours {'maps the file' if args.ours_mmap else 'reads the weights (use_mmap=False)'}")
    print(f"{'':14s}{'ours':>12s}{'llama.cpp':>12s}{'ratio':>8s}")
    for k, label in (("prefill_tps", "prefill tok/s"), ("decode_tps", "decode tok/s"), ("peak_rss_mb", "peak RSS MB")):
        print(f"{label:14s}{med['ours'][k]:12.1f}{med['peer'][k]:12.1f}{ratio[k]:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": Path(model).name, "threads": args.threads,
                                               "prompt": args.prompt, "gen": args.gen, "runs": results,
                                               "median": med, "ratio_ours_over_peer": ratio}, indent=1))


if __name__ == "__main__":
    main()
