"""PowerInfer's GPU index file, ``<model>.generated.gpuidx``: which FFN neurons of each layer live
on the GPU. A GGUF (written with gguf's GGUFWriter) whose first four bytes are ``PWRI`` and version
u32 3; keys ``general.architecture = "generic.gpu_index"``, ``generic.gpu_index.block_count``
(u32), ``split.vram_capacity`` (u64); tensors in the order blk.0.gpu_idx (I32 [n_ff], 1 = GPU),
blk.0.gpu_bucket (I32, ascending ids of the GPU neurons), blk.1.gpu_idx, ... PowerInfer's loader
reads them by position, not by name, and needs n_tensors == 2 * block_count. A layer with no GPU
neuron gets a zero-length gpu_bucket.
"""
from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

GPUIDX_ARCH = "generic.gpu_index"
GPUIDX_SUFFIX = ".generated.gpuidx"
PWRI = b"PWRI"


def write_gpuidx(path, masks: Sequence[np.ndarray], vram_capacity: int, progress: bool = False) -> None:
    """Writes PowerInfer's GPU index (module docstring) atomically: PowerInfer trusts any file
    that exists at that path, so a half-written one must never be there."""
    import gguf
    from tqdm.auto import tqdm

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gpuidx-", dir=folder)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, GPUIDX_ARCH)
        for layer, mask in enumerate(tqdm(masks, desc="writing gpuidx", unit="layer", disable=not progress)):
            mask = np.asarray(mask, dtype=bool)
            writer.add_tensor(f"blk.{layer}.gpu_idx", mask.astype(np.int32))
            writer.add_tensor(f"blk.{layer}.gpu_bucket", np.flatnonzero(mask).astype(np.int32))
        writer.add_block_count(len(masks))  # generic.gpu_index.block_count, u32
        writer.add_uint64("split.vram_capacity", int(vram_capacity))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "r+b") as f:  # PowerInfer's magic and version, as its export_split does
            f.write(PWRI)
            f.write(struct.pack("<I", 3))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class GpuIndex:
    magic: bytes
    version: int
    metadata: Dict[str, object]
    masks: List[np.ndarray]
    buckets: List[np.ndarray]

    @property
    def vram_capacity(self) -> Optional[int]:
        return self.metadata.get("split.vram_capacity")


_SCALAR_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                   10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY, _I32 = 8, 9, 26


class _Cursor:
    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated GPU index file (needs {n} bytes at offset {self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.unpack("<Q")).decode("utf-8", "replace")

    def value(self, vtype: int):
        if vtype in _SCALAR_FORMATS:
            return self.unpack(_SCALAR_FORMATS[vtype])
        if vtype == _GGUF_STRING:
            return self.string()
        if vtype == _GGUF_ARRAY:
            etype, n = self.unpack("<I"), self.unpack("<Q")
            return [self.value(etype) for _ in range(n)]
        raise ValueError(f"{self.path}: unknown GGUF value type {vtype} at offset {self.pos}")


def read_gpuidx_file(path) -> GpuIndex:
    """Parses a GPU index the way PowerInfer's loader does: tensors by position (2L, 2L+1), and
    checks n_tensors == 2 * block_count, I32 types, and that each bucket lists its mask's ids."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such GPU index file")
    data = Path(path).read_bytes()
    cur = _Cursor(data, path)
    magic = cur.take(4)
    if magic not in (PWRI, b"GGUF"):
        raise ValueError(f"{path}: magic {magic!r} is neither PWRI nor GGUF")
    version, n_tensors, n_kv = cur.unpack("<I"), cur.unpack("<Q"), cur.unpack("<Q")
    if version != 3:
        raise ValueError(f"{path}: GGUF version {version}, expected 3")
    metadata = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = cur.value(cur.unpack("<I"))
    n_layer = metadata.get(f"{GPUIDX_ARCH}.block_count")
    if metadata.get("general.architecture") != GPUIDX_ARCH or not isinstance(n_layer, int):
        raise ValueError(f"{path}: not a GPU index (general.architecture="
                         f"{metadata.get('general.architecture')!r}, block_count={n_layer!r})")
    if n_tensors != 2 * n_layer:
        raise ValueError(f"{path}: {n_tensors} tensors for {n_layer} layers; PowerInfer needs 2 per layer")
    infos = []
    for _ in range(n_tensors):
        name, n_dims = cur.string(), cur.unpack("<I")
        dims = [cur.unpack("<Q") for _ in range(n_dims)]
        ttype, offset = cur.unpack("<I"), cur.unpack("<Q")
        if ttype != _I32 or n_dims != 1:
            raise ValueError(f"{path}: tensor {name!r} has type {ttype} and {n_dims} dims, expected 1-D I32")
        infos.append((name, dims[0], offset))
    alignment = int(metadata.get("general.alignment", 32))
    base = -(-cur.pos // alignment) * alignment

    def tensor(i: int) -> np.ndarray:
        name, n, offset = infos[i]
        start = base + offset
        if start + 4 * n > len(data):
            raise ValueError(f"{path}: truncated GPU index file (tensor {name!r} runs past the end)")
        return np.frombuffer(data, dtype="<i4", count=n, offset=start).copy()

    masks, buckets = [], []
    for layer in range(n_layer):
        idx, bucket = tensor(2 * layer), tensor(2 * layer + 1)
        if not np.all((idx == 0) | (idx == 1)):
            raise ValueError(f"{path}: {infos[2 * layer][0]} holds values other than 0 and 1")
        mask = idx.astype(bool)
        if not np.array_equal(bucket, np.flatnonzero(mask)):
            raise ValueError(f"{path}: {infos[2 * layer + 1][0]} is not the sorted list of GPU neurons "
                             f"of {infos[2 * layer][0]}")
        masks.append(mask)
        buckets.append(bucket)
    return GpuIndex(magic, version, metadata, masks, buckets)


def read_gpuidx(path) -> List[np.ndarray]:
    """The GPU masks (bool [n_ff] per layer) of a .generated.gpuidx file."""
    return read_gpuidx_file(path).masks
