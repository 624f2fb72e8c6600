"""The weights in 2 MB pages (vendor/powerinfer-core/src/core/huge_pages.h), Linux only.

- use_mmap=False reads the weights into anonymous memory that starts on a 2 MB boundary and is
  advised for transparent huge pages (VmFlags "hg" in /proc/self/smaps); use_mmap=True advises
  the file mapping the same way. Both give the same logits, bit for bit.
- A model file of 8 MB or more written by the engine (here by quantize) leaves the page cache once
  written, so that the next mapping reads it back in 2 MB folios: checked with mincore.
Whether the kernel then hands out huge pages depends on its settings and free memory, so only
the advice and the page-cache state are asserted here; the speed is measured by
benchmarks/bench_speed_report.py.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import sys

import numpy as np
import pytest

from powerinfer_py import quantize
from powerinfer_py._context import Context
from powerinfer_py._model import Model

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="smaps and mincore are Linux's")

HUGE = 2 << 20


def smaps_regions():
    """[(start, end, path, vmflags)] of this process's mappings."""
    regions, cur = [], None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = [lo, hi, head[5] if len(head) > 5 else "", []]
                regions.append(cur)
            elif line.startswith("VmFlags:") and cur is not None:
                cur[3] = line.split()[1:]
    return [tuple(r) for r in regions]


def weights_bytes(model: Model) -> int:
    return sum(t.n_bytes for t in model.tensors)


def test_read_weights_are_advised_for_huge_pages(smollm2_path):
    with Model(smollm2_path, use_mmap=False) as m:
        need = weights_bytes(m)
        hits = [r for r in smaps_regions() if not r[2] and r[1] - r[0] >= need and "hg" in r[3]]
        assert hits, "no anonymous region of the weights' size advised for huge pages"
        assert any(lo % HUGE == 0 and (hi - lo) % HUGE == 0 for lo, hi, _, _ in hits)


def test_mapped_file_is_advised_for_huge_pages(smollm2_path):
    with Model(smollm2_path, use_mmap=True):
        maps = [r for r in smaps_regions() if r[2] == str(smollm2_path)]
        assert maps and all("hg" in r[3] for r in maps)


def test_read_and_mapped_weights_give_the_same_logits(smollm2_path):
    ids = [1, 504, 3458, 282, 260, 3060, 314, 4533]
    got = []
    for use_mmap in (True, False):
        with Model(smollm2_path, use_mmap=use_mmap) as m, Context(m, n_ctx=64, n_threads=2) as ctx:
            ctx.decode(ids)
            got.append(np.array(ctx.logits(), copy=True))
    np.testing.assert_array_equal(got[0], got[1])


def resident_fraction(path) -> float:
    """Share of the file's pages in the page cache (mincore over a private mapping, which touches
    nothing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        buf = ctypes.c_char.from_buffer(mm)
        n_pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vec = (ctypes.c_ubyte * n_pages)()
        rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(buf)), ctypes.c_size_t(size), vec)
        del buf
        assert rc == 0, os.strerror(ctypes.get_errno())
        return sum(v & 1 for v in vec) / n_pages
    finally:
        mm.close()


def filesystem_type(path) -> str:
    """The type of the filesystem holding path (the longest mount point above it)."""
    best, kind = "", ""
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            mnt = parts[1].replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    return kind


def test_written_model_file_leaves_the_page_cache(smollm2_path, tmp_path):
    if filesystem_type(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip(f"{tmp_path} is in memory ({filesystem_type(tmp_path)}): its pages cannot leave the cache")
    out = quantize(smollm2_path, tmp_path / "smollm2.q8_0.gguf", "Q8_0", n_threads=2)
    assert os.path.getsize(out) > 8 << 20
    # Dropping clean pages is a request the kernel may decline in part (pages under writeback);
    # measured: 0% resident after the write, 100% for the same file copied with shutil.
    assert resident_fraction(out) < 0.25
    with Model(out) as m:  # and it still reads back whole
        assert len(m.tensors) > 0
