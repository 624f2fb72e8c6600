"""Tokenizer behaviour beyond the fixed vectors: special tokens, BOS/EOS flags, the
end-of-generation set, incremental detokenization, round trips, errors, vocab-only models.

Small vocabularies are written here (tests/gguf_builder.py) so that the expected ids follow
from the algorithm by hand; the real ones come from the asset fixtures."""
from __future__ import annotations

import pytest

from gguf_builder import ARRAY, BOOL, F32V, I32, STRING, U32, build
from tokenizer_helpers import open_vocab, vocab_file

from powerinfer_py._lib import ffi, lib
from powerinfer_py._tokenizer import (
    IncrementalDetokenizer,
    detokenize,
    detokenize_text,
    eog_ids,
    special_ids,
    token_to_piece,
    tokenize,
    utf8_complete_prefix,
)
from powerinfer_py.errors import PowerInferError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _write(tmp_path, name, kvs):
    p = tmp_path / name
    p.write_bytes(build([("general.architecture", STRING, "llama")] + kvs))
    return p


# ---------------------------------------------------------------------------- a tiny SentencePiece vocab
SPM_EXTRA = [("\u2581", -1.0), ("a", -2.0), ("b", -2.0), ("c", -2.0), ("ab", -3.0), ("bc", -1.5),
             ("\u2581a", -4.0), ("\u2581ab", -5.0)]


def _spm(tmp_path, extra_kvs=()):
    texts = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [t for t, _ in SPM_EXTRA] + ["<user>"]
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [s for _, s in SPM_EXTRA] + [0.0]
    types = [UNKNOWN, CONTROL, CONTROL] + [BYTE] * 256 + [NORMAL] * len(SPM_EXTRA) + [USER_DEFINED]
    kvs = [("tokenizer.ggml.model", STRING, "llama"),
           ("tokenizer.ggml.tokens", ARRAY, (STRING, texts)),
           ("tokenizer.ggml.scores", ARRAY, (F32V, scores)),
           ("tokenizer.ggml.token_type", ARRAY, (I32, types))] + list(extra_kvs)
    m = open_vocab(_write(tmp_path, "spm.gguf", kvs))
    ids = {t: i for i, t in enumerate(texts)}
    return m, ids


def test_spm_merges_by_score_not_length(tmp_path):
    m, ids = _spm(tmp_path)
    # "\u2581abc": bc (-1.5) merges first, then \u2581a (-4); a longest-match tokenizer would give \u2581ab + c.
    assert tokenize(m, b"abc", add_bos=False) == [ids["\u2581a"], ids["bc"]]
    assert tokenize(m, b"abc", add_bos=True) == [ids["<s>"], ids["\u2581a"], ids["bc"]]
    assert lib.pi_vocab_add_bos(m.ptr) and not lib.pi_vocab_add_eos(m.ptr)
    assert ffi.string(lib.pi_vocab_type(m.ptr)) == b"spm"


def test_spm_byte_fallback_and_round_trip(tmp_path):
    m, ids = _spm(tmp_path)
    got = tokenize(m, "é".encode(), add_bos=False)
    assert got == [ids["\u2581"], ids["<0xC3>"], ids["<0xA9>"]]
    assert detokenize_text(m, got) == "é".encode()
    # llama-cpp-python's rule: the space after a leading BOS is dropped.
    assert detokenize(m, tokenize(m, b"ab c", add_bos=True)) == b"ab c"


def test_spm_special_tokens(tmp_path):
    m, ids = _spm(tmp_path)
    # Control texts become ids only with special=True; a run after a special token gets the space prefix.
    assert tokenize(m, b"a<s>b", add_bos=False, special=True) == [ids["\u2581a"], ids["<s>"], ids["\u2581"], ids["b"]]
    plain = tokenize(m, b"a<s>b", add_bos=False, special=False)
    assert ids["<s>"] not in plain and plain[0] == ids["\u2581a"]
    # User-defined tokens are split out even without special.
    assert tokenize(m, b"a<user>b", add_bos=False, special=False) == [ids["\u2581a"], ids["<user>"], ids["\u2581"], ids["b"]]
    # Control pieces are empty unless asked for.
    assert token_to_piece(m, ids["<s>"]) == b""
    assert token_to_piece(m, ids["<s>"], special=True) == b"<s>"
    assert token_to_piece(m, ids["<user>"]) == b"<user>"


