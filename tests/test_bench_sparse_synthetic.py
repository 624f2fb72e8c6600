"""benchmarks/bench_sparse_synthetic.py builds random models whose sparse path does set amounts of
work: a share of "live" neurons of which about half fire at each token, and predictors that mark
exactly the live ones. Checked here on its small shape, with every neuron also computed to know
the truth: if the construction drifted, the benchmark's figures would describe another model."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from powerinfer_py import Llama

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sparse_synthetic", ROOT / "benchmarks" / "bench_sparse_synthetic.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("fire", [0.05, 0.2])
def test_the_densities_are_the_ones_set(bench, tmp_path, fire):
    path = tmp_path / "tiny.powerinfer.gguf"
    bench.write_model(path, "tiny", fire, pred_width=64)
    assert path.read_bytes()[:4] == b"PWRI" and not (tmp_path / "tiny.powerinfer.gguf.part").exists()
    n_ff = bench.SHAPES["tiny"][1]
    live = round(fire / bench.FIRE_SHARE["llama"] * n_ff) / n_ff
    with Llama(str(path), n_ctx=128, n_threads=2, verbose=False, sparse_mode="predictor",
               sparse_measure_truth=True) as llm:
        for t in range(40):  # one token at a time: the decode path
            llm.eval([int(3 + 7 * t)])
        st = llm.sparsity_stats()
        logits = np.asarray(llm._ctx.logits())
    assert np.isfinite(logits).all()
    for ly in st["layers"]:
        assert ly["tokens"] == 40
        assert ly["predicted_density"] == pytest.approx(live, abs=1e-9)  # exactly the live neurons
        assert ly["recall"] == 1.0  # nothing fires outside them
        assert 0.35 <= ly["precision"] <= 0.65, ly  # about half of them fire


def test_token_bytes_counts_what_each_mode_reads(bench):
    E, FF, NH, NKV, NL, NV, _ = bench.SHAPES["relullama-7b"]
    tb = bench.token_bytes("relullama-7b", 1024, computed=0.2, fired=0.1)
    row = E * 18 / 32  # one Q4_0 row of n_embd
    fixed = NL * 4 * E * row + NV * E * 210 / 256 + row
    assert tb["dense"] == pytest.approx(fixed + NL * FF * row * 2.1)
    assert tb["sparse"] == pytest.approx(fixed + NL * ((E + FF) * 1024 * 18 / 32 + FF * row * 0.5))
