"""Choose the FFN neurons that live on the GPU under a VRAM budget; write PowerInfer's
``<model>.generated.gpuidx``.

    powerinfer-py place model.powerinfer.gguf --profile act.npz --vram-budget 12GiB --n-ctx 2048

Budget model
------------
The budget is every byte we allow ourselves on the GPU. It is spent, in PowerInfer's priority
order, on:

1. **Fixed residents**, read from the model's tensor table (exact bytes of each tensor):
   - ``attention``: every ``blk.L.attn_*`` tensor (q, k, v, qkv, output, norms, biases);
   - ``predictors``: ``blk.L.fc1`` and ``blk.L.fc2``;
   - ``ffn_io``: ``blk.L.ffn_norm*`` and the biases of the down projection (one n_embd vector
     per layer, not per neuron);
   - ``output``: ``output.weight`` and ``output_norm.*``. A model with tied embeddings (no
     ``output.weight``) multiplies by ``token_embd`` at the head, so that copy is counted here;
   - ``other``: any tensor we do not recognise (counted, to stay on the safe side).
   ``token_embd`` (and ``position_embd``) stay on the CPU: a lookup table needs no GPU copy.
2. **KV cache**, f16 K and V for every layer and position:
   ``n_layer * n_ctx * n_head_kv * (head_dim_k + head_dim_v) * 2`` bytes, which is the usual
   ``2 * n_layer * n_ctx * n_head_kv * head_dim * 2`` when K and V heads have the same width.
3. **Compute buffers** (PowerInfer ignores them, hence its FAQ's advice to lower --vram-budget on
   out-of-memory, its issue #38). The graph allocator reuses buffers between layers, so we count
   one layer's live float32 activations plus the logits, per token of a batch:
   ``(4 * n_embd + 3 * n_ff + n_head * n_ctx + n_vocab) * 4 * batch`` bytes
   (4 n_embd: residual, normed input, attention output, FFN output; 3 n_ff: gate, up and the
   predictor's scores; n_head * n_ctx: attention scores; n_vocab: logits), plus a fixed
   ``margin`` (default 64 MiB) for allocator slack, the BLAS workspace and small scratch.
4. What is left, the **FFN budget**, holds hot neurons. One neuron of layer L costs one row of
   ``ffn_up`` plus one row of ``ffn_gate`` (if present) plus one row of ``ffn_down_t`` (sparse
   files), or n_embd values of ``ffn_down``'s type (dense files, where the neuron is a column),
   plus its element of ``ffn_up.bias`` / ``ffn_gate.bias`` when those exist. Row bytes come from
   the type's block size and block bytes.

If the fixed part, the KV cache and the compute buffers do not fit, ``ValueError`` says how many
bytes are missing.

Solver
------
PowerInfer's CUDA kernels work on whole 256-neuron chunks, and the neurons worth placing are a
layer's hottest. So per layer the choice is a count ``k_L`` in {0, chunk, 2 chunk, ..., n_ff}
(the last step may be a partial chunk: a layer entirely on the GPU takes the full-GPU path), and
the GPU set is that layer's ``k_L`` most active neurons. The value of ``k_L`` is the prefix sum
of the layer's counts sorted in descending order, its cost ``k_L * neuron_bytes_L``.

Maximise the summed activation count of GPU neurons subject to their bytes <= the FFN budget:

- ``milp``: scipy.optimize.milp (HiGHS). One binary x_{L,c} per chunk of each layer's sorted
  order, with x_{L,c+1} <= x_{L,c} so that a layer's chosen chunks are a prefix; the bytes row
  is scaled by the gcd of all chunk costs, so the budget constraint is exact integer arithmetic.
- ``dp``: exact dynamic program over layers and budget (in units of that gcd), used when the
  table is small enough (it is for real models at chunk 256: a few thousand budget units).
- ``greedy``: take chunks in order of value per byte. Sorted counts make each layer's prefix
  values concave, so this is optimal whenever every chunk costs the same bytes (one neuron size
  for all layers, n_ff a multiple of chunk); otherwise it is a heuristic. Tests use it to check
  the MILP.
- ``powerinfer``: PowerInfer's own rule, for comparison. Its loader turns the remaining budget
  into a neuron count: slice = n_ff * bytes per element of ffn_up, per_slice = slice * 4.5 with
  a gate (* 2 without), cap = floor(budget / per_slice) * 4; its ILP then takes the hottest
  chunks under ``cap`` neurons, ignoring their bytes. The report shows whether that choice fits
  our accounting.

Output
------
``.generated.gpuidx`` as PowerInfer reads it: a GGUF written with gguf's GGUFWriter, first four
bytes overwritten with ``PWRI`` and the version u32 with 3; keys ``general.architecture =
"generic.gpu_index"``, ``generic.gpu_index.block_count`` (u32), ``split.vram_capacity`` (u64);
tensors in the order blk.0.gpu_idx (I32 [n_ff], 1 = GPU), blk.0.gpu_bucket (I32, ascending ids
of the GPU neurons), blk.1.gpu_idx, ... PowerInfer reads them by position, not by name.

``split.vram_capacity`` holds the FFN budget (bytes available for hot neurons), as PowerInfer's
loader passes it to its solver: at load it rejects a cached file whose capacity exceeds the
budget it has left at that point, so writing the whole budget there would make it regenerate
the file every time. A layer with no GPU neuron gets a zero-length gpu_bucket (gguf writes it;
ggml's reader accepts zero dims, and PowerInfer's loader runs such a layer on the CPU).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from functools import reduce
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ._extras import MissingDependencyError, _require
from .activation_profile import Profile, load_activation_dir, load_profile_npz
from .gpuidx import GPUIDX_SUFFIX, write_gpuidx

METHODS = ("milp", "dp", "greedy", "powerinfer")
DEFAULT_CHUNK = 256           # PowerInfer's CUDA kernels take GPU rows in 256-neuron chunks
DEFAULT_MARGIN = 64 << 20     # allocator slack, BLAS workspace, scratch (see the docstring)
DEFAULT_N_CTX = 2048
DEFAULT_BATCH = 32
_DP_MAX_CELLS = 50_000_000    # layers x options x budget units; beyond this the DP is too slow
_MILP_MAX_VARS = 400_000


# -- sizes ---------------------------------------------------------------------------------------

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,          # bare letters: binary
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}


def parse_size(text) -> int:
    """Bytes from an int or a string: "12GiB", "512MiB", "1.5GB", "4096", "8G" (bare K/M/G/T are
    binary). Raises ValueError for anything else or a negative size."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value = int(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(f"cannot parse size {text!r}: expected bytes or a number with a unit "
                             f"such as 12GiB, 512MiB, 1.5GB")
        value = int(float(m.group(1)) * _UNITS[unit])
    if value < 0:
        raise ValueError(f"size {text!r} is negative")
    return value


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


