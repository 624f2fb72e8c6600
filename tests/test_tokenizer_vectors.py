"""llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf with .inp/.out, from the
llama-cpp-python 0.3.36 sdist): every case must give exactly the expected ids with
add_bos=False, special=False, and detokenizing gives the input back."""
from __future__ import annotations

import pytest

from tokenizer_helpers import REQUIRED_VOCABS, WELCOME_VOCABS, open_vocab, read_vectors, vocab_file


def _open(vocab_dir, name):
    path = vocab_file(vocab_dir, name)
    if not path.is_file():
        pytest.fail(f"{path} is missing from the vocabulary test assets")
    try:
        return path, open_vocab(path)
    except Exception as e:  # noqa: BLE001 - the welcome ones may use a tokenizer we lack
        if name in WELCOME_VOCABS:
            pytest.skip(f"{name}: {e}")
        raise


@pytest.mark.parametrize("name", REQUIRED_VOCABS + WELCOME_VOCABS)
def test_vectors_exact(vocab_dir, name):
    from powerinfer_py._tokenizer import tokenize

    path, model = _open(vocab_dir, name)
    cases = read_vectors(path)
    assert len(cases) >= 40
    failures = []
    for text, expected in cases:
        got = tokenize(model, text, add_bos=False, special=False)
        if got != expected:
            failures.append((text, expected, got))
    assert not failures, f"{name}: {len(failures)}/{len(cases)} cases differ, first: {failures[0]!r}"


@pytest.mark.parametrize("name", REQUIRED_VOCABS + ["gemma-4"])
def test_vectors_round_trip(vocab_dir, name):
    """detokenize(tokenize(x)) == x for every input the vocabulary can represent: all of them for
    these files (each has byte-level or byte-fallback tokens). bert-bge is left out: WordPiece
    lowercases, strips accents and drops whitespace, so its text cannot come back."""
    from powerinfer_py._tokenizer import detokenize_text, tokenize

    path, model = _open(vocab_dir, name)
    for text, _ in read_vectors(path):
        ids = tokenize(model, text, add_bos=False, special=False)
        assert detokenize_text(model, ids, remove_special=True, unparse_special=False) == text, (name, text)


def test_every_vector_file_is_listed(vocab_dir):
    """A vocabulary that gains vectors in a new sdist must be added to the lists above."""
    names = sorted(p.name[len("ggml-vocab-"):-len(".gguf.inp")] for p in vocab_dir.glob("ggml-vocab-*.gguf.inp"))
    assert names, f"no .inp files in {vocab_dir}"
    assert set(names) <= set(REQUIRED_VOCABS + WELCOME_VOCABS), names
    assert set(REQUIRED_VOCABS) <= set(names)
