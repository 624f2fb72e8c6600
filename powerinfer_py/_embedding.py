"""Embeddings: each text is evaluated alone in a cleared KV cache, its final hidden states (after
the output norm) are pooled, and optionally L2-normalized.

Pooling follows llama.cpp's constants: NONE (0) gives one vector per token, MEAN (1) the average
over positions, CLS (2) the first position, LAST (3) the last one.
"""
from __future__ import annotations

from typing import List, Tuple, Union

import numpy as np

from .errors import ContextFullError
from ._lib import check, ffi, lib

POOLING_NONE, POOLING_MEAN, POOLING_CLS, POOLING_LAST = 0, 1, 2, 3


def _hidden_states(llm, tokens: List[int]) -> np.ndarray:
    """[n_tokens, n_embd] final hidden states of tokens, evaluated from position 0."""
    n_embd = llm._n_embd
    out = np.empty((len(tokens), n_embd), dtype=np.float32)
    llm._truncate(0)
    check(lib.pi_kv_truncate(llm._cp, 0), "kv_truncate")
    llm._tokens = []
    n_batch = llm._n_batch
    want = ffi.new("int8_t[]", [1] * n_batch)
    buf = ffi.new("pi_token[]", n_batch)
    for start in range(0, len(tokens), n_batch):
        batch = tokens[start:start + n_batch]
        buf[0:len(batch)] = batch
        check(lib.pi_decode(llm._cp, buf, ffi.NULL, len(batch), want), "decode")
        for i in range(len(batch)):
            row = lib.pi_get_embeddings(llm._cp, i)
            if row == ffi.NULL:
                raise RuntimeError("the context returned no embeddings (was it created with embedding=True?)")
            out[start + i] = np.frombuffer(ffi.buffer(row, 4 * n_embd), dtype=np.float32)
    return out


def pool(states: np.ndarray, pooling: int) -> np.ndarray:
    if pooling == POOLING_MEAN:
        return states.mean(axis=0)
    if pooling == POOLING_CLS:
        return states[0]
    if pooling == POOLING_LAST:
        return states[-1]
    if pooling == POOLING_NONE:
        return states
    raise ValueError(f"pooling type {pooling} is not supported (0 none, 1 mean, 2 cls, 3 last)")


def l2_normalize(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0)


def embed_texts(llm, input: Union[str, List[str]], normalize: bool, truncate: bool) -> Tuple[list, int]:
    single = isinstance(input, str)
    texts = [input] if single else list(input)
    pooling = llm._pooling()
    limit = llm._n_ctx
    results, total = [], 0
    try:
        for text in texts:
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            if not tokens:
                tokens = [llm._token_bos if llm._token_bos >= 0 else llm._token_eos]
            if len(tokens) > limit:
                if not truncate:
                    raise ContextFullError(f"Requested tokens ({len(tokens)}) exceed context window of {limit}")
                tokens = tokens[:limit]
            total += len(tokens)
            v = pool(_hidden_states(llm, tokens), pooling)
            if normalize:
                v = l2_normalize(v)
            results.append(v.tolist())
    finally:
        # the cache now holds an embedding pass, not a generation: the next completion starts fresh
        llm._truncate(0)
        llm._tokens = []
        llm._logits_ready = False
    return (results[0] if single else results), total
