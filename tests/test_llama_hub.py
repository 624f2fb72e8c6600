"""Llama.from_pretrained without network: a pre-populated Hugging Face cache in offline mode."""
from __future__ import annotations

import os

import pytest

hub = pytest.importorskip("huggingface_hub")
import huggingface_hub.constants as hf_constants  # noqa: E402

from powerinfer_py import Llama  # noqa: E402
from powerinfer_py import _hub  # noqa: E402

REPO = "example-org/SmolLM2-135M-Instruct-GGUF"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch, smollm2_path):
    """The cache layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    root = tmp_path / "hub"
    repo = root / ("models--" + REPO.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    (snap / "sub").mkdir(parents=True)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    os.symlink(smollm2_path, snap / "smollm2-135m-instruct.Q4_1.gguf")
    (snap / "smollm2-135m-instruct.Q8_0.gguf").write_bytes(b"not used")
    (snap / "sub" / "README.md").write_text("hello")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_glob_resolves_one_file(offline_cache):
    paths = _hub.resolve_files(REPO, "*Q4_1.gguf", cache_dir=offline_cache)
    assert paths[0].name == "smollm2-135m-instruct.Q4_1.gguf" and paths[0].exists()
    both = _hub.resolve_files(REPO, "*Q4_1.gguf", additional_files=["sub/*.md"], cache_dir=offline_cache)
    assert both[1].read_text() == "hello"


def test_no_match_and_several_matches_list_the_files(offline_cache):
    with pytest.raises(ValueError, match=r"No file found.*\*Q2_K\.gguf[\s\S]*Q4_1\.gguf[\s\S]*Q8_0\.gguf"):
        _hub.resolve_files(REPO, "*Q2_K.gguf", cache_dir=offline_cache)
    with pytest.raises(ValueError, match=r"Multiple files found[\s\S]*Q4_1\.gguf[\s\S]*Q8_0\.gguf"):
        _hub.resolve_files(REPO, "*.gguf", cache_dir=offline_cache)


def test_unknown_repo_offline(offline_cache):
    with pytest.raises(ValueError, match="not in the local cache"):
        _hub.resolve_files("nobody/nothing", "*.gguf", cache_dir=offline_cache)


def test_from_pretrained_loads(offline_cache):
    with Llama.from_pretrained(REPO, "*Q4_1.gguf", cache_dir=offline_cache, n_ctx=64, n_threads=1, verbose=False) as llm:
        assert llm.n_vocab() == 49152
        assert llm("Hello", max_tokens=2, temperature=0.0)["usage"]["completion_tokens"] >= 1
