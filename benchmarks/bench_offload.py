"""The GPU split (issue 10): decode with the hottest FFN neurons on a device under budgets of 25, 50
and 75% of the FFN's bytes, against the all-CPU run of the same file in the same process.

    python benchmarks/bench_offload.py [--model PATH] [--device cuda|cpu-standin] [--budgets 25,50,75]
        [--threads 2] [--tokens 64] [--runs 5]

1. Profile: how often each neuron fires over --profile-tokens tokens of text (the Python sources of
   this package and of the standard library's json and argparse modules by default: code, the
   bundled model's domain), by the engine's counters (powerinfer_py.tools.profile).
2. Placement per budget: our solver (powerinfer_py.tools.place, greedy by activations per byte)
   picks the hottest neurons whose rows (up, gate, down_t) fit --budgets % of the FFN's bytes;
   written as a PowerInfer .generated.gpuidx in a temporary folder.
3. Decode: --tokens greedy steps after a short prompt, median of --runs, all-CPU and each budget
   taking turns within a run (as bench_sparse_decode.py).

Printed per budget: hot neurons, the share of the profile's activations they cover, the device
bytes, tokens/s and the ratio to all-CPU. The default device is the first CUDA device when this
build and machine have one, else the CPU stand-in; on the stand-in the ratio measures only the
split's bookkeeping (the same CPU does both halves), the coverage figures are the placement's.
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed. One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sparse_decode import PROMPT, run_once  # noqa: E402  (the same timed decode loop)


def default_texts() -> list:
    import argparse as _a
    import json as _j

    roots = [Path(__file__).resolve().parent.parent / "powerinfer_py", Path(_j.__file__).parent]
    files = sorted(p for r in roots for p in r.rglob("*.py")) + [Path(_a.__file__)]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def main() -> None:
    import powerinfer_py
    from powerinfer_py import Llama
    from powerinfer_py.assets import bundled_model_path
    from powerinfer_py.tools.gpuidx import write_gpuidx
    from powerinfer_py.tools.place import build_problem, gpu_masks, read_model_facts, solve
    from powerinfer_py.tools.profile import profile_counts

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a ReLU model in PowerInfer's layout (default: the bundled one)")
    ap.add_argument("--device", default=None, help="cuda, cuda:N or cpu-standin (default: a GPU if there is one)")
    ap.add_argument("--budgets", default="25,50,75", help="device budgets, percent of the FFN's bytes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile-tokens", type=int, default=20000)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    path = args.model or str(bundled_model_path())
    devices = powerinfer_py.system_info()["offload_devices"]
    device = args.device or (devices[1] if len(devices) > 1 else "cpu-standin")

    print(f"[1/3] profile over {args.profile_tokens} tokens", file=sys.stderr)
    profile = profile_counts(path, default_texts(), max_tokens=args.profile_tokens, n_threads=args.threads,
                             progress=False)
    facts = read_model_facts(path)
    ffn_bytes = sum(b * n for b, n in zip(facts.neuron_bytes, facts.n_ff))

    print("[2/3] placement per budget", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="bench_offload_"))
    plans = []
    for pct in (float(v) for v in args.budgets.split(",")):
        budget = int(ffn_bytes * pct / 100)
        problem = build_problem(profile, facts.neuron_bytes, budget, 256)
        sol = solve(problem, "greedy")
        masks = gpu_masks(profile, sol.ks)
        gi = tmp / f"budget{pct:g}.gpuidx"
        write_gpuidx(gi, masks, budget)
        covered = sum(float(np.asarray(c, np.float64)[m].sum()) for c, m in zip(profile.counts, masks)) \
            / max(1.0, float(sum(np.asarray(c, np.float64).sum() for c in profile.counts)))
        plans.append({"budget_pct": pct, "budget_bytes": budget, "gpuidx": str(gi),
                      "hot_neurons": int(sum(int(m.sum()) for m in masks)), "covered": covered})

    print(f"[3/3] decode, device {device}", file=sys.stderr)
    kw = dict(n_ctx=512, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    llms = {"cpu": Llama(path, **kw)}
    for p in plans:
        llms[p["budget_pct"]] = Llama(path, offload_device=device, gpu_index=p["gpuidx"],
                                      vram_budget=p["budget_bytes"] if device.startswith("cuda") else None, **kw)
        p["device_bytes"] = llms[p["budget_pct"]].gpu_split()["used_bytes"]
    try:
        prompt_ids = llms["cpu"].tokenize(PROMPT.encode(), add_bos=True)
        speeds = {k: [] for k in llms}
        for llm in llms.values():
            run_once(llm, prompt_ids, 8)  # warm-up
        for _ in range(args.runs):
            for k, llm in llms.items():
                speeds[k].append(run_once(llm, prompt_ids, args.tokens))
    finally:
        for llm in llms.values():
            llm.close()
    cpu = statistics.median(speeds["cpu"])
    total_neurons = sum(facts.n_ff)
    print(f"\nmodel {os.path.basename(path)}, FFN {ffn_bytes / 2**20:.1f} MiB, device {device}, {args.threads} threads, "
          f"{args.tokens} tokens, median of {args.runs}")
    print("| budget (% FFN) | hot neurons | activations covered | device MiB | tok/s | vs all-CPU |")
    print("|---|---|---|---|---|---|")
    print(f"| all-CPU | 0 | 0% | 0 | {cpu:.1f} | 1.00 |")
    for p in plans:
        tps = statistics.median(speeds[p["budget_pct"]])
        p["tokens_per_s"], p["ratio"] = tps, tps / cpu
        print(f"| {p['budget_pct']:g}% | {p['hot_neurons']} of {total_neurons} | {p['covered'] * 100:.1f}% | "
              f"{p['device_bytes'] / 2**20:.2f} | {tps:.1f} | {tps / cpu:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": path, "device": device, "cpu_tokens_per_s": cpu,
                                               "plans": plans}, indent=2))


if __name__ == "__main__":
    main()
