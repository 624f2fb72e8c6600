"""Build-system behaviour that users meet: CMake options and finding the library."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "vendor" / "powerinfer-core"


def cmake() -> str:
    exe = shutil.which("cmake")
    if exe is None:
        pytest.skip("cmake is not on PATH")
    return exe


@pytest.mark.skipif(sys.platform == "darwin", reason="Metal is available on macOS")
def test_metal_on_non_apple_host_stops_with_clear_message(tmp_path):
    r = subprocess.run([cmake(), "-S", str(CORE), "-B", str(tmp_path), "-DPOWERINFER_METAL=ON"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "POWERINFER_METAL=ON needs macOS" in r.stderr


def test_cuda_without_nvcc_stops_with_clear_message(tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin", CUDACXX="/nonexistent/nvcc")
    r = subprocess.run([cmake(), "-S", str(CORE), "-B", str(tmp_path), "-DPOWERINFER_CUDA=ON"],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert "nvcc" in r.stderr or "CUDA" in r.stderr


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **env))


def test_lib_path_override_to_missing_file_is_a_clear_import_error(tmp_path):
    r = run_python("import powerinfer_py", POWERINFER_LIB_PATH=str(tmp_path / "nope.so"))
    assert r.returncode != 0
    assert "POWERINFER_LIB_PATH" in r.stderr and "no library" in r.stderr


def test_lib_path_override_to_a_folder_is_used():
    import powerinfer_py

    folder = powerinfer_py.LIB_PATH.parent
    r = run_python("import powerinfer_py; print(powerinfer_py.LIB_PATH)", POWERINFER_LIB_PATH=str(folder))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(powerinfer_py.LIB_PATH)


def test_sdist_carries_the_engine_sources_and_no_binaries(tmp_path):
    """`pip install powerinfer-py` from a source distribution builds the engine with CMake, so the
    sdist must hold every C/C++ source, header and CMake file under vendor/powerinfer-core (as
    git tracks them), the bundled model, and no built library (MANIFEST.in)."""
    import tarfile

    r = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (archive,) = list(tmp_path.glob("*.tar.gz"))
    with tarfile.open(archive) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    tracked = subprocess.run(["git", "ls-files", "vendor/powerinfer-core"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    missing = [f for f in tracked if f not in names]
    assert not missing, missing[:10]
    assert "powerinfer_py/models/relu-django-18m.q4.powerinfer.gguf" in names
    assert not [n for n in names if n.endswith((".so", ".dylib", ".dll", ".o"))]
