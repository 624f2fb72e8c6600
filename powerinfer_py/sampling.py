"""Sampling settings and the C sampler behind them, plus llama-cpp-python's processor lists.

The per-token work (bias, penalties, truncations, the draw) runs in C (src/sample/sampler.cpp) on
the engine's logits row in place, so no per-token copy crosses into Python unless the caller asks
for logprobs or passes a Python ``logits_processor``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ._lib import check, ffi, lib

LLAMA_DEFAULT_SEED = 0xFFFFFFFF

# (input_ids, scores) -> scores, and (input_ids, logits) -> bool, as in llama-cpp-python.
LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]
StoppingCriteria = Callable[[np.ndarray, np.ndarray], bool]


class LogitsProcessorList(List[LogitsProcessor]):
    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class StoppingCriteriaList(List[StoppingCriteria]):
    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> bool:
        return any(criterion(input_ids, logits) for criterion in self)


class MinTokensLogitsProcessor:
    """Forbids the end-of-sequence token until min_tokens tokens have been generated."""

    def __init__(self, min_tokens: int, token_eos: int):
        self.min_tokens = min_tokens
        self.token_eos = token_eos
        self.prompt_tokens: Optional[int] = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        if len(input_ids) - self.prompt_tokens < self.min_tokens:
            scores[self.token_eos] = -np.inf
        return scores


@dataclass
class SamplingParams:
    """The sampling knobs of one call, with llama-cpp-python's completion defaults."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    penalty_last_n: int = 64
    mirostat_mode: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    seed: int = 0
    logit_bias: Optional[Dict[int, float]] = None


class Sampler:
    """Owns a pi_sampler for one generation."""

    def __init__(self, n_vocab: int, params: SamplingParams):
        if params.mirostat_mode not in (0, 1, 2):
            raise ValueError(f"mirostat_mode must be 0, 1 or 2, not {params.mirostat_mode!r}")
        self.n_vocab = n_vocab
        self.params = params
        p = ffi.new("pi_sampler_params *", lib.pi_sampler_default_params())
        p.temperature = float(params.temperature)
        p.top_k = int(params.top_k)
        p.top_p = float(params.top_p)
        p.min_p = float(params.min_p)
        p.typical_p = float(params.typical_p)
        p.penalty_last_n = int(params.penalty_last_n)
        p.repeat_penalty = float(params.repeat_penalty)
        p.frequency_penalty = float(params.frequency_penalty)
        p.presence_penalty = float(params.presence_penalty)
        p.mirostat = int(params.mirostat_mode)
        p.mirostat_tau = float(params.mirostat_tau)
        p.mirostat_eta = float(params.mirostat_eta)
        p.seed = int(params.seed) & 0xFFFFFFFF
        out = ffi.new("pi_sampler **")
        check(lib.pi_sampler_new(n_vocab, p, out), "sampler")
        self._ptr = ffi.gc(out[0], lib.pi_sampler_free)
        self._token = ffi.new("pi_token *")
        if params.logit_bias:
            ids = [int(k) for k in params.logit_bias]
            for t in ids:
                if not 0 <= t < n_vocab:
                    raise ValueError(f"logit_bias: token id {t} is outside the vocabulary [0, {n_vocab})")
            vals = [float(params.logit_bias[k]) for k in params.logit_bias]
            check(lib.pi_sampler_set_logit_bias(self._ptr, ffi.new("pi_token[]", ids), ffi.new("float[]", vals),
                                                len(ids)), "logit_bias")

    def min_candidates_exact(self) -> int:
        """How many allowed tokens among the most likely ones make a restricted mask give the same
        draw as the full mask (grammar sampling): 1 for greedy, top_k for the truncation chain, and
        'all of them' when bias, raising penalties, mirostat or top_k=0 can reach further down."""
        p = self.params
        everything = 1 << 30
        if any(v > 0 for v in (p.logit_bias or {}).values()) or p.repeat_penalty < 1.0 \
                or p.frequency_penalty < 0 or p.presence_penalty < 0:
            return everything
        if p.temperature == 0:
            return 1
        if p.temperature < 0 or p.mirostat_mode or p.top_k <= 0:
            return everything
        return p.top_k

    def accept(self, token: int) -> None:
        lib.pi_sampler_accept(self._ptr, token)

    def accept_many(self, tokens: Sequence[int]) -> None:
        for t in tokens:
            lib.pi_sampler_accept(self._ptr, t)

    def sample_ptr(self, logits_ptr, allowed=ffi.NULL) -> int:
        """logits_ptr: a cffi float* of n_vocab floats (the engine's row, not modified)."""
        check(lib.pi_sampler_sample(self._ptr, logits_ptr, allowed, self._token), "sample")
        return self._token[0]

    def sample(self, logits: np.ndarray, allowed: Optional[np.ndarray] = None) -> int:
        logits = np.ascontiguousarray(logits, dtype=np.float32)
        if logits.shape != (self.n_vocab,):
            raise ValueError(f"logits must have shape ({self.n_vocab},), not {logits.shape}")
        mask = ffi.NULL
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.uint8)
            mask = ffi.cast("uint8_t *", ffi.from_buffer(allowed))
        return self.sample_ptr(ffi.cast("float *", ffi.from_buffer(logits)), mask)

    def close(self) -> None:
        if self._ptr is not None:
            ffi.release(self._ptr)
            self._ptr = None


def draw_seed(rng: random.Random) -> int:
    return rng.getrandbits(32)


def logits_to_logprobs(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax."""
    logits = np.asarray(logits, dtype=np.float32)
    mx = np.max(logits, axis=axis, keepdims=True)
    shifted = logits - mx
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
