"""create_completion's work: prompt, the token loop, stop handling, and the OpenAI-shaped dicts.

``completion_chunks`` is the one generation loop. It yields stream chunks; the non-streaming call
consumes the same generator and assembles one result from what the run recorded, so both paths
stop, count and finish identically.

Per token the loop does: sample in C on the engine's logits row (no copy), look up the token's
bytes (cached), push them through TextStream (stop strings, UTF-8 holdback), decode the token.
Python processors, logprobs and grammars add work only when asked for.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from .errors import ContextFullError
from ._lib import check, ffi, lib
from ._text import TextStream, normalize_stop
from .sampling import Sampler, SamplingParams


@dataclass
class CompletionRequest:
    prompt: Any
    suffix: Optional[str] = None
    max_tokens: Optional[int] = 16
    temperature: float = 0.8
    top_p: float = 0.95
    min_p: float = 0.05
    typical_p: float = 1.0
    logprobs: Optional[int] = None
    echo: bool = False
    stop: Any = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.0
    top_k: int = 40
    seed: Optional[int] = None
    mirostat_mode: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    model: Optional[str] = None
    stopping_criteria: Any = None
    logits_processor: Any = None
    grammar: Any = None
    logit_bias: Optional[Dict[int, float]] = None
    include_usage: bool = False
    prompt_add_bos: Optional[bool] = None  # None: the vocabulary's add_bos flag (str prompts only)
    object_name: str = "text_completion"


@dataclass
class CompletionRun:
    """What one generation produced, filled in while the chunks are yielded."""

    id: str
    created: int
    model: str
    prompt_tokens: List[int] = field(default_factory=list)
    completion_tokens: List[int] = field(default_factory=list)
    text: bytes = b""
    prompt_text: str = ""
    finish_reason: Optional[str] = None
    logprobs: Optional[Dict[str, list]] = None

    def usage(self) -> Dict[str, int]:
        n_p, n_c = len(self.prompt_tokens), len(self.completion_tokens)
        return {"prompt_tokens": n_p, "completion_tokens": n_c, "total_tokens": n_p + n_c}


def prompt_tokens_of(llm, prompt, add_bos: Optional[bool] = None) -> List[int]:
    """A str prompt is tokenized with special tokens parsed and BOS added when the vocabulary asks
    for it; a token list is used as given."""
    if isinstance(prompt, (list, tuple)):
        return [int(t) for t in prompt]
    if isinstance(prompt, bytes):
        prompt = prompt.decode("utf-8")
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) if prompt else []
    want_bos = llm._add_bos if add_bos is None else add_bos
    if want_bos and llm._token_bos >= 0 and (not tokens or tokens[0] != llm._token_bos):
        tokens.insert(0, llm._token_bos)
    if not tokens:  # nothing to condition on: start from BOS, or EOS for vocabularies without BOS
        start = llm._token_bos if llm._token_bos >= 0 else llm._token_eos
        if start < 0:
            raise ValueError("the prompt is empty and the vocabulary has neither BOS nor EOS to start from")
        tokens = [start]
    return tokens


def _top_logprobs(llm, logprobs_row: np.ndarray, k: int) -> Dict[str, float]:
    if k <= 0:
        return {}
    idx = np.argpartition(-logprobs_row, min(k, len(logprobs_row) - 1))[:k]
    idx = idx[np.argsort(-logprobs_row[idx])]
    return {llm.token_piece(int(i)).decode("utf-8", errors="ignore"): float(logprobs_row[i]) for i in idx}


def completion_chunks(llm, req: CompletionRequest) -> Iterator[Dict[str, Any]]:
    """The generation loop; yields stream chunks and records the totals in llm._last_run."""
    llm._need_ctx()
    if req.suffix:
        raise ValueError("suffix (fill-in-the-middle) is not supported by powerinfer-py")
    if req.logprobs is not None and not llm.logits_all:
        raise ValueError("logprobs is not supported for models created with logits_all=False")

    run = CompletionRun(id=f"cmpl-{uuid.uuid4()}", created=int(time.time()),
                        model=req.model if req.model is not None else llm.model_path)
    llm._last_run = run
    prompt_tokens = prompt_tokens_of(llm, req.prompt, req.prompt_add_bos)
    run.prompt_tokens = prompt_tokens
    n_ctx = llm._n_ctx
    if len(prompt_tokens) >= n_ctx:
        raise ContextFullError(f"Requested tokens ({len(prompt_tokens)}) exceed context window of {n_ctx}")
    max_tokens = req.max_tokens
    if max_tokens is None or max_tokens <= 0 or max_tokens > n_ctx - len(prompt_tokens):
        max_tokens = n_ctx - len(prompt_tokens)

    seed = req.seed if req.seed is not None else llm._rng.getrandbits(32)
    if req.seed is not None:
        llm._seed = req.seed
    sampler = Sampler(llm._n_vocab, SamplingParams(
        temperature=req.temperature, top_k=req.top_k, top_p=req.top_p, min_p=req.min_p, typical_p=req.typical_p,
        repeat_penalty=req.repeat_penalty, frequency_penalty=req.frequency_penalty,
        presence_penalty=req.presence_penalty, penalty_last_n=llm.last_n_tokens_size,
        mirostat_mode=req.mirostat_mode, mirostat_tau=req.mirostat_tau, mirostat_eta=req.mirostat_eta,
        seed=seed, logit_bias=req.logit_bias))
    n_last = llm.last_n_tokens_size
    sampler.accept_many(prompt_tokens[-n_last:] if n_last > 0 else prompt_tokens)
    grammar_state = req.grammar.start(llm) if req.grammar is not None else None

    def chunk(text: str, finish_reason: Optional[str], logprobs=None) -> Dict[str, Any]:
        return {"id": run.id, "object": req.object_name, "created": run.created, "model": run.model,
                "choices": [{"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish_reason}]}

    want_lp = req.logprobs is not None
    lp_tokens: List[str] = []
    lp_offsets: List[int] = []
    lp_values: List[Optional[float]] = []
    lp_tops: List[Optional[Dict[str, float]]] = []
    offset = 0

    if req.echo:
        run.prompt_text = llm.detokenize(prompt_tokens).decode("utf-8", errors="ignore")
        if want_lp:
            _prompt_logprobs(llm, prompt_tokens, req.logprobs, lp_tokens, lp_offsets, lp_values, lp_tops)
        offset = len(run.prompt_text)

    llm._prepare_prompt(prompt_tokens)

    if req.echo and run.prompt_text:
        yield chunk(run.prompt_text, None, _lp_slice(lp_tokens, lp_offsets, lp_values, lp_tops, 0) if want_lp else None)
    lp_sent = len(lp_tokens)

    stops = normalize_stop(req.stop)
    text = TextStream(stops)
    cp = llm._cp
    n_vocab = llm._n_vocab
    processor = req.logits_processor
    stopping = req.stopping_criteria
    tok_buf = ffi.new("pi_token[1]")
    finish = "length"
    try:
        for step in range(max_tokens):
            logits_ptr = lib.pi_get_logits(cp, -1)
            raw = None
            if processor is not None or want_lp or stopping is not None:
                raw = np.frombuffer(ffi.buffer(logits_ptr, 4 * n_vocab), dtype=np.float32)
            if processor is not None:
                ids = np.array(llm._tokens, dtype=np.intc)
                scores = np.ascontiguousarray(processor(ids, raw.copy()), dtype=np.float32)
                logits_ptr = ffi.cast("float *", ffi.from_buffer(scores))
            if grammar_state is not None:
                token = grammar_state.sample(sampler, logits_ptr, max_tokens - step)
            else:
                token = sampler.sample_ptr(logits_ptr)
            if stopping is not None and stopping(np.array(llm._tokens + [token], dtype=np.intc), raw):
                finish = "stop"
                break
            if llm.is_eog(token):
                finish = "stop"
                break
            run.completion_tokens.append(token)
            sampler.accept(token)
            if grammar_state is not None:
                grammar_state.accept(token)
            piece = llm.token_piece(token)
            if want_lp:
                row = raw - raw.max()
                row = row - np.log(np.exp(row).sum())
                tops = _top_logprobs(llm, row, req.logprobs)
                piece_s = piece.decode("utf-8", errors="ignore")
                tops.setdefault(piece_s, float(row[token]))
                lp_tokens.append(piece_s)
                lp_offsets.append(offset)
                lp_values.append(float(row[token]))
                lp_tops.append(tops)
                offset += len(piece_s)
            out = text.push(piece)
            if out:
                lps = _lp_slice(lp_tokens, lp_offsets, lp_values, lp_tops, lp_sent) if want_lp else None
                lp_sent = len(lp_tokens)
                yield chunk(out, None, lps)
            if text.stopped:
                finish = "stop"
                break
            if grammar_state is not None and grammar_state.done():
                finish = "stop"
                break
            if step + 1 == max_tokens:
                break
            tok_buf[0] = token
            check(lib.pi_decode(cp, tok_buf, ffi.NULL, 1, ffi.NULL), "decode")
            llm._tokens.append(token)
            if llm.logits_all:
                llm._scores[len(llm._tokens) - 1] = np.frombuffer(
                    ffi.buffer(lib.pi_get_logits(cp, -1), 4 * n_vocab), dtype=np.float32)
        rest = text.flush()
        if rest:
            lps = _lp_slice(lp_tokens, lp_offsets, lp_values, lp_tops, lp_sent) if want_lp else None
            lp_sent = len(lp_tokens)
            yield chunk(rest, None, lps)
    finally:
        sampler.close()
    run.finish_reason = finish
    run.text = bytes(text.buf)
    if want_lp:
        run.logprobs = {"tokens": lp_tokens, "text_offset": lp_offsets, "token_logprobs": lp_values,
                        "top_logprobs": lp_tops}
    yield chunk("", finish)
    if req.include_usage:
        yield {"id": run.id, "object": req.object_name, "created": run.created, "model": run.model,
               "choices": [], "usage": run.usage()}


def _lp_slice(tokens, offsets, values, tops, start):
    return {"tokens": tokens[start:], "text_offset": offsets[start:], "token_logprobs": values[start:],
            "top_logprobs": tops[start:]}


def _prompt_logprobs(llm, prompt_tokens, k, tokens, offsets, values, tops) -> None:
    """Logprobs of the prompt's own tokens (echo=True): the first has none, each later one is read
    from the logits at the position before it. Evaluates the prompt first if needed."""
    llm._prepare_prompt(prompt_tokens)
    scores = llm._scores
    off = 0
    for i, t in enumerate(prompt_tokens):
        piece = llm.token_piece(t).decode("utf-8", errors="ignore")
        tokens.append(piece)
        offsets.append(off)
        off += len(piece)
        if i == 0:
            values.append(None)
            tops.append(None)
            continue
        row = scores[i - 1].astype(np.float64)
        row = row - row.max()
        row = row - np.log(np.exp(row).sum())
        top = _top_logprobs(llm, row, k)
        top.setdefault(piece, float(row[t]))
        values.append(float(row[t]))
        tops.append(top)


def locked_stream(llm, gen: Iterator[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    """Holds the instance lock from the first chunk until the generator ends or is closed."""
    with llm._lock:
        yield from gen


def collect_completion(llm, gen: Iterator[Dict[str, Any]], req: CompletionRequest) -> Dict[str, Any]:
    for _ in gen:
        pass
    run: CompletionRun = llm._last_run
    text = run.text.decode("utf-8", errors="ignore")
    if req.echo:
        text = run.prompt_text + text
    return {
        "id": run.id,
        "object": "text_completion",
        "created": run.created,
        "model": run.model,
        "choices": [{"text": text, "index": 0, "logprobs": run.logprobs, "finish_reason": run.finish_reason}],
        "usage": run.usage(),
    }
