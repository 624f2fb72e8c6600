"""The activation profile: per layer, how many tokens each FFN neuron fired for. Written by
profile.py, read by place.py. Two formats:

    .npz     ours (powerinfer_py/tools/__init__.py): n_layer, n_ff, n_tokens, counts_{L}, model, corpus
    folder   PowerInfer's activation/activation_{L}.pt, one torch tensor of counts per layer
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from ._extras import _require


@dataclass
class Profile:
    """Per-layer activation counts (float64 [n_ff] each). n_tokens is None when the source does
    not say (PowerInfer's .pt files), and then counts are shown as stored."""

    n_layer: int
    n_ff: int
    n_tokens: Optional[int]
    counts: List[np.ndarray]
    source: str = ""


def _check_counts(counts: np.ndarray, where: str, n_ff: Optional[int]) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D array of per-neuron counts, got shape {counts.shape}")
    if n_ff is not None and counts.shape[0] != n_ff:
        raise ValueError(f"{where}: {counts.shape[0]} counts, expected n_ff={n_ff}")
    if counts.dtype.kind not in "iuf":
        raise ValueError(f"{where}: counts have dtype {counts.dtype}, expected numbers")
    counts = counts.astype(np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f"{where}: counts must be finite and non-negative")
    return counts


def load_profile_npz(path) -> Profile:
    """Reads the activation profile .npz that profile.py writes (see tools/__init__.py)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such profile file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # zip or npy errors: say which file
        raise ValueError(f"{path}: not a readable .npz profile ({e})") from e
    with data:
        for key in ("n_layer", "n_ff"):
            if key not in data.files:
                raise ValueError(f"{path}: profile has no {key!r} (keys: {', '.join(data.files)})")
        n_layer, n_ff = int(data["n_layer"]), int(data["n_ff"])
        n_tokens = int(data["n_tokens"]) if "n_tokens" in data.files else None
        if n_layer <= 0 or n_ff <= 0:
            raise ValueError(f"{path}: n_layer={n_layer}, n_ff={n_ff} must be positive")
        counts = []
        for layer in range(n_layer):
            key = f"counts_{layer}"
            if key not in data.files:
                raise ValueError(f"{path}: profile has no {key!r} for n_layer={n_layer}")
            counts.append(_check_counts(data[key], f"{path}:{key}", n_ff))
    return Profile(n_layer, n_ff, n_tokens, counts, source=path)


def load_activation_dir(path) -> Profile:
    """Reads PowerInfer's ``activation/activation_{L}.pt`` (one 1-D torch tensor per layer)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"{path}: no such activation directory")
    torch = _require("torch", "reading activation_*.pt files")
    by_layer = {}
    for name in os.listdir(path):
        m = re.fullmatch(r"activation_(\d+)\.pt", name)
        if m:
            by_layer[int(m.group(1))] = os.path.join(path, name)
    if not by_layer:
        raise ValueError(f"{path}: no activation_<layer>.pt files")
    # Numeric order on purpose: PowerInfer sorts these names as strings (activation_10 before
    # activation_2, its issue #247), which hands layer L another layer's statistics.
    layers = sorted(by_layer)
    if layers != list(range(len(layers))):
        missing = sorted(set(range(layers[-1] + 1)) - set(layers))
        raise ValueError(f"{path}: activation files are not numbered 0..{layers[-1]} (missing {missing})")
    counts, n_ff = [], None
    for layer in layers:
        file = by_layer[layer]
        try:
            tensor = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{file}: cannot load with torch ({e})") from e
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{file}: holds a {type(tensor).__name__}, expected a tensor")
        c = _check_counts(tensor.detach().to(torch.float64).numpy(), file, n_ff)
        n_ff = c.shape[0]
        counts.append(c)
    return Profile(len(counts), int(n_ff), None, counts, source=path)


def save_profile_npz(profile: Profile, path, *, model: str = "", corpus: str = "") -> None:
    arrays = {f"counts_{il}": np.asarray(c, dtype=np.int64) for il, c in enumerate(profile.counts)}
    np.savez(path, n_layer=np.int64(profile.n_layer), n_ff=np.int64(profile.n_ff),
             n_tokens=np.int64(profile.n_tokens or 0), model=np.str_(model), corpus=np.str_(corpus), **arrays)


def save_activation_dir(profile: Profile, folder) -> None:
    """PowerInfer's activation/activation_{L}.pt: one int64 torch tensor of counts per layer."""
    torch = _require("torch", "writing activation_*.pt files")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for il, c in enumerate(profile.counts):
        torch.save(torch.from_numpy(np.asarray(c, dtype=np.int64)), out / f"activation_{il}.pt")
