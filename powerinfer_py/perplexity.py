"""Perplexity of a model over a text, computed the way llama.cpp's perplexity tool computes it.

The procedure (so that figures compare with llama.cpp's):
  1. Tokenize the whole text once, adding BOS if the vocabulary says to.
  2. Cut the tokens into n_chunk = len(tokens) // n_ctx chunks of n_ctx tokens (the tail is dropped).
  3. Each chunk is evaluated from an empty KV cache, in batches of n_batch; when the vocabulary adds
     BOS, the chunk's first token is replaced by BOS for the evaluation.
  4. Only the second half of each chunk is scored: for positions j = n_ctx/2 .. n_ctx-2 the negative
     log-probability of token j+1 under the logits at j, so every scored token has at least n_ctx/2
     tokens of context.
  5. PPL = exp(sum of those negative log-probabilities / their count).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np

from ._context import Context
from ._lib import lib


@dataclass
class PerplexityResult:
    ppl: float
    nll: float                # mean negative log-likelihood per scored token (nats)
    n_scored: int             # tokens scored
    n_chunks: int
    n_ctx: int
    running_ppl: List[float] = field(default_factory=list)  # after each chunk, as llama.cpp prints


def _log_softmax_at(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log p(target) for each row of logits (rows x n_vocab), in float64."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return x[np.arange(len(targets)), targets] - lse


def perplexity_of_tokens(model, tokens: Sequence[int], *, n_ctx: int = 512, n_batch: int = 512,
                         n_threads: int = 0, n_chunks: int = -1, add_bos: Optional[bool] = None,
                         progress: Optional[Callable[[int, int, float], None]] = None) -> PerplexityResult:
    """Perplexity over already-tokenized text. model is a tier-1 Model (or anything with .ptr)."""
    if n_ctx < 4:
        raise ValueError(f"n_ctx must be at least 4, got {n_ctx}")
    tokens = [int(t) for t in tokens]
    n_chunk_max = len(tokens) // n_ctx
    if n_chunk_max == 0:
        raise ValueError(f"the text has {len(tokens)} tokens, fewer than one chunk of n_ctx={n_ctx}; "
                         "use a longer text or a smaller n_ctx")
    n_chunk = n_chunk_max if n_chunks < 0 else min(n_chunks, n_chunk_max)
    if add_bos is None:
        add_bos = bool(lib.pi_vocab_add_bos(model.ptr))
    bos = int(lib.pi_token_bos(model.ptr))
    n_batch = min(n_batch, n_ctx)
    first = n_ctx // 2

    nll_sum = 0.0
    count = 0
    running: List[float] = []
    with Context(model, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads, n_threads_batch=n_threads) as ctx:
        for c in range(n_chunk):
            chunk = tokens[c * n_ctx:(c + 1) * n_ctx]
            evaluated = list(chunk)
            if add_bos and bos >= 0:
                evaluated[0] = bos
            ctx.kv_truncate(0)
            rows = []
            for b0 in range(0, n_ctx, n_batch):
                batch = evaluated[b0:b0 + n_batch]
                want = [b0 + i >= first and b0 + i < n_ctx - 1 for i in range(len(batch))]
                ctx.decode(batch, pos=b0, logits=want)
                if any(want):
                    rows.append(ctx.all_logits())
            logits = np.concatenate(rows, axis=0)  # positions first .. n_ctx-2
            targets = np.asarray(chunk[first + 1:n_ctx], dtype=np.int64)
            logp = _log_softmax_at(logits, targets)
            nll_sum += float(-logp.sum())
            count += len(targets)
            running.append(math.exp(nll_sum / count))
            if progress:
                progress(c + 1, n_chunk, running[-1])
    return PerplexityResult(ppl=math.exp(nll_sum / count), nll=nll_sum / count, n_scored=count,
                            n_chunks=n_chunk, n_ctx=n_ctx, running_ppl=running)


def perplexity(llm_or_path, text: str, *, n_ctx: int = 512, n_batch: int = 512, n_threads: int = 0,
               n_chunks: int = -1,
               progress: Optional[Callable[[int, int, float], None]] = None) -> PerplexityResult:
    """Perplexity of a model over text. llm_or_path: a Llama, or a GGUF path (loaded here)."""
    from .llama import Llama

    own = not isinstance(llm_or_path, Llama)
    llm = Llama(model_path=str(llm_or_path), n_ctx=n_ctx, verbose=False) if own else llm_or_path
    try:
        add_bos = bool(lib.pi_vocab_add_bos(llm._model.ptr))
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=add_bos)
        return perplexity_of_tokens(llm._model, tokens, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads,
                                    n_chunks=n_chunks, add_bos=add_bos, progress=progress)
    finally:
        if own:
            llm.close()
