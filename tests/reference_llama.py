"""A plain numpy forward pass of the llama architecture, the oracle for the engine's logits.

Every weight is dequantized with gguf.quants.dequantize (the gguf package's own reader, not ours)
and the math is done in float64, step by step, with nothing fused or approximated:

    x = token_embd[tokens]
    per block:  h = x + Wo · attn(rope(Wq·rms(x)), rope(Wk·rms(x)), Wv·rms(x))   (causal, GQA)
                x = h + Wdown · (silu(Wgate·rms(h)) * (Wup·rms(h)))
    logits = Wout · rms(x)          (Wout = token_embd when the file has no output.weight)

RoPE rotates adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/n_rot) (times 1/factor with linear
scaling), as GGUF llama files expect.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class ReferenceLlama:
    def __init__(self, path: str | Path, act_round=None, kv_round=None):
        """act_round(x), when given, is applied to the input of every matrix product, and
        kv_round(x) to the keys and values as stored: they let a test imitate the engine's 8-bit
        activations and f16 KV cache, to tell rounding noise from a real difference."""
        self.act_round = act_round or (lambda a: a)
        self.kv_round = kv_round or (lambda a: a)
        self.reader = GGUFReader(str(path))
        self.tensors = {t.name: t for t in self.reader.tensors}
        arch = self._field("general.architecture")
        assert arch in ("llama", "mistral"), arch
        self.n_embd = int(self._field(f"{arch}.embedding_length"))
        self.n_layer = int(self._field(f"{arch}.block_count"))
        self.n_head = int(self._field(f"{arch}.attention.head_count"))
        self.n_head_kv = int(self._field(f"{arch}.attention.head_count_kv", self.n_head))
        self.eps = float(self._field(f"{arch}.attention.layer_norm_rms_epsilon"))
        self.rope_base = float(self._field(f"{arch}.rope.freq_base", 10000.0))
        self.head_dim = self.n_embd // self.n_head
        self.n_rot = int(self._field(f"{arch}.rope.dimension_count", self.head_dim))
        # Linear RoPE scaling divides positions by the factor.
        self.freq_scale = 1.0
        if self._field(f"{arch}.rope.scaling.type", "none") == "linear":
            self.freq_scale = 1.0 / float(self._field(f"{arch}.rope.scaling.factor", 1.0))
        self._cache: dict[str, np.ndarray] = {}

    def _field(self, key: str, default=None):
        f = self.reader.fields.get(key)
        if f is None:
            if default is None:
                raise KeyError(key)
            return default
        return f.contents()

    def w(self, name: str) -> np.ndarray:
        """The tensor as float64, numpy shape (rows, cols) = (ne1, ne0)."""
        if name not in self._cache:
            t = self.tensors[name]
            a = dequantize(t.data, t.tensor_type).astype(np.float64)
            self._cache[name] = a.reshape([int(d) for d in reversed(t.shape)])
        return self._cache[name]

    def rms(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """x: (n_tok, n_heads, head_dim); rotates pairs (2i, 2i+1) for i < n_rot/2."""
        half = self.n_rot // 2
        inv = self.rope_base ** (-2.0 * np.arange(half) / self.n_rot)
        ang = self.freq_scale * pos[:, None].astype(np.float64) * inv[None, :]  # (n_tok, half)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        x0, x1 = x[..., 0:self.n_rot:2], x[..., 1:self.n_rot:2]
        out[..., 0:self.n_rot:2] = x0 * c - x1 * s
        out[..., 1:self.n_rot:2] = x0 * s + x1 * c
        return out

    def forward(self, tokens: list[int]) -> np.ndarray:
        """Logits (n_tok, n_vocab) of every position for tokens at positions 0..n_tok-1."""
        n = len(tokens)
        pos = np.arange(n)
        hd, nh, nkv = self.head_dim, self.n_head, self.n_head_kv
        x = self.w("token_embd.weight")[np.asarray(tokens)]
        mask = np.triu(np.full((n, n), -np.inf), k=1)  # token t sees positions <= t
        for il in range(self.n_layer):
            b = f"blk.{il}."
            xn = self.act_round(self.rms(x, self.w(b + "attn_norm.weight")))
            q = (xn @ self.w(b + "attn_q.weight").T).reshape(n, nh, hd)
            k = (xn @ self.w(b + "attn_k.weight").T).reshape(n, nkv, hd)
            v = (xn @ self.w(b + "attn_v.weight").T).reshape(n, nkv, hd)
            q, k = self.rope(q, pos), self.kv_round(self.rope(k, pos))
            v = self.kv_round(v)
            att = np.empty((n, nh, hd))
            group = nh // nkv
            for h in range(nh):
                g = h // group
                sc = q[:, h, :] @ k[:, g, :].T / np.sqrt(hd) + mask
                sc = np.exp(sc - sc.max(axis=1, keepdims=True))
                sc /= sc.sum(axis=1, keepdims=True)
                att[:, h, :] = sc @ v[:, g, :]
            x = x + self.act_round(att.reshape(n, nh * hd)) @ self.w(b + "attn_output.weight").T
            x = x + self.ffn(il, x)
        head = "output.weight" if "output.weight" in self.tensors else "token_embd.weight"
        return self.act_round(self.rms(x, self.w("output_norm.weight"))) @ self.w(head).T

    def ffn(self, il: int, x: np.ndarray) -> np.ndarray:
        """The feed-forward output of block il for the residual x (n_tok, n_embd) (SwiGLU)."""
        b = f"blk.{il}."
        xn = self.act_round(self.rms(x, self.w(b + "ffn_norm.weight")))
        gate = xn @ self.w(b + "ffn_gate.weight").T
        up = xn @ self.w(b + "ffn_up.weight").T
        return self.act_round(gate / (1.0 + np.exp(-gate)) * up) @ self.w(b + "ffn_down.weight").T
