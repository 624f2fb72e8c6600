"""Tokenizer functions over a model handle (the C library's SentencePiece and BPE tokenizers).

Every function takes ``model``: a :class:`powerinfer_py._model.Model` or its cffi ``pi_model *``.
Signatures and results follow llama-cpp-python's ``Llama.tokenize``/``Llama.detokenize``: bytes
in, ids out, and bytes back.

:class:`IncrementalDetokenizer` turns a stream of ids into text without ever handing out part of
a UTF-8 character, for streaming generators.
"""
from __future__ import annotations

import weakref
from typing import Dict, Iterable, List, Optional, Tuple, Union

from ._lib import check, ffi, lib

__all__ = [
    "tokenize",
    "detokenize",
    "detokenize_text",
    "token_to_piece",
    "IncrementalDetokenizer",
    "utf8_complete_prefix",
    "eog_ids",
    "special_ids",
]


# Output buffers need no zeroing: the library writes every element it reports.
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def _ptr(model):
    p = getattr(model, "ptr", model)
    if p is None or p == ffi.NULL:
        raise ValueError("model is closed or NULL")
    return p


def tokenize(
    model,
    text: bytes,
    add_bos: bool = True,
    special: bool = False,
    *,
    add_special: Optional[bool] = None,
    parse_special: Optional[bool] = None,
) -> List[int]:
    """Token ids of ``text`` (bytes; a str is encoded as UTF-8).

    add_bos: add BOS/EOS as the vocabulary's flags say (llama.cpp's add_special).
    special: turn control-token texts such as ``<|im_end|>`` into their ids (parse_special).
    """
    p = _ptr(model)
    if isinstance(text, str):
        text = text.encode("utf-8")
    text = bytes(text)
    add = bool(add_bos if add_special is None else add_special)
    parse = bool(special if parse_special is None else parse_special)
    n_out = ffi.new("int32_t *")
    cap = len(text) + 8  # at most one token per byte, plus BOS/EOS
    buf = _new_uncleared("pi_token[]", cap)
    status = lib.pi_tokenize(p, text, len(text), buf, cap, add, parse, n_out)
    if status == lib.PI_ERR_BUFFER_TOO_SMALL:
        cap = n_out[0]
        buf = _new_uncleared("pi_token[]", cap)
        status = lib.pi_tokenize(p, text, len(text), buf, cap, add, parse, n_out)
    check(status, "tokenize")
    return ffi.unpack(buf, n_out[0])  # a list of ints


# Piece bytes per model object and special flag: pieces never change while a model lives, and the
# per-token C call dominates long detokenizations otherwise. Keyed weakly by the Model object (an
# address could be reused by the next model); a bare cffi pointer gets a cache for one call only.
_piece_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _pieces(model, special: bool) -> Dict[int, bytes]:
    if getattr(model, "ptr", None) is None:
        return {}
    try:
        per_model = _piece_cache.setdefault(model, {})
    except TypeError:  # not weak-referenceable
        return {}
    return per_model.setdefault(bool(special), {})


def token_to_piece(model, token: int, special: bool = False) -> bytes:
    """The bytes one token stands for. Control tokens give b"" unless special."""
    p = _ptr(model)
    n_out = ffi.new("int32_t *")
    buf = ffi.new("char[]", 64)
    status = lib.pi_token_to_piece(p, int(token), buf, 64, bool(special), n_out)
    if status == lib.PI_ERR_BUFFER_TOO_SMALL:
        buf = ffi.new("char[]", n_out[0])
        status = lib.pi_token_to_piece(p, int(token), buf, n_out[0], bool(special), n_out)
    check(status, "token_to_piece")
    return ffi.unpack(buf, n_out[0])


def _piece(p, cache: Dict[int, bytes], token: int, special: bool) -> bytes:
    b = cache.get(token)
    if b is None:
        b = cache[token] = token_to_piece(p, token, special)
    return b


def detokenize(
    model,
    tokens: Iterable[int],
    special: bool = False,
    *,
    remove_special: Optional[bool] = None,
    unparse_special: Optional[bool] = None,
) -> bytes:
    """Bytes of a token sequence, as llama-cpp-python's ``Llama.detokenize`` gives them.

    The pieces are joined; when the first token is BOS and the text starts with a space (the
    SentencePiece space prefix), that one space is dropped. special (alias unparse_special) renders
    control tokens as their text. remove_special is accepted for callers written against the C
    call's names; the BOS rule above is what it means here.
    """
    p = _ptr(model)
    if unparse_special is not None:
        special = unparse_special
    toks = [int(t) for t in tokens]
    cache = _pieces(model, special)
    out = b"".join(_piece(p, cache, t, special) for t in toks)
    if toks and toks[0] == lib.pi_token_bos(p) and out[:1] == b" ":
        out = out[1:]
    return out


