"""Activity predictors for a ReLU model, trained on what the engine records (Deja Vu / PowerInfer
style: per layer, score = fc2 · ReLU(fc1 · x), no bias; neuron i is predicted active iff
score_i >= threshold).

    powerinfer-py train-predictor MODEL.gguf --text corpus.txt [--tokens 40000] [--recall 0.99]
        [--max-density-ratio 2.0] [--widths 32,64,128,256,512] [--out predictors.npz]

1. Recording. The engine evaluates the corpus in windows of n_ctx tokens with every neuron computed
   and records, per token and layer, the predictor's input x (the residual before the FFN norm) and
   which neurons fired (pi_context_record_ffn; nothing per token in Python).
2. Training, layer by layer, on 90% of the recorded tokens (the other 10% measure recall and
   precision): BCE-with-logits against the fired flags, Adam, the input scaled per dimension by
   1/std (folded into fc1 afterwards, so the engine sees plain weights). A file holds one threshold
   for every layer (powerinfer.sparse_threshold, 0 here), and the predictor has no bias, so the
   trade-off between recall and density is set by the loss's weight on positive examples: for each
   hidden width, from the smallest, the weight is raised until held-out recall reaches the target;
   the first width whose predicted density is then at most max-density-ratio times the actual
   density is kept (else the best recall found).
3. Output: the predictors .npz of powerinfer_py/tools (fc1_{L} [H_L, n_embd], fc2_{L} [n_ff, H_L],
   threshold) and a JSON report per layer: width, recall, precision, predicted and actual density,
   the predictor's size against the layer's FFN (both at 16 bits per weight).
Needs torch (pip install ".[train]").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np

from .corpus_pass import corpus_ids, eval_windows, open_relu_model


def record(model_path: str, texts: Iterable[str], *, n_tokens: int = 40_000, n_ctx: int = 512, n_threads: int = 0,
           progress: bool = True):
    """(x float32 [T, n_layer, n_embd], fired uint8 [T, n_layer, n_ff], sparse layer ids) for T <= n_tokens
    tokens of the texts, recorded by the engine."""
    from .._lib import lib

    llm, layers = open_relu_model(model_path, n_ctx=n_ctx, n_threads=n_threads)
    try:
        n_layer, n_ff, n_embd = int(lib.pi_model_n_layer(llm._mp)), int(lib.pi_model_n_ff(llm._mp)), llm.n_embd()
        ids = corpus_ids(llm, texts, n_tokens)
        if len(ids) < 100:
            raise ValueError(f"the corpus gives {len(ids)} tokens; at least 100 are needed")
        x = np.zeros((len(ids), n_layer, n_embd), dtype=np.float32)
        fired = np.zeros((len(ids), n_layer, n_ff), dtype=np.uint8)
        llm._ctx.record_ffn(x, fired)
        eval_windows(llm, ids, n_ctx, "record", progress)
        n = llm._ctx.n_recorded()
        llm._ctx.record_ffn(None, None)
        return x[:n], fired[:n], layers
    finally:
        llm.close()


def train_layer(x: np.ndarray, y: np.ndarray, width: int, pos_weight: float, *, epochs: int = 12, seed: int = 0):
    """(fc1 [width, n_embd], fc2 [n_ff, width]) as float32 arrays, the input scaling folded in."""
    import torch

    torch.manual_seed(seed)
    scale = 1.0 / np.maximum(x.std(axis=0), 1e-6)
    xt = torch.from_numpy(x * scale)
    yt = torch.from_numpy(y.astype(np.float32))
    fc1 = torch.nn.Linear(x.shape[1], width, bias=False)
    fc2 = torch.nn.Linear(width, y.shape[1], bias=False)
    params = list(fc1.parameters()) + list(fc2.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((y.shape[1],), float(pos_weight)))
    n, bs = len(xt), 512
    steps = epochs * ((n + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=g).split(bs):
            loss = loss_fn(fc2(torch.relu(fc1(xt[idx]))), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    w1 = fc1.weight.detach().numpy() * scale[None, :]  # fc1 · (x * scale) = (fc1 * scale) · x
    return w1.astype(np.float32), fc2.weight.detach().numpy().astype(np.float32)


def evaluate(fc1: np.ndarray, fc2: np.ndarray, x: np.ndarray, y: np.ndarray, threshold: float = 0.0) -> dict:
    """Recall, precision, predicted and actual density of a predictor on (x, fired)."""
    score = np.maximum(x @ fc1.T, 0.0) @ fc2.T
    pred = score >= threshold
    fired = y.astype(bool)
    hit = np.logical_and(pred, fired).sum()
    return {"recall": float(hit / max(1, fired.sum())), "precision": float(hit / max(1, pred.sum())),
            "predicted_density": float(pred.mean()), "actual_density": float(fired.mean())}


def fit_layer(x: np.ndarray, y: np.ndarray, *, widths: List[int], recall: float, max_ratio: float,
              epochs: int, seed: int) -> dict:
    """The smallest width (and its positive weight) meeting the targets on held-out tokens.

    The positive weight starts where the two classes weigh the same ((1 - d) / d for a density d)
    and doubles, at most three times, until the held-out recall reaches the target."""
    n_val = max(1, len(x) // 10)
    xtr, ytr, xva, yva = x[n_val:], y[n_val:], x[:n_val], y[:n_val]
    density = float(ytr.mean())
    w0 = max(1.0, (1.0 - density) / max(density, 1e-6))
    best = None
    for width in widths:
        for pos_weight in (w0, 2 * w0, 4 * w0, 8 * w0):
            fc1, fc2 = train_layer(xtr, ytr, width, pos_weight, epochs=epochs, seed=seed)
            ev = evaluate(fc1, fc2, xva, yva)
            cand = {"width": width, "pos_weight": round(pos_weight, 3), "fc1": fc1, "fc2": fc2, **ev}
            met = ev["recall"] >= recall and ev["predicted_density"] <= max_ratio * max(ev["actual_density"], 1e-9)
            if met:
                return cand
            if best is None or (cand["recall"], -cand["predicted_density"]) > (best["recall"], -best["predicted_density"]):
                best = cand
            if ev["recall"] >= recall:  # recall reached but too dense: a wider predictor is needed
                break
    return best

def train_predictors(x: np.ndarray, fired: np.ndarray, layers: List[int], *, widths: List[int], recall: float = 0.99,
                     max_ratio: float = 2.0, epochs: int = 12, seed: int = 0, progress: bool = True) -> tuple[dict, dict]:
    """(arrays for the predictors .npz, report)."""
    from tqdm import tqdm

    n_layer, n_ff, n_embd = x.shape[1], fired.shape[2], x.shape[2]
    arrays = {"n_layer": np.int64(n_layer), "threshold": np.float32(0.0)}
    report = {"tokens": int(len(x)), "target_recall": recall, "max_density_ratio": max_ratio, "layers": []}
    for il in tqdm(layers, desc="train-predictor", unit="layer", disable=not progress, file=sys.stderr):
        r = fit_layer(x[:, il], fired[:, il], widths=widths, recall=recall, max_ratio=max_ratio, epochs=epochs,
                      seed=seed + il)
        arrays[f"fc1_{il}"], arrays[f"fc2_{il}"] = r["fc1"], r["fc2"]
        ffn_weights = 3 * n_embd * n_ff  # gate, up, down
        report["layers"].append({
            "layer": il, "width": r["width"], "pos_weight": r["pos_weight"],
            "recall": round(r["recall"], 4), "precision": round(r["precision"], 4),
            "predicted_density": round(r["predicted_density"], 4), "actual_density": round(r["actual_density"], 4),
            "size_vs_ffn": round(r["width"] * (n_embd + n_ff) / ffn_weights, 4)})
    return arrays, report


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="powerinfer-py train-predictor", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--text", action="append", required=True, help="a UTF-8 text file of the corpus (repeatable)")
    ap.add_argument("--tokens", type=int, default=40_000, help="tokens to record")
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--recall", type=float, default=0.99)
    ap.add_argument("--max-density-ratio", type=float, default=2.0)
    ap.add_argument("--widths", default="32,64,128,256,512")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="predictors .npz (default: MODEL + .predictors.npz)")
    a = ap.parse_args(argv)
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise ValueError("train-predictor needs torch: pip install \".[train]\"")
        if not Path(a.model).is_file():
            raise ValueError(f"{a.model}: no such model file")
        for t in a.text:
            if not Path(t).is_file():
                raise ValueError(f"--text {t}: no such file")
        widths = sorted(int(w) for w in a.widths.split(","))
        if not widths or min(widths) <= 0:
            raise ValueError(f"--widths {a.widths}: expected positive integers")
        texts = (Path(t).read_text(encoding="utf-8", errors="replace") for t in a.text)
        x, fired, layers = record(a.model, texts, n_tokens=a.tokens, n_ctx=a.n_ctx, n_threads=a.threads)
        arrays, report = train_predictors(x, fired, layers, widths=widths, recall=a.recall,
                                          max_ratio=a.max_density_ratio, epochs=a.epochs, seed=a.seed)
        out = a.out or a.model + ".predictors.npz"
        np.savez(out, **arrays)
        report["out"] = out
    except (ValueError, OSError) as e:
        print(f"powerinfer-py train-predictor: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
