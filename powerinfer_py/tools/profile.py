"""Activation profile: how often each FFN neuron of a ReLU model fires over a corpus.

    powerinfer-py profile MODEL.gguf --text corpus.txt [--text more.txt] [--max-tokens 200000]
        [--n-ctx 512] [--out profile.npz] [--activation-dir DIR]

The engine evaluates the text in windows of n_ctx tokens (each window a fresh sequence) with every
neuron computed (dense mode, so the counts are exact whatever the model's predictors say) and counts,
per layer and neuron, the tokens for which h != 0 (pi_context_neuron_counts: the counting is done
in C, nothing per token in Python). Writes the activation profile .npz of powerinfer_py/tools
(counts_{L}, n_tokens, ...) and, when torch is installed and --activation-dir is given, PowerInfer's
activation/activation_{L}.pt files (activation_profile.py has both formats).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np

from .activation_profile import Profile, save_activation_dir, save_profile_npz
from .corpus_pass import corpus_ids, eval_windows, open_relu_model


def profile_counts(model_path: str, texts: Iterable[str], *, n_ctx: int = 512, max_tokens: int = 200_000,
                   n_threads: int = 0, progress: bool = True) -> Profile:
    """The activation counts of every layer over the texts' first max_tokens tokens."""
    llm, sparse = open_relu_model(model_path, n_ctx=n_ctx, n_threads=n_threads)
    try:
        from .._lib import lib

        n_layer = int(lib.pi_model_n_layer(llm._mp))
        ids = corpus_ids(llm, texts, max_tokens)
        if not ids:
            raise ValueError("the corpus is empty")
        llm._ctx.sparse_stats_config(count_neurons=True)
        eval_windows(llm, ids, n_ctx, "profile", progress)
        counts = [llm._ctx.neuron_counts(il) for il in range(n_layer)]
        n_tokens = llm._ctx.sparse_layer_stats(sparse[0])["n_tokens"]
        return Profile(n_layer, int(lib.pi_model_n_ff(llm._mp)), int(n_tokens), counts, source=model_path)
    finally:
        llm.close()


def summary(prof: Profile) -> dict:
    """Per layer: the share of (token, neuron) pairs that fired, and how concentrated the firing is:
    the share of all firings that the hottest 10% / 20% of neurons account for."""
    rows = []
    for il, c in enumerate(prof.counts):
        c = np.sort(np.asarray(c, dtype=np.float64))[::-1]
        total = c.sum()
        n = len(c)
        rows.append({"layer": il, "density": float(total / (prof.n_tokens * n)) if prof.n_tokens else 0.0,
                     "hot10_share": float(c[: n // 10].sum() / total) if total else 0.0,
                     "hot20_share": float(c[: n // 5].sum() / total) if total else 0.0,
                     "never_fired": int((c == 0).sum())})
    return {"n_tokens": prof.n_tokens, "layers": rows}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="powerinfer-py profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--text", action="append", required=True, help="a UTF-8 text file of the corpus (repeatable)")
    ap.add_argument("--max-tokens", type=int, default=200_000)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="profile .npz (default: MODEL + .profile.npz)")
    ap.add_argument("--activation-dir", default=None, help="also write PowerInfer's activation_{L}.pt here (torch)")
    a = ap.parse_args(argv)
    import json

    try:
        for t in a.text:
            if not Path(t).is_file():
                raise ValueError(f"--text {t}: no such file")
        if not Path(a.model).is_file():
            raise ValueError(f"{a.model}: no such model file")
        texts = (Path(t).read_text(encoding="utf-8", errors="replace") for t in a.text)
        prof = profile_counts(a.model, texts, n_ctx=a.n_ctx, max_tokens=a.max_tokens, n_threads=a.threads)
        out = a.out or a.model + ".profile.npz"
        save_profile_npz(prof, out, model=a.model, corpus=";".join(a.text))
        if a.activation_dir:
            save_activation_dir(prof, a.activation_dir)
    except (ValueError, OSError) as e:
        print(f"powerinfer-py profile: {e}", file=sys.stderr)
        return 2
    print(json.dumps(dict(summary(prof), out=out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