def test_add_eos_flag_from_metadata(tmp_path):
    m, ids = _spm(tmp_path, [("tokenizer.ggml.add_eos_token", BOOL, True), ("tokenizer.ggml.add_bos_token", BOOL, False)])
    assert tokenize(m, b"ab", add_bos=True) == [ids["\u2581ab"], ids["</s>"]]
    assert lib.pi_vocab_add_eos(m.ptr) and not lib.pi_vocab_add_bos(m.ptr)
    # remove_special drops the EOS the vocabulary adds.
    assert detokenize_text(m, [ids["\u2581ab"], ids["</s>"]], remove_special=True) == b"ab"
    assert detokenize_text(m, [ids["\u2581ab"], ids["</s>"]], remove_special=False, unparse_special=True) == b"ab</s>"


# ---------------------------------------------------------------------------- a tiny byte-level BPE vocab
def _byte_chars():
    """GPT-2's byte -> character table, written out independently of the C code."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _bpe(tmp_path, pre="gpt-2", name="bpe.gguf"):
    chars = _byte_chars()
    texts = [chars[b] for b in range(256)] + ["ab", "abc", "\u0120a", "bc", "<|endoftext|>", "<|im_end|>"]
    types = [NORMAL] * 260 + [CONTROL, NORMAL]
    merges = ["a b", "ab c", "\u0120 a", "b c"]
    kvs = [("tokenizer.ggml.model", STRING, "gpt2"), ("tokenizer.ggml.pre", STRING, pre),
           ("tokenizer.ggml.tokens", ARRAY, (STRING, texts)),
           ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
           ("tokenizer.ggml.merges", ARRAY, (STRING, merges)),
           ("tokenizer.ggml.eos_token_id", U32, 260)]
    m = open_vocab(_write(tmp_path, name, kvs))
    return m, {t: i for i, t in enumerate(texts)}


def test_bpe_merges_by_rank(tmp_path):
    m, ids = _bpe(tmp_path)
    # "\u0120abc": a+b (rank 0) before \u0120+a (rank 2), then ab+c (rank 1); \u0120 stays alone.
    assert tokenize(m, b" abc", add_bos=False) == [ids["\u0120"], ids["abc"]]
    assert tokenize(m, b"bc", add_bos=False) == [ids["bc"]]
    assert ffi.string(lib.pi_vocab_type(m.ptr)) == b"bpe"
    assert not lib.pi_vocab_add_bos(m.ptr)
    for text in [b" abc", b"hello \xf0\x9f\xa6\x99 w\xc3\xb6rld\n\n  x", b"\xff\xfe"]:
        got = tokenize(m, text, add_bos=False)
        expect = text if text != b"\xff\xfe" else "\ufffd\ufffd".encode()  # invalid UTF-8 reads as U+FFFD
        assert detokenize(m, got) == expect


def test_bpe_end_of_generation_set(tmp_path):
    m, ids = _bpe(tmp_path)
    eot = ids["<|endoftext|>"]
    im_end = ids["<|im_end|>"]
    assert lib.pi_token_eos(m.ptr) == eot
    assert lib.pi_token_is_eog(m.ptr, eot)
    # <|im_end|> ends a turn by its text, and so is treated as a control token even though the file
    # calls it normal: without special it is not turned into its id.
    assert lib.pi_token_is_eog(m.ptr, im_end)
    assert lib.pi_token_attrs(m.ptr, im_end) & lib.PI_TOKEN_ATTR_CONTROL
    assert im_end not in tokenize(m, b"x<|im_end|>", add_bos=False, special=False)
    assert tokenize(m, b"x<|im_end|>", add_bos=False, special=True)[-1] == im_end
    assert not lib.pi_token_is_eog(m.ptr, ids["ab"])
    assert eog_ids(m) == {eot, im_end}
    assert special_ids(m)["eos"] == eot


def test_unknown_pre_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(PowerInferError, match="no-such-pre"):
        _bpe(tmp_path, pre="no-such-pre", name="badpre.gguf")


def test_model_without_vocabulary(tmp_path):
    m = open_vocab(_write(tmp_path, "novocab.gguf", []))
    assert lib.pi_model_n_vocab(m.ptr) == 0
    assert ffi.string(lib.pi_vocab_type(m.ptr)) == b"none"
    with pytest.raises(PowerInferError, match="no tokenizer"):
        tokenize(m, b"hello")


# ---------------------------------------------------------------------------- real vocabularies
def _id_of(m, text: str) -> int:
    n = lib.pi_model_n_vocab(m.ptr)
    want = text.encode()
    for i in range(n):
        p = lib.pi_token_text(m.ptr, i)
        if p != ffi.NULL and ffi.string(p) == want:
            return i
    raise KeyError(text)


def test_smollm2_vocab_only_and_chat_tokens(smollm2_path):
    m = open_vocab(smollm2_path)
    assert lib.pi_model_n_vocab(m.ptr) == 49152
    im_start, im_end = _id_of(m, "<|im_start|>"), _id_of(m, "<|im_end|>")
    text = b"<|im_start|>user\nHi there<|im_end|>\n"
    with_special = tokenize(m, text, add_bos=False, special=True)
    assert with_special[0] == im_start and im_end in with_special
    without = tokenize(m, text, add_bos=False, special=False)
    assert im_start not in without and im_end not in without
    assert detokenize(m, with_special, special=True) == text
    assert detokenize(m, without) == text
    assert lib.pi_token_is_eog(m.ptr, im_end)
    assert lib.pi_token_is_eog(m.ptr, lib.pi_token_eos(m.ptr))
    assert not lib.pi_token_is_eog(m.ptr, with_special[1])


def test_llama_bpe_specials(vocab_dir):
    m = open_vocab(vocab_file(vocab_dir, "llama-bpe"))
    assert lib.pi_vocab_add_bos(m.ptr)
    assert tokenize(m, b"Hello", add_bos=True)[0] == lib.pi_token_bos(m.ptr) == 128000
    eot = _id_of(m, "<|eot_id|>")
    assert lib.pi_token_eot(m.ptr) == eot
    assert lib.pi_token_is_eog(m.ptr, eot) and lib.pi_token_is_eog(m.ptr, 128001)
    assert tokenize(m, b"<|eot_id|>", add_bos=False, special=True) == [eot]
    assert tokenize(m, b"<|eot_id|>", add_bos=False, special=False) != [eot]
    assert lib.pi_token_nl(m.ptr) == tokenize(m, b"\n", add_bos=False)[0]


def test_phi3_special_tokens_eat_following_spaces(vocab_dir):
    m = open_vocab(vocab_file(vocab_dir, "phi-3"))
    end = _id_of(m, "<|end|>")
    a = tokenize(m, b"<|end|>   hi", add_bos=False, special=True)
    assert a[0] == end and a == tokenize(m, b"<|end|>hi", add_bos=False, special=True)


def test_llama_spm_round_trip_with_bos(vocab_dir):
    m = open_vocab(vocab_file(vocab_dir, "llama-spm"))
    for text in ["Hello world", " leading space", "emoji \U0001f999 and \u65e5\u672c\u8a9e", "tabs\tand\nlines  "]:
        b = text.encode()
        ids = tokenize(m, b, add_bos=True)
        assert ids[0] == 1
        assert detokenize(m, ids) == b
        assert detokenize_text(m, ids, remove_special=True) == b


# ---------------------------------------------------------------------------- incremental detokenizer
def test_utf8_complete_prefix():
    assert utf8_complete_prefix(b"") == 0
    assert utf8_complete_prefix(b"abc") == 3
    assert utf8_complete_prefix("é".encode()[:1]) == 0
    assert utf8_complete_prefix(b"a" + "\U0001f999".encode()[:3]) == 1
    assert utf8_complete_prefix(b"a" + "\U0001f999".encode()) == 5
    assert utf8_complete_prefix(b"a\xff") == 2  # never valid: not held back
    assert utf8_complete_prefix(b"\x80\x80") == 2


@pytest.mark.parametrize("name", ["gpt-2", "llama-spm", "qwen2"])
def test_incremental_detokenizer_never_splits_a_character(vocab_dir, name):
    m = open_vocab(vocab_file(vocab_dir, name))
    text = "h\u00e9llo \U0001f999\U0001f3fd w\u00f6rld \u65e5\u672c\u8a9e \u0928\u092e\u0938\u094d\u0924\u0947 \U0001f468\u200d\U0001f469\u200d\U0001f467".encode()
    ids = tokenize(m, text, add_bos=True)
    d = IncrementalDetokenizer(m)
    chunks = []
    held_back = 0
    for t in ids:
        c = d.feed(t)
        c.decode("utf-8")  # strict: a chunk never ends inside a character
        held_back += bool(d.pending)
        chunks.append(c)
    chunks.append(d.flush())
    assert b"".join(chunks) == text == detokenize(m, ids)
    if name != "qwen2":  # byte-level pieces of the emoji arrive one byte at a time
        assert held_back > 0