def detokenize_text(model, tokens: Iterable[int], remove_special: bool = True, unparse_special: bool = False) -> bytes:
    """The C library's pi_detokenize: the inverse of tokenize (the space prefix a SentencePiece
    tokenizer adds is removed; remove_special drops a leading BOS and trailing EOS that the
    vocabulary adds; unparse_special renders control tokens as text)."""
    p = _ptr(model)
    toks = [int(t) for t in tokens]
    arr = ffi.new("pi_token[]", toks) if toks else ffi.NULL
    n_out = ffi.new("int32_t *")
    cap = 16 * len(toks) + 16
    buf = ffi.new("char[]", cap)
    status = lib.pi_detokenize(p, arr, len(toks), buf, cap, bool(remove_special), bool(unparse_special), n_out)
    if status == lib.PI_ERR_BUFFER_TOO_SMALL:
        cap = n_out[0]
        buf = ffi.new("char[]", cap)
        status = lib.pi_detokenize(p, arr, len(toks), buf, cap, bool(remove_special), bool(unparse_special), n_out)
    check(status, "detokenize")
    return ffi.unpack(buf, n_out[0])


def eog_ids(model) -> frozenset:
    """Every id that ends generation: EOS, EOT and the vocabulary's chat end tokens."""
    p = _ptr(model)
    return frozenset(i for i in range(lib.pi_model_n_vocab(p)) if lib.pi_token_is_eog(p, i))


def special_ids(model) -> Dict[str, int]:
    """The vocabulary's special ids (-1 where it has none)."""
    p = _ptr(model)
    return {"bos": lib.pi_token_bos(p), "eos": lib.pi_token_eos(p), "eot": lib.pi_token_eot(p),
            "nl": lib.pi_token_nl(p), "pad": lib.pi_token_pad(p)}


def utf8_complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of data that does not end inside a UTF-8 character.

    Only a trailing lead byte still waiting for its continuation bytes is held back; bytes that
    can never become valid UTF-8 are let through (they cannot be completed by waiting).
    """
    n = len(data)
    for k in range(1, min(4, n) + 1):
        b = data[n - k]
        if 0x80 <= b <= 0xBF:  # continuation byte: keep looking for its lead
            continue
        need = 2 if 0xC0 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF7 else 1
        return n - k if need > k else n
    return n


class IncrementalDetokenizer:
    """Feeds token ids, hands back only whole UTF-8 characters.

    >>> d = IncrementalDetokenizer(model)
    >>> d.feed(ids_so_far)   # bytes that are complete
    >>> d.flush()            # whatever is left at the end (possibly an incomplete character)

    special renders control tokens as their text. strip_bos_space drops the space a SentencePiece
    vocabulary puts after a leading BOS, as detokenize does.
    """

    def __init__(self, model, special: bool = False, strip_bos_space: bool = True) -> None:
        self._p = _ptr(model)
        self._model = model  # keeps a Model object (and so the handle) alive
        self.special = bool(special)
        self._cache = _pieces(model, self.special)
        self._bos = lib.pi_token_bos(self._p)
        self._pending = b""
        self._first = True
        self._after_bos = False
        self._strip = bool(strip_bos_space)

    def feed(self, tokens: Union[int, Iterable[int]]) -> bytes:
        if isinstance(tokens, int):
            tokens = (tokens,)
        data = bytearray(self._pending)
        for t in tokens:
            t = int(t)
            piece = _piece(self._p, self._cache, t, self.special)
            if self._first:
                self._first = False
                self._after_bos = self._strip and t == self._bos
            if self._after_bos and piece:
                self._after_bos = False
                if not data and piece[:1] == b" ":
                    piece = piece[1:]
            data += piece
        cut = utf8_complete_prefix(bytes(data))
        self._pending = bytes(data[cut:])
        return bytes(data[:cut])

    def feed_text(self, tokens: Union[int, Iterable[int]]) -> str:
        return self.feed(tokens).decode("utf-8", errors="replace")

    def flush(self) -> bytes:
        out, self._pending = self._pending, b""
        return out

    def flush_text(self) -> str:
        return self.flush().decode("utf-8", errors="replace")

    @property
    def pending(self) -> bytes:
        """Bytes held back because they end inside a character."""
        return self._pending