# -- model facts ---------------------------------------------------------------------------------

_NEURON_ROW_TENSORS = ("ffn_up.weight", "ffn_gate.weight", "ffn_down_t.weight")
_NEURON_ELEMENT_TENSORS = ("ffn_up.bias", "ffn_gate.bias")
_CPU_TENSORS = ("token_embd.weight", "position_embd.weight", "token_types.weight")


@dataclass
class ModelFacts:
    """What placement needs from a model file."""

    path: str
    arch: str
    n_layer: int
    n_embd: int
    n_ff: List[int]                  # per layer
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    has_gate: bool
    fixed_bytes: Dict[str, int]      # GPU residents by PowerInfer priority class
    neuron_bytes: List[int]          # bytes of one FFN neuron, per layer
    up_slice_bytes: int              # n_ff * bytes per element of ffn_up (PowerInfer's rule)
    tied_output: bool = False


def _row_bytes(type_id: int, n_values: int) -> int:
    from .._lib import lib

    block, block_bytes = int(lib.pi_type_block_size(type_id)), int(lib.pi_type_block_bytes(type_id))
    if block <= 0 or block_bytes <= 0:
        raise ValueError(f"unknown tensor type {type_id}")
    return -(-n_values // block) * block_bytes  # a partial block still takes a whole one


def _meta_int(meta: Dict[str, str], key: str, path: str, default: Optional[int] = None) -> int:
    if key not in meta:
        if default is None:
            raise ValueError(f"{path}: metadata has no {key!r}")
        return default
    try:
        return int(meta[key])
    except ValueError:
        raise ValueError(f"{path}: {key} = {meta[key]!r}, expected one integer") from None


def _classify(name: str) -> str:
    """PowerInfer's offload class of a tensor that is not an FFN neuron tensor."""
    if name in _CPU_TENSORS:
        return "cpu"
    if name == "output.weight" or name.startswith("output_norm."):
        return "output"
    m = re.fullmatch(r"blk\.\d+\.(.+)", name)
    if m:
        rest = m.group(1)
        if rest.startswith("attn_"):
            return "attention"
        if rest.startswith(("fc1.", "fc2.")):
            return "predictors"
        if rest.startswith(("ffn_norm", "ffn_down.bias", "ffn_down_t.bias")):
            return "ffn_io"
    return "other"


def read_model_facts(path) -> ModelFacts:
    """Reads the tensor table and hyper-parameters (no weights) of a dense GGUF or a PowerInfer
    PWRI file through our engine's reader, which accepts both magics."""
    from .._model import Model

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such model file")
    with Model(path, vocab_only=True) as model:
        meta, tensors, arch = model.metadata, model.tensors, model.arch
        n_vocab_meta = (model.metadata_type("tokenizer.ggml.tokens")[2]
                        if "tokenizer.ggml.tokens" in meta else 0)
    by_name = {t.name: t for t in tensors}
    n_layer = _meta_int(meta, f"{arch}.block_count", path)
    n_embd = _meta_int(meta, f"{arch}.embedding_length", path)
    n_head = _meta_int(meta, f"{arch}.attention.head_count", path)
    n_head_kv = _meta_int(meta, f"{arch}.attention.head_count_kv", path, default=n_head)
    head_dim_k = _meta_int(meta, f"{arch}.attention.key_length", path, default=n_embd // n_head)
    head_dim_v = _meta_int(meta, f"{arch}.attention.value_length", path, default=n_embd // n_head)
    embd = by_name.get("token_embd.weight")
    n_vocab = n_vocab_meta or (embd.shape[1] if embd is not None and len(embd.shape) > 1 else 0)

    n_ff, neuron_bytes, has_gate = [], [], False
    for layer in range(n_layer):
        up = by_name.get(f"blk.{layer}.ffn_up.weight")
        if up is None or len(up.shape) != 2:
            raise ValueError(f"{path}: layer {layer} has no 2-D blk.{layer}.ffn_up.weight; "
                             f"placement needs a ReLU-style FFN with up/down projections")
        layer_ff = up.shape[1]
        nb = 0
        for suffix in _NEURON_ROW_TENSORS + _NEURON_ELEMENT_TENSORS:
            t = by_name.get(f"blk.{layer}.{suffix}")
            if t is None:
                continue
            if t.shape[-1] != layer_ff or t.n_bytes % layer_ff:
                raise ValueError(f"{path}: {t.name} has shape {t.shape}, expected {layer_ff} neurons last")
            nb += t.n_bytes // layer_ff  # one row (or element) per neuron, exact for any type
            has_gate |= suffix == "ffn_gate.weight"
        down = by_name.get(f"blk.{layer}.ffn_down.weight")
        if down is not None:  # dense file: the neuron is a column of n_embd values
            if len(down.shape) != 2 or down.shape[0] != layer_ff:
                raise ValueError(f"{path}: {down.name} has shape {down.shape}, expected ({layer_ff}, n_embd)")
            nb += _row_bytes(down.type, down.shape[1])
        elif f"blk.{layer}.ffn_down_t.weight" not in by_name:
            raise ValueError(f"{path}: layer {layer} has neither ffn_down nor ffn_down_t")
        n_ff.append(int(layer_ff))
        neuron_bytes.append(int(nb))

    neuron_tensor_names = {f"blk.{l}.{s}" for l in range(n_layer)
                           for s in _NEURON_ROW_TENSORS + _NEURON_ELEMENT_TENSORS + ("ffn_down.weight",)}
    fixed = {"attention": 0, "predictors": 0, "ffn_io": 0, "output": 0, "other": 0}
    for t in tensors:
        if t.name in neuron_tensor_names:
            continue
        kind = _classify(t.name)
        if kind != "cpu":
            fixed[kind] += t.n_bytes
    tied = "output.weight" not in by_name
    if tied and embd is not None:  # the head multiplies by token_embd: it needs a GPU copy
        fixed["output"] += embd.n_bytes

    up0 = by_name["blk.0.ffn_up.weight"]
    from .._lib import lib

    up_slice = n_ff[0] * int(lib.pi_type_block_bytes(up0.type)) // max(1, int(lib.pi_type_block_size(up0.type)))
    return ModelFacts(path=path, arch=arch, n_layer=n_layer, n_embd=n_embd, n_ff=n_ff, n_head=n_head,
                      n_head_kv=n_head_kv, head_dim_k=head_dim_k, head_dim_v=head_dim_v, n_vocab=n_vocab,
                      has_gate=has_gate, fixed_bytes=fixed, neuron_bytes=neuron_bytes,
                      up_slice_bytes=up_slice, tied_output=tied)


# -- budget --------------------------------------------------------------------------------------

def kv_cache_bytes(facts: ModelFacts, n_ctx: int) -> int:
    """f16 K and V for every layer and position."""
    return facts.n_layer * n_ctx * facts.n_head_kv * (facts.head_dim_k + facts.head_dim_v) * 2


def compute_buffer_bytes(facts: ModelFacts, n_ctx: int, batch: int) -> int:
    """One layer's live float32 activations plus logits for ``batch`` tokens (module docstring)."""
    floats_per_token = 4 * facts.n_embd + 3 * max(facts.n_ff) + facts.n_head * n_ctx + facts.n_vocab
    return floats_per_token * 4 * batch


@dataclass
class Budget:
    total: int
    fixed: Dict[str, int]
    kv_cache: int
    compute: int
    margin: int
    ffn: int  # what is left for hot neurons

    @property
    def fixed_total(self) -> int:
        return sum(self.fixed.values())

    def as_dict(self) -> dict:
        return {"total": self.total, "fixed": dict(self.fixed), "fixed_total": self.fixed_total,
                "kv_cache": self.kv_cache, "compute_buffers": self.compute, "margin": self.margin,
                "ffn": self.ffn}


def plan_budget(facts: ModelFacts, total: int, *, n_ctx: int = DEFAULT_N_CTX, batch: int = DEFAULT_BATCH,
                margin: int = DEFAULT_MARGIN) -> Budget:
    """Splits the budget; ValueError naming the shortfall when the non-FFN part does not fit."""
    if n_ctx <= 0 or batch <= 0:
        raise ValueError(f"n_ctx={n_ctx} and batch={batch} must be positive")
    kv, compute = kv_cache_bytes(facts, n_ctx), compute_buffer_bytes(facts, n_ctx, batch)
    fixed = dict(facts.fixed_bytes)
    needed = sum(fixed.values()) + kv + compute + margin
    if needed > total:
        parts = ", ".join(f"{k} {v}" for k, v in fixed.items() if v)
        raise ValueError(
            f"VRAM budget of {total} bytes ({_mib(total)}) is {needed - total} bytes ({_mib(needed - total)}) "
            f"short of what must be on the GPU before any FFN neuron: {needed} bytes = fixed weights "
            f"({parts}) + KV cache {kv} (n_ctx={n_ctx}) + compute buffers {compute} (batch={batch}) "
            f"+ margin {margin}")
    return Budget(total=total, fixed=fixed, kv_cache=kv, compute=compute, margin=margin, ffn=total - needed)


# -- the placement problem -----------------------------------------------------------------------

@dataclass
class PlacementProblem:
    """Per layer: counts sorted descending, bytes of one neuron; the chunk and the byte budget.

    Layer L's options are the sizes k in ``sizes[L]`` (0, chunk, 2 chunk, ..., n_ff) with value
    ``values[L][j]`` (sum of the k largest counts) and cost ``k * neuron_bytes[L]``."""

    sorted_counts: List[np.ndarray]
    neuron_bytes: List[int]
    chunk: int
    budget: int
    sizes: List[np.ndarray] = field(init=False)
    values: List[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        if self.chunk <= 0:
            raise ValueError(f"chunk={self.chunk} must be a positive number of neurons")
        if len(self.sorted_counts) != len(self.neuron_bytes):
            raise ValueError("one neuron size per layer is needed")
        self.sizes, self.values = [], []
        for counts in self.sorted_counts:
            n = len(counts)
            sizes = np.unique(np.append(np.arange(0, n, self.chunk), n))
            prefix = np.concatenate(([0.0], np.cumsum(counts, dtype=np.float64)))
            self.sizes.append(sizes)
            self.values.append(prefix[sizes])

    @property
    def n_layer(self) -> int:
        return len(self.sorted_counts)

    def costs(self, layer: int) -> np.ndarray:
        return self.sizes[layer].astype(np.int64) * int(self.neuron_bytes[layer])

    def value_of(self, ks: Sequence[int]) -> float:
        return float(sum(self.values[l][self._index(l, k)] for l, k in enumerate(ks)))

    def bytes_of(self, ks: Sequence[int]) -> int:
        return sum(int(k) * int(nb) for k, nb in zip(ks, self.neuron_bytes))

    def cost_unit(self) -> int:
        """gcd of every option's cost: budget and costs divide by it without changing the problem."""
        costs = [int(c) for l in range(self.n_layer) for c in self.costs(l) if c]
        return reduce(math.gcd, costs, 0) or 1

    def _index(self, layer: int, k: int) -> int:
        j = int(np.searchsorted(self.sizes[layer], k))
        if j >= len(self.sizes[layer]) or self.sizes[layer][j] != k:
            raise ValueError(f"layer {layer}: {k} GPU neurons is not a multiple of chunk {self.chunk} or n_ff")
        return j


def sort_counts(counts: np.ndarray) -> np.ndarray:
    """Neuron ids, hottest first (stable: equal counts keep id order, so results are reproducible)."""
    return np.argsort(-np.asarray(counts, dtype=np.float64), kind="stable")


def build_problem(profile: Profile, neuron_bytes: Sequence[int], budget: int, chunk: int = DEFAULT_CHUNK,
                  progress: bool = False) -> PlacementProblem:
    from tqdm.auto import tqdm

    sorted_counts = []
    for counts in tqdm(profile.counts, desc="sorting layers", unit="layer", disable=not progress):
        sorted_counts.append(counts[sort_counts(counts)])
    return PlacementProblem(sorted_counts, [int(b) for b in neuron_bytes], int(chunk), int(budget))


# -- solvers (each returns GPU neurons per layer) -------------------------------------------------

@dataclass
class Solution:
    ks: List[int]
    method: str
    optimal: Optional[bool]   # proven optimal (None: not an optimisation, e.g. PowerInfer's rule)
    detail: str = ""


def solve_milp(problem: PlacementProblem, time_limit: float = 60.0) -> Solution:
    """Binary x_{L,c} per chunk, prefix order x_{L,c+1} <= x_{L,c}, one bytes row; HiGHS."""
    optimize = _require("scipy.optimize", "--method milp")
    sparse = _require("scipy.sparse", "--method milp")
    unit = problem.cost_unit()
    gains, weights, owners = [], [], []  # per variable: value, cost (in units) and layer
    for l in range(problem.n_layer):
        gains.append(np.diff(problem.values[l]))
        weights.append(np.diff(problem.costs(l)) // unit)
        owners.append(np.full(len(gains[-1]), l))
    gains, weights, owners = np.concatenate(gains), np.concatenate(weights), np.concatenate(owners)
    n = len(gains)
    if n == 0:
        return Solution([0] * problem.n_layer, "milp", True, "no variables")
    if n > _MILP_MAX_VARS:
        raise ValueError(f"MILP would have {n} variables (chunk={problem.chunk}); use a larger --chunk "
                         f"or --method greedy / dp")
    # Ordering rows: variable i+1 of the same layer may be 1 only if variable i is.
    same_layer = np.flatnonzero(owners[1:] == owners[:-1])
    rows = np.arange(len(same_layer))
    order = sparse.coo_matrix(
        (np.concatenate([np.ones(len(rows)), -np.ones(len(rows))]),
         (np.concatenate([rows, rows]), np.concatenate([same_layer + 1, same_layer]))), shape=(len(rows), n))
    constraints = [optimize.LinearConstraint(weights.reshape(1, -1).astype(np.float64), -np.inf,
                                             float(problem.budget // unit))]
    if len(rows):
        constraints.append(optimize.LinearConstraint(order.tocsr(), -np.inf, 0.0))
    res = optimize.milp(-gains, integrality=np.ones(n), bounds=optimize.Bounds(0, 1), constraints=constraints,
                        options={"time_limit": float(time_limit), "mip_rel_gap": 0.0})
    if res.x is None:
        raise RuntimeError(f"MILP solver found no solution: {res.message}")
    x = np.round(res.x).astype(np.int64)
    ks = [int(problem.sizes[l][x[owners == l].sum()]) for l in range(problem.n_layer)]
    if any(np.any(np.diff(x[owners == l]) > 0) for l in range(problem.n_layer)):
        raise RuntimeError("MILP solution is not a prefix of each layer's hottest chunks")
    if problem.bytes_of(ks) > problem.budget:
        raise RuntimeError("MILP solution exceeds the budget (solver tolerance); use --method dp")
    return Solution(ks, "milp", res.status == 0, str(res.message))


def solve_dp(problem: PlacementProblem) -> Solution:
    """Exact: best[c] = best value with cost <= c units over the layers seen so far."""
    unit = problem.cost_unit()
    capacity = problem.budget // unit
    cells = (capacity + 1) * sum(len(s) for s in problem.sizes)
    if cells > _DP_MAX_CELLS:
        raise ValueError(f"exact DP needs {cells} cells (budget {capacity} units of {unit} bytes); "
                         f"use --method milp or greedy, or a larger --chunk")
    best = np.zeros(capacity + 1)
    choice = np.zeros((problem.n_layer, capacity + 1), dtype=np.int32)
    for l in range(problem.n_layer):
        new = np.full(capacity + 1, -np.inf)
        for j, (cost, value) in enumerate(zip(problem.costs(l) // unit, problem.values[l])):
            if cost > capacity:
                break
            candidate = np.full(capacity + 1, -np.inf)
            candidate[cost:] = best[:capacity + 1 - cost] + value
            better = candidate > new  # strict: on ties keep the smaller layer size
            new[better] = candidate[better]
            choice[l, better] = j
        best = new
    ks, c = [0] * problem.n_layer, capacity
    for l in reversed(range(problem.n_layer)):
        j = int(choice[l, c])
        ks[l] = int(problem.sizes[l][j])
        c -= int(problem.costs(l)[j] // unit)
    return Solution(ks, "dp", True)


def greedy_is_exact(problem: PlacementProblem) -> bool:
    """Greedy by value per byte is optimal when every chunk costs the same."""
    steps = {int(d) for l in range(problem.n_layer) for d in np.diff(problem.costs(l))}
    return len(steps) <= 1


def _greedy(problem: PlacementProblem, costs: List[np.ndarray], budget: int) -> List[int]:
    """Chunks in order of gain per cost (layer, then chunk order on ties), each layer a prefix."""
    items = []
    for l in range(problem.n_layer):
        gains, steps = np.diff(problem.values[l]), np.diff(costs[l])
        items += [(-g / s if s else -np.inf, l, j) for j, (g, s) in enumerate(zip(gains, steps))]
    items.sort()
    next_chunk, blocked, spent = [0] * problem.n_layer, [False] * problem.n_layer, 0
    for _, l, j in items:
        if blocked[l] or j != next_chunk[l]:
            blocked[l] = True  # cannot happen with sorted counts; keeps the prefix rule regardless
            continue
        step = int(costs[l][j + 1] - costs[l][j])
        if spent + step > budget:
            blocked[l] = True  # later chunks of this layer need this one first
            continue
        spent += step
        next_chunk[l] += 1
    return [int(problem.sizes[l][next_chunk[l]]) for l in range(problem.n_layer)]


def solve_greedy(problem: PlacementProblem) -> Solution:
    ks = _greedy(problem, [problem.costs(l) for l in range(problem.n_layer)], problem.budget)
    exact = greedy_is_exact(problem)
    return Solution(ks, "greedy", exact, "exact: equal chunk costs" if exact else "heuristic")


def powerinfer_neuron_cap(up_slice_bytes: int, has_gate: bool, ffn_budget: int) -> int:
    """PowerInfer's loader rule: neuron cap from the budget left for FFN rows (facts §2)."""
    per_slice = up_slice_bytes * (4.5 if has_gate else 2.0)
    return int(math.floor(ffn_budget / per_slice)) * 4 if per_slice > 0 else 0


def solve_powerinfer(problem: PlacementProblem, neuron_cap: int) -> Solution:
    """The hottest chunks under a neuron count, bytes ignored, as PowerInfer's ILP chooses."""
    ks = _greedy(problem, [problem.sizes[l].astype(np.int64) for l in range(problem.n_layer)], neuron_cap)
    return Solution(ks, "powerinfer", None, f"neuron cap {neuron_cap}")


def solve(problem: PlacementProblem, method: str, *, neuron_cap: int = 0, time_limit: float = 60.0) -> Solution:
    if method == "milp":
        return solve_milp(problem, time_limit=time_limit)
    if method == "dp":
        return solve_dp(problem)
    if method == "greedy":
        return solve_greedy(problem)
    if method == "powerinfer":
        return solve_powerinfer(problem, neuron_cap)
    raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")


def gpu_masks(profile: Profile, ks: Sequence[int]) -> List[np.ndarray]:
    """Bool [n_ff] per layer: True for the layer's k hottest neurons."""
    masks = []
    for counts, k in zip(profile.counts, ks):
        mask = np.zeros(len(counts), dtype=bool)
        mask[sort_counts(counts)[:int(k)]] = True
        masks.append(mask)
    return masks


# -- plot ----------------------------------------------------------------------------------------

def plot_activation_curves(profile: Profile, path_png, placement: Optional[Sequence[int]] = None) -> None:
    """Per layer: activation frequency (counts / n_tokens) sorted descending vs neuron rank, one
    line per layer coloured by depth, the GPU cut (k hottest) marked on each line; a second panel
    shows the GPU neurons and the activation mass they cover per layer."""
    _require("matplotlib", "--plot")
    from matplotlib import cm
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state
    from matplotlib.figure import Figure

    scale = 1.0 / profile.n_tokens if profile.n_tokens else 1.0
    fig = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    curves = fig.add_subplot(1, 2 if placement is not None else 1, 1)
    colours = cm.viridis(np.linspace(0, 1, max(2, profile.n_layer)))
    for layer, counts in enumerate(profile.counts):
        freq = np.sort(counts)[::-1] * scale
        curves.plot(np.arange(1, len(freq) + 1), freq, color=colours[layer], lw=0.9,
                    label=f"layer {layer}" if profile.n_layer <= 12 else None)
        if placement is not None and 0 < placement[layer] <= len(freq):
            k = int(placement[layer])
            curves.plot([k], [freq[k - 1]], "o", color=colours[layer], ms=4, mec="k", mew=0.5)
    curves.set_xlabel("neuron rank (hottest first)")
    curves.set_ylabel("activation frequency" if profile.n_tokens else "activation count (as stored)")
    curves.set_title("hot/cold neurons per layer" + (" (dots: GPU cut)" if placement is not None else ""))
    curves.set_xscale("log")
    curves.grid(True, which="both", alpha=0.3)
    if profile.n_layer <= 12:
        curves.legend(fontsize=7)
    if placement is not None:
        bars = fig.add_subplot(1, 2, 2)
        layers = np.arange(profile.n_layer)
        bars.bar(layers, [k / len(c) for k, c in zip(placement, profile.counts)], color="tab:orange",
                 label="GPU share of neurons")
        bars.plot(layers, [_covered(c, k) for c, k in zip(profile.counts, placement)], "o-",
                  color="tab:blue", label="activation mass covered")
        bars.set_ylim(0, 1.05)
        bars.set_xlabel("layer")
        bars.set_title("placement")
        bars.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.fspath(path_png), format="png")


# -- report and driver ---------------------------------------------------------------------------

def _covered(counts: np.ndarray, k: int) -> float:
    total = float(counts.sum())
    return float(np.sort(counts)[::-1][:int(k)].sum()) / total if total > 0 else 0.0


def _summary(problem: PlacementProblem, profile: Profile, ks: Sequence[int]) -> dict:
    mass = sum(float(c.sum()) for c in profile.counts)
    gpu_bytes = problem.bytes_of(ks)
    return {"gpu_neurons": int(sum(ks)), "neurons": int(sum(len(c) for c in profile.counts)),
            "mass_covered": problem.value_of(ks) / mass if mass > 0 else 0.0,
            "bytes": gpu_bytes, "fits": gpu_bytes <= problem.budget}


def place(model_path, profile: Profile, vram_budget, *, n_ctx: int = DEFAULT_N_CTX, batch: int = DEFAULT_BATCH,
          chunk: int = DEFAULT_CHUNK, margin=DEFAULT_MARGIN, method: str = "milp", out=None, plot=None,
          time_limit: float = 60.0, progress: bool = False) -> dict:
    """Reads the model, splits the budget, solves, writes the gpuidx (and plot); returns the report."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if chunk <= 0:
        raise ValueError(f"chunk={chunk} must be a positive number of neurons")
    if plot is not None:  # fail before writing anything, not after
        _require("matplotlib", "--plot")
    total = parse_size(vram_budget)
    facts = read_model_facts(model_path)
    if profile.n_layer != facts.n_layer or any(n != profile.n_ff for n in facts.n_ff):
        raise ValueError(f"profile {profile.source} has n_layer={profile.n_layer}, n_ff={profile.n_ff} but "
                         f"model {facts.path} has n_layer={facts.n_layer}, n_ff={sorted(set(facts.n_ff))}")
    budget = plan_budget(facts, total, n_ctx=n_ctx, batch=batch, margin=parse_size(margin))
    problem = build_problem(profile, facts.neuron_bytes, budget.ffn, chunk, progress=progress)
    neuron_cap = powerinfer_neuron_cap(facts.up_slice_bytes, facts.has_gate, budget.ffn)
    solution = solve(problem, method, neuron_cap=neuron_cap, time_limit=time_limit)
    powerinfer = solution if method == "powerinfer" else solve_powerinfer(problem, neuron_cap)

    out = os.fspath(out) if out is not None else os.fspath(model_path) + GPUIDX_SUFFIX
    write_gpuidx(out, gpu_masks(profile, solution.ks), budget.ffn, progress=progress)
    if plot is not None:
        plot_activation_curves(profile, plot, solution.ks)

    layers = [{"layer": l, "gpu_neurons": int(k), "n_ff": len(c), "mass_covered": _covered(c, k),
               "bytes": int(k) * problem.neuron_bytes[l]}
              for l, (c, k) in enumerate(zip(profile.counts, solution.ks))]
    return {
        "model": facts.path, "arch": facts.arch, "profile": profile.source, "n_layer": facts.n_layer,
        "n_embd": facts.n_embd, "n_ff": profile.n_ff, "n_ctx": n_ctx, "batch": batch, "chunk": chunk,
        "neuron_bytes": facts.neuron_bytes, "budget": budget.as_dict(),
        "method": method, "optimal": solution.optimal, "solver": solution.detail,
        "layers": layers,
        "total": dict(_summary(problem, profile, solution.ks), budget_left=budget.ffn - problem.bytes_of(solution.ks)),
        "powerinfer_rule": dict(_summary(problem, profile, powerinfer.ks), neuron_cap=neuron_cap),
        "output": out, "plot": os.fspath(plot) if plot is not None else None,
    }


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `place` options, so that a CLI can mount them on a subparser."""
    parser.add_argument("model", help="model file: dense GGUF or PowerInfer .powerinfer.gguf (PWRI)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", help="activation profile .npz (powerinfer-py profile)")
    source.add_argument("--activation", help="PowerInfer's activation/ folder of activation_<L>.pt (needs torch)")
    parser.add_argument("--vram-budget", required=True,
                        help="GPU bytes to use, e.g. 12GiB, 512MiB, 1.5GB or plain bytes")
    parser.add_argument("--n-ctx", type=int, default=DEFAULT_N_CTX, help="context length for the KV cache")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help="tokens per step, for the compute buffer estimate")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                        help="GPU neurons per layer come in multiples of this (256 for PowerInfer's kernels; "
                             "1, 32 or 64 for finer kernels)")
    parser.add_argument("--margin", default=str(DEFAULT_MARGIN),
                        help="fixed GPU bytes kept free besides the estimates (default 64MiB)")
    parser.add_argument("--method", choices=METHODS, default="milp",
                        help="milp (scipy), dp (exact, small tables), greedy, or powerinfer (its own rule)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="MILP time limit in seconds")
    parser.add_argument("--out", help="output file (default: MODEL.generated.gpuidx)")
    parser.add_argument("--plot", help="write the activation-frequency curves to this PNG (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Runs parsed arguments: report JSON on stdout; 2 on bad input, 3 on a missing extra."""
    try:
        profile = load_activation_dir(args.activation) if args.activation else load_profile_npz(args.profile)
        report = place(args.model, profile, args.vram_budget, n_ctx=args.n_ctx, batch=args.batch,
                       chunk=args.chunk, margin=args.margin, method=args.method, out=args.out,
                       plot=args.plot, time_limit=args.time_limit, progress=not args.no_progress)
    except MissingDependencyError as e:
        print(f"powerinfer-py place: {e}", file=sys.stderr)
        return 3
    except (ValueError, OSError) as e:  # ModelFileError is a ValueError
        print(f"powerinfer-py place: error: {e}", file=sys.stderr)
        return 2
    if not report["total"]["fits"]:
        print("powerinfer-py place: warning: this placement exceeds the budget by our accounting",
              file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(
        prog="powerinfer-py place",
        description="Choose the FFN neurons that live on the GPU under a VRAM budget and write "
                    "PowerInfer's .generated.gpuidx."))
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as e:  # argparse prints its own message; return its code instead of exiting
        return int(e.code or 0)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
