"""Tier 0: finds and opens libpowerinfer with cffi (ABI mode) and turns statuses into exceptions.

The declarations come from _cdef.py, generated from the C header. The library is looked for in
``$POWERINFER_LIB_PATH`` (a file, or a folder holding it) and then in ``powerinfer_py/lib/``,
where ``pip install`` puts the CMake build.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cffi

from ._cdef import CDEF
from .errors import STATUS_ERRORS, PowerInferError

ffi = cffi.FFI()
ffi.cdef(CDEF)

_LIB_NAMES = {
    "linux": "libpowerinfer.so",
    "darwin": "libpowerinfer.dylib",
    "win32": "powerinfer.dll",
}


def _library_path() -> Path:
    name = _LIB_NAMES.get(sys.platform, "libpowerinfer.so")
    override = os.environ.get("POWERINFER_LIB_PATH")
    if override:
        p = Path(override)
        if p.is_dir():
            p = p / name
        if not p.is_file():
            raise ImportError(f"POWERINFER_LIB_PATH={override!r}: no library {name} there")
        return p
    p = Path(__file__).resolve().parent / "lib" / name
    if not p.is_file():
        raise ImportError(
            f"libpowerinfer was not found at {p}. Install the package with `pip install .` "
            "(it builds the library with CMake), or point POWERINFER_LIB_PATH at a build."
        )
    return p


LIB_PATH = _library_path()
lib = ffi.dlopen(str(LIB_PATH))

if lib.pi_abi_version() != lib.PI_ABI_VERSION:
    raise ImportError(
        f"{LIB_PATH} has ABI version {lib.pi_abi_version()}, this package expects {lib.PI_ABI_VERSION}; "
        "rebuild the library (pip install .)"
    )


def last_error() -> str:
    return ffi.string(lib.pi_last_error()).decode("utf-8", "replace")


def check(status: int, context: str = "") -> None:
    """Raises the exception class of a failing status, with the library's message."""
    if status == 0:
        return
    cls = STATUS_ERRORS.get(status, PowerInferError)
    message = last_error() or ffi.string(lib.pi_status_str(status)).decode()
    if context:
        message = f"{context}: {message}"
    raise cls(message)


def cstr(p) -> str:
    """A C string owned by the library, as str (None for NULL)."""
    if p == ffi.NULL:
        return None
    return ffi.string(p).decode("utf-8", "replace")
