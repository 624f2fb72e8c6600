"""The powerinfer-py command: run (the README's main job), quantize, perplexity, info."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from powerinfer_py import assets

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "powerinfer_py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_run_generates_and_reports_speed(smollm2_path):
    r = cli("run", "-m", str(smollm2_path), "-n", "12", "--temperature", "0", "-t", "2",
            "The capital of France is")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("The capital of France is")
    assert "Paris" in r.stdout  # greedy SmolLM2 answers this one
    assert "tokens/s" in r.stderr


def test_run_with_bad_model_path_is_a_clear_error(tmp_path):
    r = cli("run", "-m", str(tmp_path / "missing.gguf"), "hi")
    assert r.returncode == 2
    assert "missing.gguf" in r.stderr and "error" in r.stderr
    assert "Traceback" not in r.stderr


def test_quantize_then_run_the_result(smollm2_path, tmp_path):
    dst = tmp_path / "smollm2.q8_0.gguf"
    r = cli("quantize", str(smollm2_path), str(dst), "q8_0")
    assert r.returncode == 0, r.stderr
    assert dst.stat().st_size > 100_000_000  # Q8_0 of 135M parameters
    r = cli("run", "-m", str(dst), "-n", "8", "--temperature", "0", "The capital of France is")
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout


def test_perplexity_command(smollm2_path, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(assets.sample_text(8000), encoding="utf-8")
    r = cli("perplexity", "-m", str(smollm2_path), "-f", str(text), "-c", "128", "--chunks", "2")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("perplexity ") and "2 chunks of 128" in line
    assert 1.0 < float(line.split()[1]) < 100.0


def test_info_prints_system_info_json():
    r = cli("info")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert "cpu" in info["backends"] and info["library"]


def test_run_with_the_gpu_split_on_the_standin(tmp_path):
    """run --offload-device cpu-standin --gpu-index: the same greedy text as without the split,
    and a line saying what went where; a CUDA request in a CPU build fails with the reason."""
    import numpy as np

    from powerinfer_py._offload import cuda_built
    from powerinfer_py.tools.gpuidx import write_gpuidx

    rng = np.random.default_rng(1)
    gi = tmp_path / "split.gpuidx"
    write_gpuidx(gi, [rng.random(3072) < 0.4 for _ in range(6)], vram_capacity=0)
    args = ("-n", "16", "--temperature", "0", "-t", "2", "from django.db import models")
    plain = cli("run", *args)
    split = cli("run", "--offload-device", "cpu-standin", "--gpu-index", str(gi), *args)
    assert plain.returncode == 0 and split.returncode == 0, split.stderr
    assert split.stdout == plain.stdout
    assert "cpu-standin:" in split.stderr and "of 18432 FFN neurons" in split.stderr
    if not cuda_built():
        r = cli("run", "--offload-device", "cuda", "--gpu-index", str(gi), *args)
        assert r.returncode != 0 and "no CUDA backend" in r.stderr
        assert "Traceback" not in r.stderr
