"""Property test against the peer: thousands of random strings (mixed scripts, emoji, digits,
whitespace runs, special-token look-alikes, the odd invalid byte) tokenized by us and by
llama-cpp-python 0.3.36 with several vocabularies must give the same ids. The peer runs in its own
interpreter; without it the test is skipped."""
from __future__ import annotations

import random

import pytest

from tokenizer_helpers import open_vocab, peer_python, peer_tokenize, vocab_file

pytestmark = pytest.mark.skipif(peer_python() is None, reason="peer llama-cpp-python 0.3.36 venv not installed")

N_STRINGS = 2000

POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789٠١٢٣٤५६७½²",
    " \t\n\r\u00a0\u3000\u2009\u000b\u000c\u0085",
    "'\"!?.,;:-_()[]{}<>|/\\@#$%^&*+=~`",
    "äöüßéèêçñøåłžšąęıİ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяΑΒΓαβγδ",
    "日本語中文字漢字ひらがなカタカナ한국어",
    "العربيةעבריתहिन्दीไทย",
    "\u0301\u0308\u0303\u200d\ufe0f\u200b",
    "\U0001f600\U0001f999\U0001f44d\U0001f3fd\U0001f468\U0001f469\U0001f525\u2764",
]
PIECES = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "</s>", "<s>", "<|eot_id|>", "<unk>", "'s", "'LL", "'re",
          "    ", "\n\n", " \n ", "1234567", "http://x.y/z?q=1", "<|im_", "|>", "<0x41>"]


def random_strings(seed: int, n: int):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randrange(0, 12)):
            if rng.random() < 0.15:
                parts.append(rng.choice(PIECES))
            else:
                pool = rng.choice(POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 6))))
        b = "".join(parts).encode("utf-8")
        if rng.random() < 0.03:  # an invalid byte now and then
            k = rng.randrange(len(b) + 1)
            b = b[:k] + bytes([rng.choice([0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xFF])]) + b[k:]
        out.append(b)
    return out


VOCABS = ["llama-spm", "llama-bpe", "qwen2", "qwen35", "gpt-2", "phi-3", "deepseek-llm", "deepseek-coder",
          "falcon", "starcoder", "command-r", "mpt", "bert-bge", "gemma-4"]


def _compare(path, seed, special):
    from powerinfer_py._tokenizer import tokenize

    texts = random_strings(seed, N_STRINGS)
    model = open_vocab(path)
    theirs = peer_tokenize(path, texts, add_bos=False, special=special)
    bad = [(t, o, tokenize(model, t, add_bos=False, special=special)) for t, o in zip(texts, theirs)]
    bad = [x for x in bad if x[1] != x[2]]
    assert not bad, f"{path.name}: {len(bad)}/{len(texts)} differ, e.g. {bad[:3]!r}"


@pytest.mark.parametrize("name", VOCABS)
def test_random_strings_match_peer(vocab_dir, name):
    _compare(vocab_file(vocab_dir, name), seed=sum(name.encode()) + 7, special=False)


@pytest.mark.parametrize("special", [False, True])
def test_random_strings_match_peer_smollm2(smollm2_path, special):
    _compare(smollm2_path, seed=11 + special, special=special)
