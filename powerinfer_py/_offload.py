"""The GPU split of the sparse FFN, from the Python side: which neurons go to the device (read from
PowerInfer's ``.generated.gpuidx``, which ``powerinfer-py place`` writes), the budget, and the
report ``Llama.gpu_split()`` returns. The C core does the rest (run/ffn_offload.cpp): it copies the
hot rows to the device and computes each layer's hot rows there and its cold rows on the CPU.

Devices: ``"cuda"`` / ``"cuda:N"`` in CUDA builds, and ``"cpu-standin"``, a CPU stand-in with
buffers of its own, so that the split runs (and is tested) on machines without a GPU.
"""
from __future__ import annotations

import os
from typing import List, Optional, Union

import numpy as np

from .errors import NotCompiledError
from .tools.gpuidx import GPUIDX_SUFFIX, read_gpuidx_file
from .tools.place import parse_size


def cuda_built() -> bool:
    from . import system_info

    return "cuda" in system_info().get("backends", [])


def check_device(device: str) -> None:
    """Raises before any work when the device cannot exist in this build."""
    if device.startswith("cuda") and not cuda_built():
        raise NotCompiledError(
            f"offload_device={device!r}: this build has no CUDA backend (reinstall with "
            f'CMAKE_ARGS="-DPOWERINFER_CUDA=ON"); nothing is offloaded. offload_device="cpu-standin" runs the '
            f"same split on the CPU")


def index_from_profile(model_path: str, profile_path: str, budget: int, n_ctx: int) -> str:
    """Our placement (powerinfer_py.tools.place: MILP with scipy, else greedy) of the model under
    budget bytes (which also counts what goes to the GPU before any FFN neuron: attention,
    predictors, output head, a KV cache of n_ctx, compute buffers, a margin) from an activation profile, written as PowerInfer's .generated.gpuidx next to the
    model, or under ~/.cache/powerinfer-py/gpuidx/ when that folder is not writable. Returns its path."""
    from .tools.activation_profile import load_profile_npz
    from .tools.place import place

    if budget <= 0:
        raise ValueError("offload_profile= needs vram_budget= (the placement is computed for a budget)")
    out = model_path + GPUIDX_SUFFIX
    if not os.access(os.path.dirname(os.path.abspath(out)), os.W_OK):
        cache = os.path.join(os.path.expanduser("~"), ".cache", "powerinfer-py", "gpuidx")
        os.makedirs(cache, exist_ok=True)
        out = os.path.join(cache, os.path.basename(out))
    try:
        import scipy  # noqa: F401
        method = "milp"
    except ImportError:
        method = "greedy"
    place(model_path, load_profile_npz(profile_path), budget, n_ctx=n_ctx, method=method, out=out)
    return out


def hot_neurons(model_path: str, n_layer: int, n_ff: int, gpu_index: Optional[str],
                profile: Optional[str] = None, budget: int = 0, n_ctx: int = 2048) -> List[np.ndarray]:
    """The ascending hot neuron ids of each layer: from gpu_index, or placed by our solver from an
    activation profile (written as <model>.generated.gpuidx), or from an existing
    <model>.generated.gpuidx."""
    if gpu_index is None and profile is not None:
        gpu_index = index_from_profile(model_path, profile, budget, n_ctx)
    path = gpu_index or model_path + GPUIDX_SUFFIX
    if not os.path.isfile(path):
        raise ValueError(
            f"no GPU index for {model_path}: pass gpu_index=<file>, or offload_profile=<profile.npz> with "
            f"vram_budget=, or write {os.path.basename(path)} with `powerinfer-py place "
            f"{os.path.basename(model_path)} --profile <profile.npz> --vram-budget <size>`")
    masks = read_gpuidx_file(path).masks
    if len(masks) != n_layer:
        raise ValueError(f"{path}: a GPU index for {len(masks)} layers; the model has {n_layer}")
    for il, m in enumerate(masks):
        if m.size != n_ff:
            raise ValueError(f"{path}: layer {il} has {m.size} neurons in the index; the model's n_ff is {n_ff}")
    return [np.flatnonzero(m).astype(np.int32) for m in masks]


def budget_bytes(vram_budget: Union[int, str, None]) -> int:
    """Bytes of a budget given as an int or "12GiB"-style text; 0 (no limit) for None."""
    return 0 if vram_budget is None else parse_size(vram_budget)


def split_report(info: Optional[dict], n_ff: int, budget: int) -> dict:
    """Llama.gpu_split()'s dict from the model's offload info."""
    if info is None:
        return {"device": None, "budget_bytes": budget, "used_bytes": 0, "hot_neurons": 0, "layers": [],
                "on_device": [], "on_cpu": ["everything"]}
    layers = [dict(l, n_ff=n_ff, share=l["hot_neurons"] / n_ff if n_ff else 0.0) for l in info["layers"]]
    return {
        "device": info["device"],
        "budget_bytes": budget,
        "used_bytes": info["bytes"],
        "hot_neurons": sum(l["hot_neurons"] for l in layers),
        "total_neurons": n_ff * len(layers),
        "layers": layers,
        "on_device": ["hot FFN rows (ffn_up, ffn_gate, ffn_down_t)", "the predictors of layers with hot rows"],
        "on_cpu": ["cold FFN rows", "attention and KV cache", "norms", "embeddings and output head"],
    }
