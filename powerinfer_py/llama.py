"""The high-level ``Llama`` class: llama-cpp-python's surface over our engine.

Code written for llama-cpp-python should work after changing the import:

    from powerinfer_py import Llama
    llm = Llama(model_path="model.gguf", n_ctx=2048)
    llm("Q: Name the planets. A:", max_tokens=32, stop=["Q:"])
    llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}])

Layout: this file holds the object's life (load, close), the model facts, tokenizing, the KV cache
with prefix reuse, state, and embeddings. Completion and streaming live in _completion.py, chat in
chat_format.py, the sampler in sampling.py (C underneath), grammars in llama_grammar.py.

One ``Llama`` may be shared by threads: every public call takes the instance's lock, and a stream
holds it until the generator finishes or is closed, so calls never interleave on the KV cache.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _logger, _offload
from ._closeable import Closeable
from .errors import ContextFullError
from ._lib import check, ffi, lib
from .sampling import (  # noqa: F401  (re-exported for llama-cpp-python compatibility)
    LLAMA_DEFAULT_SEED,
    LogitsProcessorList,
    MinTokensLogitsProcessor,
    StoppingCriteriaList,
    logits_to_logprobs,
)

logger = logging.getLogger("powerinfer_py")

# llama.cpp's pooling constants, as llama-cpp-python exposes them.
LLAMA_POOLING_TYPE_UNSPECIFIED = -1
LLAMA_POOLING_TYPE_NONE = 0
LLAMA_POOLING_TYPE_MEAN = 1
LLAMA_POOLING_TYPE_CLS = 2
LLAMA_POOLING_TYPE_LAST = 3


def _kv_type(type_k: Optional[int], type_v: Optional[int]) -> str:
    """The KV cache type from llama-cpp-python's type_k / type_v (ggml type ids): F16 (1, the
    default) or F32 (0), the same for keys and values."""
    names = {0: "f32", 1: "f16", None: None}
    k, v = names.get(type_k, "?"), names.get(type_v, "?")
    if "?" in (k, v) or (k and v and k != v):
        raise ValueError(f"type_k={type_k}, type_v={type_v}: the KV cache can be F16 (1) or F32 (0), the same "
                         f"for keys and values")
    return k or v or "f16"


class LlamaState:
    """A snapshot of the KV cache and the tokens it holds (``Llama.save_state``)."""

    def __init__(self, input_ids: np.ndarray, scores: Optional[np.ndarray], n_tokens: int,
                 llama_state: bytes, llama_state_size: int, seed: int):
        self.input_ids = input_ids
        self.scores = scores
        self.n_tokens = n_tokens
        self.llama_state = llama_state
        self.llama_state_size = llama_state_size
        self.seed = seed


def longest_token_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class Llama(Closeable):
    """A model and one context, with llama-cpp-python's methods. See the module docstring.

    powerinfer-py's own arguments: sparse_mode ("auto", "dense", "predictor", "oracle"),
    sparse_threshold and sparse_measure_truth for ReLU models (README "Sparse inference"); and the
    GPU split of their FFN: offload_device ("cuda", "cuda:N", or "cpu-standin", a CPU stand-in
    device), vram_budget (bytes or text such as "12GiB"), and which neurons go there: gpu_index
    (PowerInfer's .generated.gpuidx; default <model>.generated.gpuidx) or offload_profile (an
    activation profile .npz from `powerinfer-py profile`, placed by our solver under vram_budget and
    written as that gpuidx). gpu_split() reports the result."""

    def __init__(
        self,
        model_path: str,
        *,
        # model
        n_gpu_layers: int = 0,
        split_mode: int = 1,
        main_gpu: int = 0,
        tensor_split: Optional[List[float]] = None,
        vocab_only: bool = False,
        use_mmap: bool = True,
        use_mlock: bool = False,
        kv_overrides: Optional[Dict[str, Union[bool, int, float, str]]] = None,
        # context
        seed: int = LLAMA_DEFAULT_SEED,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_ubatch: int = 512,
        n_threads: Optional[int] = None,
        n_threads_batch: Optional[int] = None,
        rope_scaling_type: Optional[int] = -1,
        pooling_type: int = LLAMA_POOLING_TYPE_UNSPECIFIED,
        rope_freq_base: float = 0.0,
        rope_freq_scale: float = 0.0,
        yarn_ext_factor: float = -1.0,
        yarn_attn_factor: float = 1.0,
        yarn_beta_fast: float = 32.0,
        yarn_beta_slow: float = 1.0,
        yarn_orig_ctx: int = 0,
        logits_all: bool = False,
        embedding: bool = False,
        offload_kqv: bool = True,
        flash_attn: bool = False,
        # sampling
        no_perf: bool = False,
        last_n_tokens_size: int = 64,
        # lora, numa: accepted for compatibility
        lora_base: Optional[str] = None,
        lora_scale: float = 1.0,
        lora_path: Optional[str] = None,
        numa: Union[bool, int] = False,
        # chat
        chat_format: Optional[str] = None,
        chat_handler: Optional[Any] = None,
        chat_template_kwargs: Optional[Dict[str, Any]] = None,
        # misc
        draft_model: Optional[Any] = None,
        tokenizer: Optional[Any] = None,
        type_k: Optional[int] = None,
        type_v: Optional[int] = None,
        spm_infill: bool = False,
        verbose: bool = True,
        # powerinfer-py's own
        sparse_mode: Optional[str] = None,
        sparse_threshold: Optional[float] = None,
        sparse_measure_truth: bool = False,
        offload_device: Optional[str] = None,
        vram_budget: Optional[Union[int, str]] = None,
        gpu_index: Optional[str] = None,
        offload_profile: Optional[str] = None,
        **kwargs,  # old names (n_parts, f16_kv, mul_mat_q, rpc_servers, device...) are ignored
    ):
        self._lock = threading.RLock()
        self._model = None
        self._ctx = None
        self.verbose = verbose
        _logger.set_verbose(verbose)
        if kwargs:
            logger.debug("Llama: ignoring unknown arguments %s", sorted(kwargs))
        if lora_path:
            raise ValueError("lora_path: LoRA adapters are not supported by powerinfer-py")

        self.model_path = str(model_path)
        if not os.path.exists(self.model_path):
            raise ValueError(f"Model path does not exist: {model_path}")
        self._init_kwargs = dict(
            n_gpu_layers=n_gpu_layers, vocab_only=vocab_only, use_mmap=use_mmap, use_mlock=use_mlock,
            seed=seed, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads, n_threads_batch=n_threads_batch,
            pooling_type=pooling_type, logits_all=logits_all, embedding=embedding,
            last_n_tokens_size=last_n_tokens_size, chat_format=chat_format,
            chat_template_kwargs=chat_template_kwargs, verbose=verbose, sparse_mode=sparse_mode,
            sparse_threshold=sparse_threshold, sparse_measure_truth=sparse_measure_truth,
        )

        from ._model import Model

        model_kw = dict(n_gpu_layers=int(n_gpu_layers), vocab_only=vocab_only, use_mmap=use_mmap,
                        n_threads=int(n_threads or 0))
        if sparse_mode is not None:
            model_kw["sparse_mode"] = sparse_mode
        if sparse_threshold is not None:
            model_kw["sparse_threshold"] = sparse_threshold
        if n_gpu_layers and not vocab_only and not _offload.cuda_built():
            warnings.warn(f"n_gpu_layers={n_gpu_layers}: this build has no CUDA backend, so every layer runs on "
                          f"the CPU (reinstall with CMAKE_ARGS=\"-DPOWERINFER_CUDA=ON\" for a GPU)", stacklevel=2)
        want_split = (offload_device is not None or vram_budget is not None or gpu_index is not None
                      or offload_profile is not None)
        if want_split:
            offload_device = offload_device or "cuda"
            _offload.check_device(offload_device)
        self._model = Model(self.model_path, **model_kw)
        self._mp = self._model.ptr
        self._vram_budget = _offload.budget_bytes(vram_budget)
        if want_split and not vocab_only:
            try:
                n_layer, n_ff = int(lib.pi_model_n_layer(self._mp)), int(lib.pi_model_n_ff(self._mp))
                hot = _offload.hot_neurons(self.model_path, n_layer, n_ff, gpu_index, offload_profile,
                                           self._vram_budget, int(n_ctx) if n_ctx else 2048)
                self._model.offload_ffn(offload_device, self._vram_budget, hot)
            except BaseException:
                self._model.close()
                raise
            split = self.gpu_split()
            logger.info("offload: %d of %d FFN neurons (%.1f MiB) on %s", split["hot_neurons"],
                        split["total_neurons"], split["used_bytes"] / 2**20, split["device"])

        self.metadata: Dict[str, str] = dict(self._model.metadata)
        self._n_vocab = int(lib.pi_model_n_vocab(self._mp))
        self._n_embd = int(lib.pi_model_n_embd(self._mp))
        self._token_bos = int(lib.pi_token_bos(self._mp))
        self._token_eos = int(lib.pi_token_eos(self._mp))
        self._add_bos = bool(lib.pi_vocab_add_bos(self._mp))
        self._piece_cache: Dict[int, bytes] = {}
        self._eog_cache: Dict[int, bool] = {}

        self.vocab_only = vocab_only
        self.logits_all = logits_all
        self.embedding = embedding
        self.last_n_tokens_size = last_n_tokens_size
        self.pooling_type_ = pooling_type
        self._seed = seed
        self._rng = random.Random(None if seed == LLAMA_DEFAULT_SEED else seed)

        self._n_ctx = 0
        self._n_batch = 0
        self._tokens: List[int] = []  # what the KV cache holds, position by position
        self._scores: Optional[np.ndarray] = None  # [n_ctx, n_vocab] logits per position (logits_all)
        self._logits_ready = False  # the context's last logits belong to _tokens[-1]
        if not vocab_only:
            from ._context import Context

            ctx_n = int(n_ctx) if n_ctx else int(lib.pi_model_n_ctx_train(self._mp))
            self._ctx = Context(
                self._model, n_ctx=ctx_n, n_batch=min(int(n_batch), ctx_n),
                n_threads=int(n_threads or 0), n_threads_batch=int(n_threads_batch or 0),
                logits_all=logits_all, embeddings=embedding, kv_type=_kv_type(type_k, type_v),
            )
            self._cp = self._ctx.ptr
            if sparse_measure_truth:
                self._ctx.sparse_stats_config(measure_truth=True)
            self._n_ctx = int(lib.pi_context_n_ctx(self._cp))
            self._n_batch = int(lib.pi_context_n_batch(self._cp))
            self._tok_buf = ffi.new("pi_token[]", max(self._n_batch, 1))

        from .chat_format import resolve_chat_format

        self.chat_handler = chat_handler
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.chat_format, self._chat_handlers = resolve_chat_format(self, chat_format)
        if verbose:
            logger.info("Llama: %s loaded (%s, n_ctx=%d, chat format %s)", self.model_path,
                        lib.pi_vocab_type(self._mp) and ffi.string(lib.pi_vocab_type(self._mp)).decode(),
                        self._n_ctx, self.chat_format)

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        """Frees the context and the model now (also called by ``__del__`` and ``with``)."""
        lock = getattr(self, "_lock", None)
        with (lock if lock is not None else contextlib.nullcontext()):
            ctx, self._ctx = getattr(self, "_ctx", None), None
            if ctx is not None:
                ctx.close()
            model, self._model = getattr(self, "_model", None), None
            if model is not None:
                model.close()
            self._tokens = []

    def __getstate__(self):
        return dict(model_path=self.model_path, **self._init_kwargs)

    def __setstate__(self, state):
        self.__init__(**state)

    def _need_model(self) -> None:
        if self._model is None:
            raise RuntimeError("this Llama has been closed")

    def _need_ctx(self) -> None:
        self._need_model()
        if self._ctx is None:
            raise RuntimeError("this Llama was loaded with vocab_only=True: it has no context to evaluate with")

    # ------------------------------------------------------------------ facts
    def timings(self) -> Dict[str, float]:
        """Engine time and token counts since load or reset_timings(): t_prompt_ms and
        n_prompt_tokens for multi-token batches, t_decode_ms and n_decode_tokens for single tokens."""
        self._need_ctx()
        return self._ctx.timings()

    def reset_timings(self) -> None:
        self._need_ctx()
        self._ctx.reset_timings()

    def gpu_split(self) -> Dict[str, Any]:
        """What went where: {"device" (None without a split), "budget_bytes" (0: none), "used_bytes",
        "hot_neurons", "total_neurons", "layers": [{"layer", "hot_neurons", "n_ff", "share", "bytes"}],
        "on_device", "on_cpu"}. The split is set at construction (offload_device, vram_budget,
        gpu_index)."""
        with self._lock:
            n_ff = int(lib.pi_model_n_ff(self._mp)) if not self._model.vocab_only else 0
            return _offload.split_report(self._model.offload_info(), n_ff, self._vram_budget)

    def sparsity_stats(self, reset: bool = False) -> Dict[str, Any]:
        """How sparse the FFNs ran, over the tokens evaluated since load or the last reset.

        Returns {"mode", "threshold", "layers", "ffn_density", "time_ms"}. "layers" has one entry per
        layer whose FFN runs the sparse path (ReLU models), with "tokens"; "predicted_density": the
        share of neurons computed (predicted active; 1.0 in dense mode); "actual_density": the
        share that fired (h != 0); "recall": fired and computed / fired; "precision": fired /
        computed. actual_density and recall are None in predictor mode unless the Llama was made
        with sparse_measure_truth=True (which also computes every neuron, to know). "ffn_density"
        is predicted_density over all those layers; "time_ms" splits the engine's time into
        attention, predictor, ffn and other (embeddings, output head). Works for every model: a
        dense SwiGLU model has no sparse layers, only the time split."""
        self._need_ctx()
        with self._lock:
            mode = {1: "dense", 2: "predictor", 3: "oracle"}.get(int(lib.pi_model_sparse_mode(self._mp)), "dense")
            layers = []
            computed = total = 0
            for il in range(int(lib.pi_model_n_layer(self._mp))):
                if not lib.pi_model_layer_is_sparse(self._mp, il):
                    continue
                c = self._ctx.sparse_layer_stats(il)
                n = c["n_tokens"] * c["n_ff"]
                known = c["n_true"] >= 0
                layers.append({
                    "layer": il,
                    "tokens": c["n_tokens"],
                    "predicted_density": c["n_computed"] / n if n else None,
                    "actual_density": c["n_true"] / n if n and known else None,
                    "recall": (c["n_fired"] / c["n_true"] if c["n_true"] else 1.0) if n and known else None,
                    "precision": (c["n_fired"] / c["n_computed"] if c["n_computed"] else 1.0) if n else None,
                })
                computed += c["n_computed"]
                total += n
            out = {
                "mode": mode,
                "threshold": float(lib.pi_model_sparse_threshold(self._mp)),
                "layers": layers,
                "ffn_density": computed / total if total else None,
                "time_ms": self._ctx.stage_times(),
            }
            if reset:
                self._ctx.reset_sparse_stats()
            return out

    def n_ctx(self) -> int:
        return self._n_ctx

    def n_embd(self) -> int:
        return self._n_embd

    def n_vocab(self) -> int:
        return self._n_vocab

    def token_bos(self) -> int:
        return self._token_bos

    def token_eos(self) -> int:
        return self._token_eos

    def token_nl(self) -> int:
        return int(lib.pi_token_nl(self._mp))

    def pooling_type(self) -> int:
        return self._pooling()

    @property
    def tensors(self):
        """The model file's tensor table (name, type, shape, offset, size per tensor)."""
        self._need_model()
        return self._model.tensors

    @property
    def n_tokens(self) -> int:
        return len(self._tokens)

    @property
    def input_ids(self) -> np.ndarray:
        return np.array(self._tokens, dtype=np.intc)

    @property
    def scores(self) -> Optional[np.ndarray]:
        return self._scores

    @property
    def eval_tokens(self) -> List[int]:
        return list(self._tokens)

    @property
    def eval_logits(self) -> List[List[float]]:
        if self._scores is None:
            return []
        return self._scores[: len(self._tokens)].tolist()

    def is_eog(self, token: int) -> bool:
        r = self._eog_cache.get(token)
        if r is None:
            r = self._eog_cache[token] = bool(lib.pi_token_is_eog(self._mp, token))
        return r

    def token_piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token as they appear inside a text (cached per id)."""
        if special:
            from ._tokenizer import token_to_piece

            return token_to_piece(self._model, token, special=True)
        b = self._piece_cache.get(token)
        if b is None:
            from ._tokenizer import token_to_piece

            b = self._piece_cache[token] = token_to_piece(self._model, token, special=False)
        return b

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> List[int]:
        """bytes -> token ids. add_bos adds the vocabulary's BOS (when it has one and wants it)."""
        self._need_model()
        if isinstance(text, str):
            text = text.encode("utf-8")
        from ._tokenizer import tokenize

        return tokenize(self._model, text, add_special=add_bos, parse_special=special)

    def detokenize(self, tokens: List[int], prev_tokens: Optional[List[int]] = None, special: bool = False) -> bytes:
        """token ids -> bytes. A leading BOS is dropped (with special=False), as in llama-cpp-python."""
        self._need_model()
        from ._tokenizer import detokenize

        return detokenize(self._model, list(tokens), remove_special=not special, unparse_special=special)

    # ------------------------------------------------------------------ the KV cache
    def reset(self) -> None:
        """Forgets the evaluated tokens (the next call evaluates its prompt from scratch)."""
        with self._lock:
            self._tokens = []
            self._logits_ready = False
            if self._ctx is not None:
                check(lib.pi_kv_truncate(self._cp, 0), "kv_truncate")

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluates tokens after the ones already in the cache (n_batch at a time)."""
        with self._lock:
            self._need_ctx()
            self._eval(tokens)

    def _eval(self, tokens: Sequence[int]) -> None:
        tokens = list(tokens)
        if len(self._tokens) + len(tokens) > self._n_ctx:
            raise ContextFullError(f"Requested tokens ({len(self._tokens) + len(tokens)}) exceed context window of {self._n_ctx}")
        n_vocab = self._n_vocab
        for start in range(0, len(tokens), self._n_batch):
            batch = tokens[start:start + self._n_batch]
            n = len(batch)
            self._tok_buf[0:n] = batch
            self._logits_ready = False
            check(lib.pi_decode(self._cp, self._tok_buf, ffi.NULL, n, ffi.NULL), "decode")
            if self.logits_all:
                if self._scores is None:
                    self._scores = np.zeros((self._n_ctx, n_vocab), dtype=np.float32)
                base = len(self._tokens)
                for i in range(n):
                    row = lib.pi_get_logits(self._cp, i)
                    self._scores[base + i] = np.frombuffer(ffi.buffer(row, 4 * n_vocab), dtype=np.float32)
            self._tokens.extend(batch)
            self._logits_ready = True

    def _truncate(self, n_keep: int) -> None:
        if n_keep < len(self._tokens):
            check(lib.pi_kv_truncate(self._cp, n_keep), "kv_truncate")
            del self._tokens[n_keep:]
            self._logits_ready = False

    def _prepare_prompt(self, prompt_tokens: List[int]) -> None:
        """Makes the cache hold prompt_tokens with the last one's logits ready, evaluating only what
        differs from the cache (the longest common prefix is kept)."""
        n_keep = longest_token_prefix(self._tokens, prompt_tokens)
        if n_keep == len(prompt_tokens) and n_keep == len(self._tokens) and self._logits_ready:
            n_keep_eval = n_keep  # everything cached, logits live: nothing to do
        else:
            # the last prompt token is always evaluated again so that its logits come fresh
            n_keep_eval = min(n_keep, len(prompt_tokens) - 1)
            self._truncate(n_keep_eval)
            self._eval(prompt_tokens[n_keep_eval:])
        if self.verbose and n_keep_eval:
            logger.debug("Llama.generate: %d prefix-match hit, remaining %d prompt tokens to eval",
                         n_keep_eval, len(prompt_tokens) - n_keep_eval)

    def _logits_ptr(self):
        return lib.pi_get_logits(self._cp, -1)

    def _logits_array(self) -> np.ndarray:
        """A copy of the last logits row."""
        return np.frombuffer(ffi.buffer(self._logits_ptr(), 4 * self._n_vocab), dtype=np.float32).copy()

    def generate(self, tokens: Sequence[int], top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
                 typical_p: float = 1.0, temp: float = 0.80, repeat_penalty: float = 1.0, reset: bool = True,
                 frequency_penalty: float = 0.0, presence_penalty: float = 0.0, tfs_z: float = 1.0,
                 mirostat_mode: int = 0, mirostat_tau: float = 5.0, mirostat_eta: float = 0.1,
                 penalize_nl: bool = True, logits_processor: Optional[LogitsProcessorList] = None,
                 stopping_criteria: Optional[StoppingCriteriaList] = None, grammar=None,
                 seed: Optional[int] = None):
        """Low-level loop: evaluates tokens (keeping the cached common prefix) and yields sampled ids
        forever; the caller stops it (for example on ``token_eos()``). Holds the instance lock while
        it runs."""
        from .sampling import Sampler, SamplingParams

        with self._lock:
            self._need_ctx()
            sampler = Sampler(self._n_vocab, SamplingParams(
                temperature=temp, top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p,
                repeat_penalty=repeat_penalty, frequency_penalty=frequency_penalty,
                presence_penalty=presence_penalty, penalty_last_n=self.last_n_tokens_size,
                mirostat_mode=mirostat_mode, mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta,
                seed=seed if seed is not None else self._rng.getrandbits(32)))
            tokens = [int(t) for t in tokens]
            if reset:
                self._prepare_prompt(tokens)
            else:
                self._eval(tokens)
            sampler.accept_many(self._tokens[-self.last_n_tokens_size:] if self.last_n_tokens_size > 0 else [])
            state = grammar.start(self) if grammar is not None else None
            try:
                while True:
                    ptr = self._logits_ptr()
                    raw = None
                    if logits_processor is not None or stopping_criteria is not None:
                        raw = np.frombuffer(ffi.buffer(ptr, 4 * self._n_vocab), dtype=np.float32)
                    if logits_processor is not None:
                        scores = np.ascontiguousarray(logits_processor(self.input_ids, raw.copy()), dtype=np.float32)
                        ptr = ffi.cast("float *", ffi.from_buffer(scores))
                    token = state.sample(sampler, ptr) if state is not None else sampler.sample_ptr(ptr)
                    if stopping_criteria is not None and stopping_criteria(self.input_ids, raw):
                        return
                    sampler.accept(token)
                    if state is not None:
                        state.accept(token)
                    sent = yield token
                    self._eval([token] + [int(t) for t in (sent or [])])
            finally:
                sampler.close()

    # ------------------------------------------------------------------ state
    def save_state(self) -> LlamaState:
        with self._lock:
            self._need_ctx()
            size = int(lib.pi_state_size(self._cp))
            buf = ffi.new("uint8_t[]", max(size, 1))
            n_out = ffi.new("size_t *")
            check(lib.pi_state_save(self._cp, buf, size, n_out), "save_state")
            data = bytes(ffi.buffer(buf, n_out[0]))
            scores = None if self._scores is None else self._scores[: len(self._tokens)].copy()
            return LlamaState(np.array(self._tokens, dtype=np.intc), scores, len(self._tokens), data,
                              len(data), self._seed)

    def load_state(self, state: LlamaState) -> None:
        with self._lock:
            self._need_ctx()
            data = state.llama_state
            try:
                check(lib.pi_state_load(self._cp, ffi.from_buffer(data), len(data)), "load_state")
            except Exception as e:
                raise RuntimeError(f"Failed to set llama state data: {e}") from e
            self._tokens = [int(t) for t in state.input_ids[: state.n_tokens]]
            if state.scores is not None:
                if self._scores is None:
                    self._scores = np.zeros((self._n_ctx, self._n_vocab), dtype=np.float32)
                self._scores[: len(state.scores)] = state.scores
            self._logits_ready = len(self._tokens) > 0
            self._seed = state.seed

    def set_seed(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)

    def set_cache(self, cache) -> None:
        """Accepted for compatibility; the KV prefix reuse of every call does the same job."""
        self.cache = cache

    # ------------------------------------------------------------------ completion
    def create_completion(self, prompt: Union[str, List[int]], suffix: Optional[str] = None, max_tokens: Optional[int] = 16,
                          temperature: float = 0.8, top_p: float = 0.95, min_p: float = 0.05, typical_p: float = 1.0,
                          logprobs: Optional[int] = None, echo: bool = False,
                          stop: Optional[Union[str, List[str]]] = [], frequency_penalty: float = 0.0,
                          presence_penalty: float = 0.0, repeat_penalty: float = 1.0, top_k: int = 40,
                          stream: bool = False, seed: Optional[int] = None, tfs_z: float = 1.0,
                          mirostat_mode: int = 0, mirostat_tau: float = 5.0, mirostat_eta: float = 0.1,
                          model: Optional[str] = None, stopping_criteria: Optional[StoppingCriteriaList] = None,
                          logits_processor: Optional[LogitsProcessorList] = None, grammar=None,
                          logit_bias: Optional[Dict[int, float]] = None, stream_options: Optional[Dict] = None,
                          **kwargs):
        """Generates text after prompt. Returns a ``text_completion`` dict, or with stream=True a
        generator of chunk dicts (the last has ``text == ""`` and the finish_reason)."""
        from . import _completion

        req = _completion.CompletionRequest(
            prompt=prompt, suffix=suffix, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
            min_p=min_p, typical_p=typical_p, logprobs=logprobs, echo=echo, stop=stop,
            frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
            repeat_penalty=repeat_penalty, top_k=top_k, seed=seed, mirostat_mode=mirostat_mode,
            mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta, model=model,
            stopping_criteria=stopping_criteria, logits_processor=logits_processor, grammar=grammar,
            logit_bias=logit_bias, include_usage=bool((stream_options or {}).get("include_usage")),
        )
        if stream:
            return _completion.locked_stream(self, _completion.completion_chunks(self, req))
        with self._lock:
            return _completion.collect_completion(self, _completion.completion_chunks(self, req), req)

    def __call__(self, prompt: Union[str, List[int]], *args, **kwargs):
        return self.create_completion(prompt, *args, **kwargs)

    def create_chat_completion(self, messages: List[Dict[str, Any]], **kwargs):
        """OpenAI-style chat. Returns a ``chat.completion`` dict or, with stream=True, a generator of
        ``chat.completion.chunk`` dicts (role delta first, empty delta with finish_reason last)."""
        from .chat_format import create_chat_completion

        return create_chat_completion(self, messages, **kwargs)

    def create_chat_completion_openai_v1(self, *args, **kwargs):
        try:
            from openai.types.chat import ChatCompletion, ChatCompletionChunk
        except ImportError as e:
            raise ImportError("create_chat_completion_openai_v1 needs the openai package: pip install openai") from e
        out = self.create_chat_completion(*args, **kwargs)
        if kwargs.get("stream"):
            return (ChatCompletionChunk(**chunk) for chunk in out)
        return ChatCompletion(**out)

    # ------------------------------------------------------------------ embeddings
    def _pooling(self) -> int:
        if self.pooling_type_ != LLAMA_POOLING_TYPE_UNSPECIFIED:
            return self.pooling_type_
        arch = self.metadata.get("general.architecture", "")
        v = self.metadata.get(f"{arch}.pooling_type")
        if v is not None:
            try:
                return int(v)
            except ValueError:
                pass
        return LLAMA_POOLING_TYPE_MEAN  # a generative model: mean over positions is the useful default

    def embed(self, input: Union[str, List[str]], normalize: bool = False, truncate: bool = True,
              return_count: bool = False):
        """Embedding vector(s) of input: one list of floats for a str, a list of them for a list.
        Pooling (mean, cls, last, or none for per-token vectors) follows pooling_type."""
        with self._lock:
            self._need_ctx()
            if not self.embedding:
                raise RuntimeError("Llama model must be created with embedding=True to call this method")
            from ._embedding import embed_texts

            out, count = embed_texts(self, input, normalize=normalize, truncate=truncate)
            return (out, count) if return_count else out

    def create_embedding(self, input: Union[str, List[str]], model: Optional[str] = None) -> Dict[str, Any]:
        inputs = [input] if isinstance(input, str) else list(input)
        vectors, count = self.embed(inputs, return_count=True)
        return {
            "object": "list",
            "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
            "model": model if model is not None else self.model_path,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }

    # ------------------------------------------------------------------ static helpers
    @staticmethod
    def logits_to_logprobs(logits, axis: int = -1) -> np.ndarray:
        return logits_to_logprobs(logits, axis=axis)

    @staticmethod
    def longest_token_prefix(a: Sequence[int], b: Sequence[int]) -> int:
        return longest_token_prefix(a, b)

    # ------------------------------------------------------------------ hub
    @classmethod
    def from_pretrained(cls, repo_id: str, filename: Optional[str], additional_files: Optional[List[str]] = None,
                        local_dir: Optional[Union[str, os.PathLike]] = None, local_dir_use_symlinks="auto",
                        cache_dir: Optional[Union[str, os.PathLike]] = None, **kwargs) -> "Llama":
        """Downloads (or finds in the Hugging Face cache) the GGUF file of repo_id matching the glob
        filename, then loads it with kwargs. ValueError when no file or several files match."""
        from ._hub import resolve_files

        paths = resolve_files(repo_id, filename, additional_files=additional_files, local_dir=local_dir,
                              cache_dir=cache_dir)
        return cls(model_path=str(paths[0]), **kwargs)
