"""Builds libpowerinfer with CMake and puts it inside the package (powerinfer_py/lib/).

CMAKE_ARGS is honoured as llama-cpp-python honours it, e.g.
    CMAKE_ARGS="-DPOWERINFER_CUDA=ON" pip install .
The library is a plain shared library loaded by cffi in ABI mode, not a Python extension module,
so one build serves every Python version.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CORE = ROOT / "vendor" / "powerinfer-core"
LIB_NAME = {"darwin": "libpowerinfer.dylib", "win32": "powerinfer.dll"}.get(sys.platform, "libpowerinfer.so")


class CMakeLibrary(Extension):
    def __init__(self) -> None:
        super().__init__("powerinfer_py.lib.libpowerinfer", sources=[])


class BuildWithCMake(build_ext):
    def get_ext_filename(self, ext_name: str) -> str:
        # libpowerinfer.so (under its package folders), without the CPython ABI suffix.
        parts = ext_name.split(".")
        return os.path.join(*parts[:-1], LIB_NAME)

    def build_extension(self, ext: Extension) -> None:
        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = Path(self.build_temp).resolve() / "powerinfer-core"
        build_dir.mkdir(parents=True, exist_ok=True)
        cmake = shutil.which("cmake") or "cmake"
        configure = [
            cmake, "-S", str(CORE), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        configure += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
        subprocess.run(configure, check=True)
        subprocess.run([cmake, "--build", str(build_dir), "--parallel", jobs], check=True)
        built = build_dir / LIB_NAME
        if not built.is_file():
            raise RuntimeError(f"CMake finished but {built} is missing")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target)
        # An editable install copies the library into the source tree afterwards: make its folder.
        (ROOT / "powerinfer_py" / "lib").mkdir(exist_ok=True)


setup(
    ext_modules=[CMakeLibrary()],
    cmdclass={"build_ext": BuildWithCMake},
)
