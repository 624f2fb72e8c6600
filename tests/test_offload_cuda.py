"""The CUDA device of the hybrid FFN against the CPU stand-in (src/cuda/cuda_device.cu), on a
machine with an NVIDIA GPU and a CUDA build; skipped elsewhere (CI builds and links the CUDA
backend but has no GPU).

The CUDA kernels dot the f32 input with the dequantized rows, where the CPU rounds the input to
int8 blocks (quantized types) or f16 (F16 rows) first, so the two agree to that rounding, the same
bound tests/test_sparse_forward.py allows between the engine and the float64 reference: 1e-4 x
max |logit| for F32, 2e-2 for F16, 6e-2 for Q4_0 and Q8_0. Oracle and dense modes only: in
predictor mode a rounding difference can move a score across the threshold (test_offload.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import powerinfer_py
from powerinfer_py._offload import cuda_built

from test_offload import random_split
from test_sparse_forward import engine_logits

pytestmark = pytest.mark.skipif(
    not cuda_built() or not (powerinfer_py.system_info().get("cuda") or {}).get("devices"),
    reason="needs a CUDA build (CMAKE_ARGS=-DPOWERINFER_CUDA=ON) and an NVIDIA GPU")

CASES = [("llama", "F32", 1e-4), ("llama", "F16", 2e-2), ("llama", "Q4_0", 6e-2), ("bamboo", "Q8_0", 6e-2),
         ("falcon", "Q4_0", 6e-2)]


def run_on(path, mode, hot, device):
    return engine_logits(path, mode, offload=(device, 0, hot))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from powerinfer_py.sparse_gguf import write_sparse_gguf

    d = tmp_path_factory.mktemp("offload_cuda")
    return {(a, w): write_sparse_gguf(d / f"{a}-{w}.powerinfer.gguf", arch=a, wtype=w, n_embd=64, seed=11)
            for a, w, _ in CASES}


@pytest.mark.parametrize("mode", ["oracle", "dense"])
@pytest.mark.parametrize("arch,wtype,rel", CASES)
def test_cuda_split_matches_the_standin(files, arch, wtype, rel, mode):
    spec = files[arch, wtype]
    for share, seed in ((1.0, 0), (0.4, 1)):
        hot = random_split(spec, share, seed)
        want = run_on(spec.path, mode, hot, "cpu-standin")
        got = run_on(spec.path, mode, hot, "cuda")
        np.testing.assert_allclose(got, want, rtol=0, atol=rel * np.abs(want).max(), err_msg=f"share {share}")


def test_cuda_budget_defaults_to_free_memory(files):
    from powerinfer_py._model import Model

    spec = files["llama", "Q4_0"]
    with Model(str(spec.path)) as m:
        m.offload_ffn("cuda", 0, random_split(spec, 0.5))
        assert m.offload_info()["device"].startswith("cuda")
        assert m.offload_info()["bytes"] > 0
