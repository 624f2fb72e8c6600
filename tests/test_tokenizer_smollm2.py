"""SmolLM2-135M-Instruct's vocabulary on a ~100 kB mixed text (code, many scripts, emoji, runs of
spaces and newlines, special-token look-alikes): our ids equal llama.cpp's, which
tools/make_expected_tokens.py produced once with llama-cpp-python 0.3.36."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tokenizer_helpers import open_vocab

DATA = Path(__file__).resolve().parent / "data"


def _expected():
    out = {}
    for line in gzip.decompress((DATA / "smollm2_mixed.ids.gz").read_bytes()).decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        head, ids = line.split(":", 1)
        flags = dict(kv.split("=") for kv in head.split())
        out[(flags["add_bos"] == "1", flags["special"] == "1")] = [int(x) for x in ids.split()]
    return out


def test_smollm2_mixed_text_matches_llama_cpp(smollm2_path):
    from powerinfer_py._tokenizer import detokenize, tokenize

    text = (DATA / "smollm2_mixed.txt").read_bytes()
    assert len(text) >= 100_000
    m = open_vocab(smollm2_path)
    expected = _expected()
    assert expected, "no expected ids"
    for (add_bos, special), ids in expected.items():
        got = tokenize(m, text, add_bos=add_bos, special=special)
        if got != ids:
            i = next((k for k, (a, b) in enumerate(zip(got, ids)) if a != b), min(len(got), len(ids)))
            pytest.fail(f"add_bos={add_bos} special={special}: first difference at token {i}: "
                        f"ours {got[max(0, i - 3):i + 5]} llama.cpp {ids[max(0, i - 3):i + 5]}")
        assert detokenize(m, got, special=special) == text
