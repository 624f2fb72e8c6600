"""Two builds of our library against each other: the A/B test for an engine change.

    python benchmarks/bench_builds.py --a /tmp/before --b build [--prompt 16,512] [--runs 5]

--a and --b are folders holding a libpowerinfer (as POWERINFER_LIB_PATH takes them), for example
the build folders of two commits. Each run is one fresh child process of bench_decode.py (a prompt
in one batch, then greedy decode steps); the builds alternate run by run, so that both see the same
machine: on a shared VM whose speed drifts by tens of percent within an hour, only such
interleaved figures tell a change from the weather. Prints per prompt length the median prefill
and decode tokens/s of each build and the ratios b / a.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see bench_decode.py

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decode import run_child  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="folder of build A's library (the baseline)")
    ap.add_argument("--b", required=True, help="folder of build B's library")
    ap.add_argument("--model", default=None, help="GGUF file (default: the cached SmolLM2 Q4_1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", default="16,512", help="prompt lengths, comma-separated")
    ap.add_argument("--gen", type=int, default=128, help="decoded tokens per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mmap", action="store_true", help="map the file (default: use_mmap=False, as the speed report)")
    args = ap.parse_args()

    model = args.model
    if model is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from powerinfer_py import assets

        model = str(assets.smollm2_path())
    builds = {"a": str(Path(args.a).resolve()), "b": str(Path(args.b).resolve())}
    print(f"model {Path(model).name}, {args.threads} threads, {args.gen} tokens decoded, medians of {args.runs}")
    print("| prompt | a prefill | b prefill | b/a | a decode | b decode | b/a |")
    print("|---|---|---|---|---|---|---|")
    for n_prompt in (int(p) for p in args.prompt.split(",")):
        got: dict[str, list[dict]] = {"a": [], "b": []}
        for _ in range(args.runs):
            for name, lib in builds.items():
                os.environ["POWERINFER_LIB_PATH"] = lib  # run_child passes os.environ on
                got[name].append(run_child(sys.executable, "ours", model, args.threads, n_prompt, args.gen,
                                           n_prompt + args.gen + 16, args.mmap))
        med = {name: {k: statistics.median(r[k] for r in runs) for k in ("prefill_tps", "decode_tps")}
               for name, runs in got.items()}
        a, b = med["a"], med["b"]
        print(f"| {n_prompt} | {a['prefill_tps']:.1f} | {b['prefill_tps']:.1f} | "
              f"{b['prefill_tps'] / a['prefill_tps']:.2f} | {a['decode_tps']:.1f} | {b['decode_tps']:.1f} | "
              f"{b['decode_tps'] / a['decode_tps']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
