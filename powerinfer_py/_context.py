"""Tier 1: ``Context``, one ``pi_context`` (KV cache, scratch, thread pool) over a loaded model.

    with Model(path) as m, Context(m, n_ctx=512, n_threads=2) as ctx:
        ctx.decode([1, 504, 3458])       # evaluates at positions kv_pos, kv_pos + 1, ...
        ctx.logits()                     # numpy copy of the last position's logits
        ctx.kv_truncate(1)               # forget positions >= 1 (prefix reuse)

The model must outlive the context. ``close()`` frees the context (idempotent, also on garbage
collection). A context is used by one thread at a time.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._closeable import Closeable
from ._lib import check, ffi, lib
from .errors import InvalidArgumentError

_KV_TYPES = {"f16": lib.PI_TYPE_F16, "f32": lib.PI_TYPE_F32}


class Context(Closeable):
    """A decoding context.

    Args:
        model: a :class:`~powerinfer_py._model.Model` (anything with ``.ptr``, a ``pi_model *``).
        n_ctx: context window in tokens; 0 = the model's training context.
        n_batch: the most tokens one :meth:`decode` call may take.
        n_threads: threads for single-token decode (0 = all cores).
        n_threads_batch: threads for prompt batches (0 = all cores).
        logits_all: keep the logits of every position of each batch (else only the last).
        embeddings: keep the final hidden states (after the output norm) too.
        kv_type: "f16" (default) or "f32".
    """

    def __init__(self, model, *, n_ctx: int = 512, n_batch: int = 512, n_threads: int = 0,
                 n_threads_batch: int = 0, logits_all: bool = False, embeddings: bool = False,
                 kv_type: str = "f16"):
        if kv_type not in _KV_TYPES:
            raise InvalidArgumentError(f"kv_type must be one of {sorted(_KV_TYPES)}, got {kv_type!r}")
        self._model = model  # kept alive while the context lives
        self.ptr = ffi.NULL
        p = ffi.new("pi_context_params *", lib.pi_context_default_params())
        p.n_ctx = int(n_ctx)
        p.n_batch = int(n_batch)
        p.n_threads = int(n_threads)
        p.n_threads_batch = int(n_threads_batch)
        p.logits_all = bool(logits_all)
        p.embeddings = bool(embeddings)
        p.kv_type = _KV_TYPES[kv_type]
        out = ffi.new("pi_context **")
        check(lib.pi_context_new(model.ptr, p, out))
        self.ptr = out[0]
        self.logits_all = bool(logits_all)
        self.embeddings = bool(embeddings)
        self.n_vocab = int(lib.pi_model_n_vocab(model.ptr)) or None
        self.n_embd = int(lib.pi_model_n_embd(model.ptr))

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        if getattr(self, "ptr", ffi.NULL) != ffi.NULL:
            lib.pi_context_free(self.ptr)
            self.ptr = ffi.NULL

    def _live(self):
        if self.ptr == ffi.NULL:
            raise InvalidArgumentError("the context is closed")
        return self.ptr

    # ------------------------------------------------------------------ facts
    @property
    def n_ctx(self) -> int:
        return int(lib.pi_context_n_ctx(self._live()))

    @property
    def n_batch(self) -> int:
        return int(lib.pi_context_n_batch(self._live()))

    @property
    def kv_pos(self) -> int:
        """Number of positions held in the KV cache."""
        return int(lib.pi_kv_pos(self._live()))

    @property
    def n_outputs(self) -> int:
        return int(lib.pi_n_outputs(self._live()))

    def set_threads(self, n_threads: int, n_threads_batch: int) -> None:
        check(lib.pi_context_set_threads(self._live(), int(n_threads), int(n_threads_batch)))

    # ------------------------------------------------------------------ decoding
    def decode(self, tokens: Sequence[int], pos: Optional[int] = None,
               logits: Optional[Sequence[bool]] = None) -> None:
        """Evaluates tokens at positions pos, pos + 1, ... (pos None = kv_pos).

        logits: one flag per token saying whose logits to keep (None = the last one, or all with
        logits_all). A batch that starts before kv_pos replaces the positions from pos on. Raises
        ContextFullError (a ValueError) when the tokens do not fit, with nothing changed.
        """
        ptr = self._live()
        n = len(tokens)
        toks = ffi.new("pi_token[]", [int(t) for t in tokens]) if n else ffi.new("pi_token[]", 1)
        cpos = ffi.NULL
        if pos is not None:
            cpos = ffi.new("pi_pos[]", [int(pos) + i for i in range(max(n, 1))])
        want = ffi.NULL
        if logits is not None:
            if len(logits) != n:
                raise InvalidArgumentError(f"logits has {len(logits)} flags for {n} tokens")
            want = ffi.new("int8_t[]", [1 if f else 0 for f in logits])
        check(lib.pi_decode(ptr, toks, cpos, n, want))

    def logits(self, i: int = -1) -> np.ndarray:
        """A copy of the logits of the i-th kept output of the last decode (-1 = the last one)."""
        row = lib.pi_get_logits(self._live(), int(i))
        if row == ffi.NULL:
            raise InvalidArgumentError(f"no output {i}: the last decode kept {self.n_outputs}")
        return np.frombuffer(ffi.buffer(row, self._n_vocab() * 4), dtype=np.float32).copy()

    def all_logits(self) -> np.ndarray:
        """Logits of every kept output of the last decode, shape (n_outputs, n_vocab), a copy."""
        n = self.n_outputs
        if n == 0:
            return np.zeros((0, self._n_vocab()), dtype=np.float32)
        first = lib.pi_get_logits(self._live(), 0)
        return np.frombuffer(ffi.buffer(first, n * self._n_vocab() * 4), dtype=np.float32).reshape(n, -1).copy()

    def embedding(self, i: int = -1) -> np.ndarray:
        """Final hidden state (n_embd floats) of the i-th kept output; needs embeddings=True."""
        row = lib.pi_get_embeddings(self._live(), int(i))
        if row == ffi.NULL:
            raise InvalidArgumentError(f"no embedding {i} (embeddings={self.embeddings}, outputs={self.n_outputs})")
        return np.frombuffer(ffi.buffer(row, self.n_embd * 4), dtype=np.float32).copy()

    def _n_vocab(self) -> int:
        if not self.n_vocab:
            # A model without a tokenizer: a logits row is as long as token_embd has rows.
            info = ffi.new("pi_tensor_info *")
            for i in range(int(lib.pi_model_tensor_count(self._model.ptr))):
                check(lib.pi_model_tensor_info(self._model.ptr, i, info))
                if ffi.string(info.name) == b"token_embd.weight":
                    self.n_vocab = int(info.ne[1])
                    break
        if not self.n_vocab:
            raise InvalidArgumentError("the model does not report its vocabulary size")
        return self.n_vocab

    # ------------------------------------------------------------------ KV cache and state
    def kv_truncate(self, pos: int) -> None:
        """Forgets every position >= pos."""
        check(lib.pi_kv_truncate(self._live(), int(pos)))

    def save_state(self) -> bytes:
        ptr = self._live()
        size = int(lib.pi_state_size(ptr))
        buf = ffi.new("uint8_t[]", max(size, 1))
        n_out = ffi.new("size_t *")
        check(lib.pi_state_save(ptr, buf, size, n_out))
        return bytes(ffi.buffer(buf, int(n_out[0])))

    def load_state(self, data: bytes) -> None:
        check(lib.pi_state_load(self._live(), ffi.from_buffer(data), len(data)))

    # ------------------------------------------------------------------ timings
    def timings(self) -> dict:
        t = ffi.new("pi_timings *")
        check(lib.pi_context_timings(self._live(), t))
        return {
            "t_load_ms": t.t_load_ms,
            "t_prompt_ms": t.t_prompt_ms,
            "t_decode_ms": t.t_decode_ms,
            "n_prompt_tokens": t.n_prompt_tokens,
            "n_decode_tokens": t.n_decode_tokens,
        }

    def reset_timings(self) -> None:
        lib.pi_context_reset_timings(self._live())

    # ------------------------------------------------------------------ sparse FFN statistics
    def sparse_stats_config(self, measure_truth: bool = False, count_neurons: bool = False) -> None:
        """What the sparse statistics measure (see pi_context_sparse_stats); resets them."""
        check(lib.pi_context_sparse_stats_config(self._live(), bool(measure_truth), bool(count_neurons)))

    def sparse_layer_stats(self, layer: int) -> dict:
        """Raw counts of one layer: n_tokens, n_ff, n_computed, n_fired, n_true (-1: not measured)."""
        st = ffi.new("pi_sparse_layer_stats *")
        check(lib.pi_context_sparse_stats(self._live(), int(layer), st))
        return {"n_tokens": st.n_tokens, "n_ff": st.n_ff, "n_computed": st.n_computed,
                "n_fired": st.n_fired, "n_true": st.n_true}

    def neuron_counts(self, layer: int) -> np.ndarray:
        """How many tokens each neuron of layer fired for (needs count_neurons=True)."""
        n_ff = int(lib.pi_model_n_ff(self._model.ptr))
        out = np.zeros(n_ff, dtype=np.int64)
        check(lib.pi_context_neuron_counts(self._live(), int(layer), ffi.cast("int64_t *", ffi.from_buffer(out)), n_ff))
        return out

    def stage_times(self) -> dict:
        """Milliseconds spent per stage of the forward pass since the last reset."""
        t = ffi.new("pi_stage_times *")
        check(lib.pi_context_stage_times(self._live(), t))
        return {"attention": t.t_attention_ms, "predictor": t.t_predictor_ms, "ffn": t.t_ffn_ms,
                "other": t.t_other_ms}

    def reset_sparse_stats(self) -> None:
        lib.pi_context_reset_sparse_stats(self._live())

    def record_ffn(self, x: Optional[np.ndarray], fired: Optional[np.ndarray]) -> None:
        """Records each evaluated token's predictor inputs into x (float32 [tokens, n_layer, n_embd])
        and which neurons fired into fired (uint8 [tokens, n_layer, n_ff]) until they are full
        (pi_context_record_ffn). The arrays must stay alive while recording; None stops it."""
        if x is None or fired is None:
            check(lib.pi_context_record_ffn(self._live(), ffi.NULL, ffi.NULL, 0))
            self._recording = None
            return
        n_layer = int(lib.pi_model_n_layer(self._model.ptr))
        n_ff = int(lib.pi_model_n_ff(self._model.ptr))
        if x.dtype != np.float32 or fired.dtype != np.uint8 or not (x.flags.c_contiguous and fired.flags.c_contiguous):
            raise InvalidArgumentError("record_ffn: x must be C-contiguous float32 and fired C-contiguous uint8")
        if x.shape[1:] != (n_layer, self.n_embd) or fired.shape[1:] != (n_layer, n_ff) or x.shape[0] != fired.shape[0]:
            raise InvalidArgumentError(f"record_ffn: expected x [T, {n_layer}, {self.n_embd}] and fired "
                                       f"[T, {n_layer}, {n_ff}], got {x.shape} and {fired.shape}")
        self._recording = (x, fired)  # keeps them alive
        check(lib.pi_context_record_ffn(self._live(), ffi.cast("float *", ffi.from_buffer(x)),
                                        ffi.cast("uint8_t *", ffi.from_buffer(fired)), x.shape[0]))

    def n_recorded(self) -> int:
        return int(lib.pi_context_n_recorded(self._live()))
