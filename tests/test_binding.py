"""The cffi declarations must match the header and the compiled library exactly.

cffi's ABI mode trusts _cdef.py blindly, so three things are checked: the committed declarations
are what tools/gen_cdef.py makes from the header; every declared function exists in the library;
and every struct's size and every field's offset, as cffi computes them, equal what the C compiler
computed when it built the library (pi_struct_layout).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import powerinfer_py
from powerinfer_py._cdef import CDEF
from powerinfer_py._lib import ffi, lib

ROOT = Path(__file__).resolve().parents[1]


def test_cdef_is_generated_from_current_header():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_cdef.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def declared_functions() -> list[str]:
    return re.findall(r"\b(pi_\w+)\s*\(", CDEF)


def test_every_declared_function_is_exported():
    names = sorted(set(declared_functions()) - {"pi_log_callback", "pi_progress_callback"})
    assert len(names) > 60
    missing = []
    for name in names:
        try:
            getattr(lib, name)
        except AttributeError:
            missing.append(name)
    assert not missing, f"declared in the header but not exported by {powerinfer_py.LIB_PATH}: {missing}"


def declared_structs() -> list[str]:
    return re.findall(r"typedef struct (\w+) \{", CDEF)


def test_struct_layouts_match_the_compiler():
    structs = declared_structs()
    assert {"pi_model_params", "pi_context_params", "pi_tensor_info", "pi_timings"} <= set(structs)
    for name in structs:
        c_size = lib.pi_struct_layout(name.encode())
        assert c_size != -1, f"{name} is missing from pi_struct_layout (src/api/info_api.cpp)"
        assert ffi.sizeof(name) == c_size, f"sizeof({name}): cffi {ffi.sizeof(name)}, C {c_size}"
        for field, _ in ffi.typeof(name).fields:
            c_off = lib.pi_struct_layout(f"{name}.{field}".encode())
            assert c_off != -1, f"{name}.{field} is missing from pi_struct_layout"
            assert ffi.offsetof(name, field) == c_off, f"offsetof({name}, {field})"


def test_default_params_carry_their_size():
    assert lib.pi_model_default_params().struct_size == ffi.sizeof("pi_model_params")
    assert lib.pi_context_default_params().struct_size == ffi.sizeof("pi_context_params")


def test_version_matches_library():
    assert ffi.string(lib.pi_version()).decode() == powerinfer_py.__version__
    assert lib.pi_abi_version() == lib.PI_ABI_VERSION


def test_system_info_reports_build_and_cpu():
    info = powerinfer_py.system_info()
    assert info["version"] == powerinfer_py.__version__
    assert "cpu" in info["backends"]
    assert "scalar" in info["simd_built"]
    assert info["simd_in_use"] in info["simd_built"]
    for flag in ("avx2", "avx512f", "avx512_vnni", "neon"):
        assert isinstance(info["cpu"][flag], bool)
    if info["cpu"]["avx2"] and info["cpu"]["fma"]:
        assert "avx2" in info["simd_built"]


def test_status_names_and_last_error():
    assert ffi.string(lib.pi_status_str(lib.PI_ERR_FORMAT)).decode() == "PI_ERR_FORMAT"
    assert ffi.string(lib.pi_status_str(-99)).decode() == "PI_ERR_UNKNOWN"


def test_no_pending_placeholders_ship():
    pending = ROOT / "vendor" / "powerinfer-core" / "src" / "pending"
    leftovers = sorted(p.name for p in pending.glob("*.cpp")) if pending.exists() else []
    assert not leftovers, f"link placeholders still in the build: {leftovers}"
