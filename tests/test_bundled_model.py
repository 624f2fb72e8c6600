"""The sparse model that ships inside the package (powerinfer_py/models/, made by
tools/train_relu_llama.py and tools/build_sparse_model.py): a 18M-parameter llama with a ReLU FFN,
trained on Django's documentation and code, in PowerInfer's layout with predictors, Q4_0.

Checked here without the network: the file is what the package says it is (PWRI, at most 20 MB,
ReLU in every layer, predictors), it runs in every sparse mode, the predictors lose next to
nothing against the dense FFN, the statistics agree with what the build measured, and
`powerinfer-py run` uses it by default.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from powerinfer_py import Llama, assets
from powerinfer_py._lib import lib

ROOT = Path(__file__).resolve().parents[1]
# Django-flavoured text written for this test (not from the training corpus).
TEXT = '''from django.db import models
from django.utils import timezone


class Question(models.Model):
    """A poll question and the date it was published."""

    question_text = models.CharField(max_length=200)
    pub_date = models.DateTimeField("date published")

    def was_published_recently(self):
        return self.pub_date >= timezone.now() - datetime.timedelta(days=1)


The admin site reads your models and builds an interface for managing the content of your site.
To register a model, create an admin.py file in the application directory and call
admin.site.register(Question). Each field of the model is shown with a widget that suits its type.
'''


@pytest.fixture(scope="module")
def path() -> str:
    return str(assets.bundled_model_path())


def test_the_file(path):
    p = Path(path)
    assert p.stat().st_size <= 20 * 1024 * 1024
    assert p.read_bytes()[:4] == b"PWRI"
    with Llama(path, vocab_only=True, verbose=False) as llm:
        meta = llm.metadata
        assert meta["general.architecture"] == "llama" and meta["powerinfer.ffn_activation"] == "relu"
        assert llm.n_vocab() == 32000  # Llama 2's SentencePiece vocabulary


def test_every_layer_is_sparse_with_predictors(path):
    with Llama(path, n_ctx=64, verbose=False) as llm:
        assert int(lib.pi_model_sparse_mode(llm._mp)) == lib.PI_SPARSE_PREDICTOR  # auto: the file has predictors
        n_layer = int(lib.pi_model_n_layer(llm._mp))
        assert all(lib.pi_model_layer_is_sparse(llm._mp, il) for il in range(n_layer))


def logits_of(path, mode, ids):
    with Llama(path, n_ctx=512, verbose=False, sparse_mode=mode, logits_all=True) as llm:
        llm.eval(ids)
        return np.asarray(llm.scores[: len(ids)])


def test_predictors_lose_next_to_nothing(path):
    """Predictor mode against the dense FFN on text the model never saw: the same next-token
    choice almost everywhere, and the same perplexity to within 1% (the build measured 27.085
    against 27.088 on the held-out Django text)."""
    with Llama(path, vocab_only=True, verbose=False) as llm:
        ids = llm.tokenize(TEXT.encode(), add_bos=True)
    dense, pred, oracle = (logits_of(path, m, ids) for m in ("dense", "predictor", "oracle"))
    np.testing.assert_allclose(oracle, dense, rtol=0, atol=1e-4 * np.abs(dense).max())

    def nll(lg):
        lg = lg[:-1] - lg[:-1].max(axis=1, keepdims=True)
        logp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(ids) - 1), ids[1:]].mean()

    ppl_dense, ppl_pred = np.exp(nll(dense)), np.exp(nll(pred))
    assert ppl_dense < 60, ppl_dense  # it has learned Django's language
    assert abs(ppl_pred / ppl_dense - 1) < 0.01, (ppl_pred, ppl_dense)
    assert (dense.argmax(axis=1) == pred.argmax(axis=1)).mean() >= 0.95


def test_statistics(path):
    """Recall and densities as the build measured them on held-out text (recall >= 0.98 in every
    layer, predicted density at most twice the actual one)."""
    with Llama(path, n_ctx=512, verbose=False, sparse_measure_truth=True) as llm:
        llm.eval(llm.tokenize(TEXT.encode(), add_bos=True))
        st = llm.sparsity_stats()
    assert st["mode"] == "predictor" and len(st["layers"]) == 6
    for layer in st["layers"]:
        assert layer["recall"] >= 0.98, layer
        assert layer["actual_density"] < layer["predicted_density"] <= 2.2 * layer["actual_density"], layer
    assert 0.2 < st["ffn_density"] < 0.7
    assert st["time_ms"]["predictor"] > 0 and st["time_ms"]["ffn"] > 0


def test_run_uses_the_bundled_model():
    r = subprocess.run([sys.executable, "-m", "powerinfer_py", "run", "-n", "16", "--temperature", "0",
                        "from django.db import"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("from django.db import models")  # greedy: "models" comes next
    assert "tokens/s" in r.stderr and "FFN density" in r.stderr and "(predictor)" in r.stderr
