"""From the trained ReLU model to the sparse model the package ships, and the figures about it.

    python tools/train_relu_llama.py --minutes 50 --n-embd 192 --n-head 3 --n-ff 3072   # first
    python tools/build_sparse_model.py [--work ~/.cache/powerinfer-py/train] [--threads 2]

Steps (each the library function behind a powerinfer-py command):
1. profile          activation counts over the training text (powerinfer-py profile), also written as
                    PowerInfer's activation/activation_{L}.pt when torch is installed;
2. train-predictor  predictors trained on what the engine records over the training text;
3. export           the bundled file powerinfer_py/models/<name>.q4.powerinfer.gguf (Q4_0, head tied
                    to the embeddings: our engine only; at most 20 MB) and, in the work folder,
                    PowerInfer-loadable files f16 and q4 with an explicit output.weight, and a Q8_0
                    one (tied) for comparison;
4. place            a GPU placement at half of the FFN's bytes, as a worked example of the solver;
5. measure          on the held-out text: perplexity dense, with the predictors, and with the oracle;
                    per-layer recall, precision and densities of the predictors (the engine's own
                    statistics, every neuron also computed to know the truth); decode tokens/s dense
                    against sparse (same file, engine and threads, median of --runs); file sizes.
Writes <work>/build_report.json and prints it.
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_NAME = "relu-django-18m.q4.powerinfer.gguf"


def decode_speed(path: str, mode: str, threads: int, prompt_ids, n_gen: int, runs: int) -> dict:
    """Median decode tokens/s of n_gen greedy tokens after the prompt, and the FFN density."""
    from powerinfer_py import Llama

    llm = Llama(path, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False, sparse_mode=mode)
    try:
        speeds = []
        for _ in range(runs):
            llm.reset()
            llm._ctx.reset_timings()
            llm.eval(prompt_ids)
            llm._ctx.reset_sparse_stats()
            t0 = time.perf_counter()
            for _ in range(n_gen):
                tok = int(np.argmax(llm._ctx.logits()))
                llm.eval([tok])
            speeds.append(n_gen / (time.perf_counter() - t0))
        st = llm.sparsity_stats()
        return {"tokens_per_s": round(statistics.median(speeds), 1), "runs": [round(s, 1) for s in speeds],
                "ffn_density": None if st["ffn_density"] is None else round(st["ffn_density"], 4),
                "time_ms": {k: round(v, 1) for k, v in st["time_ms"].items()}}
    finally:
        llm.close()


def predictor_quality(path: str, text: str, threads: int, max_tokens: int = 8192) -> dict:
    """The engine's statistics in predictor mode with the truth measured, over held-out text."""
    from powerinfer_py import Llama

    llm = Llama(path, n_ctx=512, n_threads=threads, verbose=False, sparse_mode="predictor",
                sparse_measure_truth=True)
    try:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True)[:max_tokens]
        for i in range(0, len(ids), 512):
            llm.reset()
            llm.eval(ids[i:i + 512])
        return llm.sparsity_stats()
    finally:
        llm.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="~/.cache/powerinfer-py/train")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile-tokens", type=int, default=200_000)
    ap.add_argument("--predictor-tokens", type=int, default=30_000)
    ap.add_argument("--epochs", type=int, default=8, help="predictor training epochs")
    ap.add_argument("--reuse", action="store_true", help="keep the profile and predictors of an earlier run")
    ap.add_argument("--bundle-to", default=None, help="write the bundled file here instead of into the package")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n-gen", type=int, default=128)
    a = ap.parse_args()
    work = Path(a.work).expanduser()
    src = work / "relu-llama.f32.gguf"
    if not src.is_file():
        print(f"{src} is missing: run tools/train_relu_llama.py first", file=sys.stderr)
        return 2
    corpus = work / "corpus"
    if not (corpus / "train.txt").is_file():
        import subprocess

        subprocess.run([sys.executable, str(ROOT / "tools" / "train_relu_llama.py"), "--out", str(work),
                        "--dump-corpus", str(corpus)], check=True)
    train_text = (corpus / "train.txt").read_text(encoding="utf-8")
    valid_text = (corpus / "valid.txt").read_text(encoding="utf-8")
    report = {"source": str(src), "training": json.loads((work / "report.json").read_text())}

    from powerinfer_py.perplexity import perplexity
    from powerinfer_py.tools.activation_profile import load_profile_npz, save_activation_dir, save_profile_npz
    from powerinfer_py.tools.export import export_model
    from powerinfer_py.tools.place import place
    from powerinfer_py.tools.profile import profile_counts, summary
    from powerinfer_py.tools.train_predictor import record, train_predictors

    # 1. profile
    t0 = time.time()
    if not (a.reuse and (work / "relu-llama.profile.npz").is_file()):
        prof = profile_counts(str(src), [train_text], max_tokens=a.profile_tokens, n_threads=a.threads)
        save_profile_npz(prof, work / "relu-llama.profile.npz", model=str(src), corpus="train.txt")
        try:
            save_activation_dir(prof, work / "activation")
        except Exception as e:  # torch missing: the .npz is enough for place
            print(f"no activation_*.pt: {e}", file=sys.stderr)
    prof = load_profile_npz(work / "relu-llama.profile.npz")
    report["profile"] = dict(summary(prof), seconds=round(time.time() - t0, 1))

    # 2. predictors
    t0 = time.time()
    if not (a.reuse and (work / "predictor_report.json").is_file()):
        x, fired, layers = record(str(src), [train_text], n_tokens=a.predictor_tokens, n_threads=a.threads)
        arrays, pred_report = train_predictors(x, fired, layers, widths=[128, 256, 512, 1024], recall=0.99,
                                               max_ratio=2.0, epochs=a.epochs)
        del x, fired
        np.savez(work / "predictors.npz", **arrays)
        pred_report["seconds"] = round(time.time() - t0, 1)
        (work / "predictor_report.json").write_text(json.dumps(pred_report, indent=1) + "\n")
    report["predictors"] = json.loads((work / "predictor_report.json").read_text())

    # 3. export
    bundled = Path(a.bundle_to).expanduser() if a.bundle_to else ROOT / "powerinfer_py" / "models" / BUNDLED_NAME
    bundled.parent.mkdir(exist_ok=True)
    export_model(src, bundled, predictors=work / "predictors.npz", variant="q4", tie_output=True)
    f16 = export_model(src, work / "relu-llama.powerinfer.gguf", predictors=work / "predictors.npz", variant="f16").path
    q4 = export_model(src, work / "relu-llama.q4.powerinfer.gguf", predictors=work / "predictors.npz", variant="q4").path
    q8 = export_model(src, work / "relu-llama.q8_0.powerinfer.gguf", predictors=work / "predictors.npz",
                      variant="q8_0", tie_output=True).path
    report["files_bytes"] = {p.name: p.stat().st_size for p in (src, bundled, f16, q4, q8)}

    # 4. a placement with room for half of the FFN's neurons (a worked example of the solver: it
    #    needs no GPU to compute), chunks of 256 neurons as PowerInfer's kernels take them
    from powerinfer_py.tools.place import DEFAULT_MARGIN, plan_budget, read_model_facts

    facts = read_model_facts(f16)
    fixed = plan_budget(facts, 1 << 60, n_ctx=512, batch=32)
    half_ffn = sum(b * n for b, n in zip(facts.neuron_bytes, facts.n_ff)) // 2
    budget = fixed.total - fixed.ffn + half_ffn  # everything else, plus half the neurons' bytes
    report["place_half_ffn"] = place(f16, load_profile_npz(work / "relu-llama.profile.npz"), budget, n_ctx=512,
                                     batch=32, margin=DEFAULT_MARGIN, out=str(f16) + ".generated.gpuidx",
                                     plot=str(work / "activation_curves.png"))

    # 5. measurements on held-out text
    ppl = {}
    for name, path in (("bundled_q4", bundled), ("q8_0", q8), ("f16", f16)):
        for mode in ("dense", "predictor", "oracle"):
            from powerinfer_py import Llama

            with Llama(str(path), n_ctx=512, n_threads=a.threads, verbose=False, sparse_mode=mode) as llm:
                r = perplexity(llm, valid_text, n_ctx=512, n_threads=a.threads)
            ppl[f"{name}_{mode}"] = round(r.ppl, 3)
    report["valid_perplexity"] = ppl
    q = predictor_quality(str(bundled), valid_text, a.threads)
    report["predictor_quality_bundled"] = [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in layer.items()} for layer in q["layers"]]
    from powerinfer_py import Llama

    with Llama(str(bundled), vocab_only=True, verbose=False) as llm:
        prompt = llm.tokenize(b"from django.db import models\n\n\nclass ", add_bos=True)
    speed = {}
    for name, path in (("bundled_q4", bundled), ("q8_0", q8), ("f16", f16)):
        for mode in ("dense", "predictor"):
            speed[f"{name}_{mode}"] = decode_speed(str(path), mode, a.threads, prompt, a.n_gen, a.runs)
        speed[f"{name}_sparse_over_dense"] = round(speed[f"{name}_predictor"]["tokens_per_s"]
                                                   / speed[f"{name}_dense"]["tokens_per_s"], 3)
    report["decode"] = dict(speed, threads=a.threads, n_gen=a.n_gen)
    (work / "build_report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
