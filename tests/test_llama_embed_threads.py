"""Embeddings (pooling, normalization, OpenAI shape) and one Llama shared by threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from powerinfer_py import Llama
from powerinfer_py.llama import LLAMA_POOLING_TYPE_CLS, LLAMA_POOLING_TYPE_LAST, LLAMA_POOLING_TYPE_NONE


@pytest.fixture(scope="module")
def emb(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=256, embedding=True, n_threads=1, verbose=False) as m:
        yield m


def test_embed_shapes_and_normalize(emb):
    v = emb.embed("Hello world")
    assert isinstance(v, list) and len(v) == 576 and isinstance(v[0], float)
    n = emb.embed("Hello world", normalize=True)
    assert np.linalg.norm(n) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(np.array(v) / np.linalg.norm(v), n, atol=1e-5)
    batch = emb.embed(["Hello world", "Goodbye moon"])
    assert len(batch) == 2
    assert np.allclose(batch[0], v, rtol=1e-4, atol=1e-5)  # batched equals one by one
    assert not np.allclose(batch[0], batch[1])


def test_create_embedding_shape(emb):
    out = emb.create_embedding(["a b c", "d"])
    assert out["object"] == "list" and [d["index"] for d in out["data"]] == [0, 1]
    assert out["data"][0]["object"] == "embedding" and len(out["data"][0]["embedding"]) == 576
    assert out["usage"]["prompt_tokens"] == out["usage"]["total_tokens"] > 0


def test_pooling_types(smollm2_path, emb):
    text = "The quick brown fox"
    mean = np.array(emb.embed(text))
    with Llama(str(smollm2_path), n_ctx=128, embedding=True, pooling_type=LLAMA_POOLING_TYPE_NONE,
               n_threads=1, verbose=False) as m:
        per_tok = np.array(m.embed(text))
    n_tok = len(emb.tokenize(text.encode()))
    assert per_tok.shape == (n_tok, 576)
    assert np.allclose(per_tok.mean(axis=0), mean, atol=1e-4)
    for pt, row in ((LLAMA_POOLING_TYPE_LAST, -1), (LLAMA_POOLING_TYPE_CLS, 0)):
        with Llama(str(smollm2_path), n_ctx=128, embedding=True, pooling_type=pt, n_threads=1, verbose=False) as m:
            assert np.allclose(m.embed(text), per_tok[row], atol=1e-4)


def test_embed_needs_embedding_true(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=64, n_threads=1, verbose=False) as m:
        with pytest.raises(RuntimeError, match="embedding=True"):
            m.embed("x")


def test_truncate(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=16, embedding=True, n_threads=1, verbose=False) as m:
        assert len(m.embed("word " * 40)) == 576
        with pytest.raises(ValueError):
            m.embed("word " * 40, truncate=False)


def test_threads_share_one_llama(smollm2_path):
    prompts = ["The capital of France is", "1, 2, 3, 4,", "Once upon a time", "The color of the sky is"]
    with Llama(str(smollm2_path), n_ctx=256, n_threads=1, verbose=False) as llm:
        expected = {p: llm(p, max_tokens=8, temperature=0.0)["choices"][0]["text"] for p in prompts}
        results, errors = {}, []

        def work(i):
            try:
                for k in range(3):
                    p = prompts[(i + k) % len(prompts)]
                    if k % 2:
                        text = "".join(c["choices"][0]["text"] for c in
                                       llm(p, max_tokens=8, temperature=0.0, stream=True))
                    else:
                        text = llm(p, max_tokens=8, temperature=0.0)["choices"][0]["text"]
                    results[(i, k)] = (p, text)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(results) == 12
        for p, text in results.values():
            assert text == expected[p]
