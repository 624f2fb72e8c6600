"""Trains powerinfer-py's own sparse-ready model: a small llama-architecture model whose FFN is
ReLU-gated, h = ReLU(gate x) * (up x), as ReluLLaMA and ProSparse are, and writes it as GGUF.

    pip install -e ".[train]"
    python tools/train_relu_llama.py --minutes 50 --out ~/.cache/powerinfer-py/train

The recipe (every choice is a flag; these are the defaults, the ones the shipped model used):
- Corpus: English prose and Python code from the sdist of Django 4.2.16 on PyPI (fetched with
  `pip download --no-binary Django Django==4.2.16`): the documentation (docs/**/*.txt, reST,
  about 5.8 MB) and the source (django/**/*.py, about 5.4 MB). Documents are shuffled with a fixed
  seed; 2% of them (by count) are held out for the perplexity report, never trained on.
- Vocabulary: Llama 2's SentencePiece vocabulary (32000 pieces) from ggml-vocab-llama-spm.gguf
  (the llama-cpp-python sdist, as the tests fetch it), tokenized by our own engine. Each document is
  BOS + its tokens + EOS.
- Model: n_embd 256, 6 layers, 4 heads of 64 (no GQA), n_ff 1024, RMSNorm (eps 1e-5), RoPE base
  10000 on adjacent pairs (the GGUF llama convention, so no permutation at export), tied input and
  output embeddings, no biases. 14.5 M parameters, of which 8.2 M the embedding.
- Training: sequences of 512 tokens, batches of 16, AdamW (betas 0.9/0.95, weight decay 0.1 on
  matrices), learning rate 2e-3 with 100 warm-up steps and cosine decay to 10% over the steps that
  fit in --minutes (measured after the first steps), bf16 autocast on the CPU, gradient clipping
  at 1.0, torch's own threads (2 here). A checkpoint is saved every 5 minutes; --resume continues.
- Output: <out>/relu-llama.f32.gguf (architecture "llama", powerinfer.ffn_activation = "relu" so
  that engines read the FFN as ReLU-gated, the head tied to token_embd), then <out>/report.json with held-out perplexity (this script's, in float32) and the natural
  activation sparsity per layer (share of neurons with ReLU(gate x) = 0 on held-out text).
  powerinfer_py.quantize makes the Q8_0 / Q4_0 files from the f32 one.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

DJANGO = "Django==4.2.16"


# ---------------------------------------------------------------------------------------- corpus
def fetch_corpus(work: Path) -> list[str]:
    """The documents (one string each) of the Django sdist: docs/**/*.txt and django/**/*.py."""
    dl = work / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    sdists = list(dl.glob("Django-*.tar.gz"))
    if not sdists:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "Django",
                        "-d", str(dl), DJANGO], check=True)
        sdists = list(dl.glob("Django-*.tar.gz"))
    docs = []
    with tarfile.open(sdists[0]) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            parts = m.name.split("/")
            if not m.isfile() or len(parts) < 3:
                continue
            if (parts[1] == "docs" and m.name.endswith(".txt")) or (parts[1] == "django" and m.name.endswith(".py")):
                text = tf.extractfile(m).read().decode("utf-8", "replace")
                if text.strip():
                    docs.append(text)
    return docs


def split_docs(docs: list[str], seed: int, holdout: float) -> tuple[list[str], list[str]]:
    """(training documents, held-out documents): a fixed shuffle, the first `holdout` share held out."""
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, int(len(docs) * holdout))
    return [docs[i] for i in order[n_valid:]], [docs[i] for i in order[:n_valid]]


def tokenize_corpus(docs: list[str], work: Path, seed: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    """(train ids, held-out ids) as uint16 arrays, cached in work/."""
    tr, va = work / "train_ids.npy", work / "valid_ids.npy"
    if tr.exists() and va.exists():
        return np.load(tr), np.load(va)
    from powerinfer_py import assets
    from powerinfer_py._model import Model
    from powerinfer_py._tokenizer import tokenize

    train_docs, valid_docs = split_docs(docs, seed, holdout)
    with Model(str(assets.vocab_dir() / "ggml-vocab-llama-spm.gguf"), vocab_only=True) as vocab:
        def ids_of(some):
            out = []
            for d in some:
                out.append(1)  # BOS
                out.extend(tokenize(vocab, d.encode("utf-8"), add_special=False, parse_special=False))
                out.append(2)  # EOS
            return np.asarray(out, dtype=np.uint16)
        valid, train = ids_of(valid_docs), ids_of(train_docs)
    np.save(tr, train)
    np.save(va, valid)
    return train, valid


# ----------------------------------------------------------------------------------------- model
def build_model(cfg: dict):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    d, n_head, ff = cfg["n_embd"], cfg["n_head"], cfg["n_ff"]
    hd = d // n_head

    def rope_tables(n_pos: int):
        inv = cfg["rope_base"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
        return torch.cos(ang).float(), torch.sin(ang).float()

    def rope(x, cos, sin):
        """x: (b, t, heads, hd); rotates adjacent pairs (x[2i], x[2i+1]) as GGUF llama files expect."""
        x0, x1 = x[..., 0::2], x[..., 1::2]
        c, s = cos[None, :, None, :], sin[None, :, None, :]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_norm = nn.RMSNorm(d, eps=cfg["eps"])
            self.wq = nn.Linear(d, d, bias=False)
            self.wk = nn.Linear(d, d, bias=False)
            self.wv = nn.Linear(d, d, bias=False)
            self.wo = nn.Linear(d, d, bias=False)
            self.ffn_norm = nn.RMSNorm(d, eps=cfg["eps"])
            self.gate = nn.Linear(d, ff, bias=False)
            self.up = nn.Linear(d, ff, bias=False)
            self.down = nn.Linear(ff, d, bias=False)

        def forward(self, x, cos, sin, record=None, keep_grad=False):
            b, t, _ = x.shape
            xn = self.attn_norm(x)
            q = rope(self.wq(xn).view(b, t, n_head, hd), cos, sin)
            k = rope(self.wk(xn).view(b, t, n_head, hd), cos, sin)
            v = self.wv(xn).view(b, t, n_head, hd)
            a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
            x = x + self.wo(a.transpose(1, 2).reshape(b, t, d))
            xn = self.ffn_norm(x)
            g = F.relu(self.gate(xn))
            if record is not None:
                record.append(g if keep_grad else g.detach())
            return x + self.down(g * self.up(xn))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(cfg["n_vocab"], d)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg["n_layer"])])
            self.norm = nn.RMSNorm(d, eps=cfg["eps"])
            cos, sin = rope_tables(cfg["n_ctx"])
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    nn.init.normal_(p, std=0.02 / (math.sqrt(2 * cfg["n_layer"]) if name.endswith(("wo.weight", "down.weight")) else 1))

        def forward(self, ids, record=None, keep_grad=False):
            t = ids.shape[1]
            x = self.embed(ids)
            for blk in self.blocks:
                x = blk(x, self.cos[:t], self.sin[:t], record, keep_grad)
            return F.linear(self.norm(x), self.embed.weight)

    return Model()


# -------------------------------------------------------------------------------------- training
def batches(ids: np.ndarray, n_ctx: int, batch: int, rng: np.random.Generator):
    import torch

    hi = len(ids) - n_ctx - 1
    while True:
        starts = rng.integers(0, hi, size=batch)
        x = np.stack([ids[s: s + n_ctx + 1] for s in starts]).astype(np.int64)
        yield torch.from_numpy(x)


def evaluate(model, ids: np.ndarray, n_ctx: int, max_windows: int = 64) -> tuple[float, list[float]]:
    """(held-out perplexity over consecutive windows, per-layer share of ReLU(gate) = 0)."""
    import torch
    import torch.nn.functional as F

    model.eval()
    nll, n, zeros, counts = 0.0, 0, None, 0
    with torch.no_grad():
        for w in range(min(max_windows, (len(ids) - 1) // n_ctx)):
            x = torch.from_numpy(ids[w * n_ctx: (w + 1) * n_ctx + 1].astype(np.int64))[None]
            rec: list = []
            lg = model(x[:, :-1], record=rec)
            nll += F.cross_entropy(lg[0], x[0, 1:], reduction="sum").item()
            n += n_ctx
            z = [float((g == 0).float().mean()) for g in rec]
            zeros = z if zeros is None else [a + b for a, b in zip(zeros, z)]
            counts += 1
    model.train()
    return math.exp(nll / n), [z / counts for z in zeros]


def train(args) -> None:
    import torch
    import torch.nn.functional as F

    work = Path(args.out).expanduser()
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    docs = fetch_corpus(work)
    train_ids, valid_ids = tokenize_corpus(docs, work, args.seed, args.holdout)
    print(f"corpus: {len(docs)} documents, {len(train_ids):,} training and {len(valid_ids):,} held-out tokens",
          file=sys.stderr)
    cfg = dict(n_vocab=32000, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head, n_ff=args.n_ff,
               n_ctx=args.n_ctx, eps=1e-5, rope_base=10000.0)
    model = build_model(cfg)
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    ckpt = work / "checkpoint.pt"
    step, spent, total_steps = 0, 0.0, None
    if args.resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, spent, total_steps = st["step"], st["spent"], st["total_steps"]
        print(f"resumed at step {step} ({spent / 60:.1f} min)", file=sys.stderr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters, config {cfg}", file=sys.stderr)

    rng = np.random.default_rng(args.seed + step)
    data = batches(train_ids, args.n_ctx, args.batch, rng)
    budget = args.minutes * 60.0
    t_last_ckpt = time.time()
    t0 = time.time() - spent
    losses = []
    while True:
        elapsed = time.time() - t0
        if step == 20 and total_steps is None:  # plan the schedule from the measured speed
            total_steps = int(budget / (elapsed / 20))
            print(f"planned {total_steps} steps ({elapsed / 20:.2f} s/step)", file=sys.stderr)
        if total_steps is not None and step >= total_steps:
            break
        horizon = total_steps or 10 ** 9
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / horizon))))
        for gr in opt.param_groups:
            gr["lr"] = lr
        x = next(data)
        acts: list = [] if args.l1 > 0 else None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x[:, :-1], record=acts, keep_grad=True)
        ce = F.cross_entropy(logits.float().reshape(-1, cfg["n_vocab"]), x[:, 1:].reshape(-1))
        loss = ce
        if acts:  # ProSparse-style: an L1 penalty on ReLU(gate), raised linearly over the first half
            ramp = min(1.0, step / max(1, 0.5 * horizon))
            loss = loss + args.l1 * ramp * sum(g.float().abs().mean() for g in acts) / len(acts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(ce.item())
        step += 1
        if step % 50 == 0:
            print(f"step {step}/{total_steps} loss {np.mean(losses[-50:]):.3f} lr {lr:.2e} "
                  f"{(time.time() - t0) / 60:.1f} min", file=sys.stderr)
        if time.time() - t_last_ckpt > 300:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "spent": time.time() - t0, "total_steps": total_steps, "cfg": cfg}, ckpt)
            t_last_ckpt = time.time()
    minutes = (time.time() - t0) / 60
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "spent": minutes * 60,
                "total_steps": total_steps, "cfg": cfg}, ckpt)
    ppl, zeros = evaluate(model, valid_ids, args.n_ctx)
    print(f"held-out perplexity {ppl:.2f}; ReLU(gate) = 0 per layer: {[round(z, 3) for z in zeros]}", file=sys.stderr)
    out = work / "relu-llama.f32.gguf"
    export_gguf(model, cfg, out)
    report = {"corpus": DJANGO, "documents": len(docs), "train_tokens": int(len(train_ids)),
              "valid_tokens": int(len(valid_ids)), "steps": step, "tokens_seen": step * args.batch * args.n_ctx,
              "minutes": round(minutes, 1), "params": n_params, "config": cfg,
              "valid_perplexity_torch_f32": round(ppl, 3), "relu_gate_zero_share_per_layer": [round(z, 4) for z in zeros],
              "final_train_loss": round(float(np.mean(losses[-100:])), 4) if losses else None,
              "l1": args.l1, "gguf": str(out)}
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


# ---------------------------------------------------------------------------------------- export
def export_gguf(model, cfg: dict, path: Path) -> None:
    """The model as a GGUF llama file (f32 weights, head tied to token_embd), with Llama 2's
    tokenizer metadata copied from ggml-vocab-llama-spm.gguf and powerinfer.ffn_activation = "relu"."""
    import gguf

    from powerinfer_py import assets

    vocab = gguf.GGUFReader(str(assets.vocab_dir() / "ggml-vocab-llama-spm.gguf"))
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("powerinfer-py relu-llama 15M (Django docs and code)")
    w.add_context_length(cfg["n_ctx"])
    w.add_embedding_length(cfg["n_embd"])
    w.add_block_count(cfg["n_layer"])
    w.add_feed_forward_length(cfg["n_ff"])
    w.add_head_count(cfg["n_head"])
    w.add_head_count_kv(cfg["n_head"])
    w.add_rope_dimension_count(cfg["n_embd"] // cfg["n_head"])
    w.add_rope_freq_base(cfg["rope_base"])
    w.add_layer_norm_rms_eps(cfg["eps"])
    w.add_vocab_size(cfg["n_vocab"])
    w.add_string("powerinfer.ffn_activation", "relu")
    f = vocab.fields
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([bytes(f["tokenizer.ggml.tokens"].parts[i]) for i in f["tokenizer.ggml.tokens"].data])
    w.add_token_scores([float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data])
    w.add_token_types([int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_tensor("token_embd.weight", sd["embed.weight"])
    for i in range(cfg["n_layer"]):
        p, b = f"blocks.{i}.", f"blk.{i}."
        for ours, theirs in (("attn_norm.weight", "attn_norm.weight"), ("wq.weight", "attn_q.weight"),
                             ("wk.weight", "attn_k.weight"), ("wv.weight", "attn_v.weight"),
                             ("wo.weight", "attn_output.weight"), ("ffn_norm.weight", "ffn_norm.weight"),
                             ("gate.weight", "ffn_gate.weight"), ("up.weight", "ffn_up.weight"),
                             ("down.weight", "ffn_down.weight")):
            w.add_tensor(b + theirs, np.ascontiguousarray(sd[p + ours]))
    w.add_tensor("output_norm.weight", sd["norm.weight"])
    # no output.weight: the head is tied to token_embd (powerinfer-py export writes an explicit copy
    # into the files meant for PowerInfer, which cannot tie)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="~/.cache/powerinfer-py/train")
    ap.add_argument("--minutes", type=float, default=50.0)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-ff", type=int, default=1024)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--holdout", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--l1", type=float, default=0.0,
                    help="weight of an L1 penalty on ReLU(gate) (ProSparse-style, for a sparser FFN; 0 = off)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="write the GGUF and report from the checkpoint")
    ap.add_argument("--dump-corpus", metavar="DIR", help="write the training and held-out documents as "
                    "DIR/train.txt and DIR/valid.txt (for powerinfer-py profile / train-predictor / perplexity) "
                    "and stop")
    args = ap.parse_args()
    if args.dump_corpus:
        out = Path(args.dump_corpus).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        train_docs, valid_docs = split_docs(fetch_corpus(Path(args.out).expanduser()), args.seed, args.holdout)
        (out / "train.txt").write_text("\n\n".join(train_docs), encoding="utf-8")
        (out / "valid.txt").write_text("\n\n".join(valid_docs), encoding="utf-8")
        return
    if args.export_only:
        import torch

        work = Path(args.out).expanduser()
        st = torch.load(work / "checkpoint.pt", weights_only=False)
        model = build_model(st["cfg"])
        model.load_state_dict(st["model"])
        export_gguf(model, st["cfg"], work / "relu-llama.f32.gguf")
        return
    train(args)


if __name__ == "__main__":
    main()
