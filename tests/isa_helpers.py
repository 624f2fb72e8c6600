"""SIMD paths for kernel tests: which ones this CPU and build can run, and a fixture over them."""
from __future__ import annotations

import gguf
import pytest

from powerinfer_py._lib import check, lib

ISA_NAMES = {1: "scalar", 2: "avx2", 3: "avx512"}


def available_isas() -> list[int]:
    before = lib.pi_cpu_get_isa()
    isas = [i for i in ISA_NAMES if lib.pi_cpu_set_isa(i) == 0]
    check(lib.pi_cpu_set_isa(before))
    return isas


ISAS = available_isas()


@pytest.fixture(params=ISAS, ids=[ISA_NAMES[i] for i in ISAS])
def isa(request):
    """Runs the test once per SIMD path, restoring the path in use afterwards."""
    before = lib.pi_cpu_get_isa()
    check(lib.pi_cpu_set_isa(request.param))
    yield request.param
    check(lib.pi_cpu_set_isa(before))


def block_size(name: str) -> int:
    """Elements per block of a type named as in gguf.GGMLQuantizationType ("Q4_K")."""
    return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]][0]
