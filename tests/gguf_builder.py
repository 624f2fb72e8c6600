"""Builds GGUF files byte by byte, so tests control every field (versions, magics, nested arrays,
bad counts). Independent of both our C reader and the gguf package's writer.

    data = build([("general.architecture", STRING, "llama")],
                 [Tensor("w", (32, 2), F32, b"\\0" * 256)])
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

# Metadata value types (GGUF ids).
U8, I8, U16, I16, U32, I32, F32V, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)

_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32V: "<f", BOOL: "<?",
        U64: "<Q", I64: "<q", F64: "<d"}

# Tensor types used in tests: (id, elements per block, bytes per block).
F32 = (0, 1, 4)
F16 = (1, 1, 2)
Q4_0 = (2, 32, 18)
Q8_0 = (8, 32, 34)


def gstr(s) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def value(vtype: int, v) -> bytes:
    """Bytes of one value. Arrays: v = (element type, [elements])."""
    if vtype == STRING:
        return gstr(v)
    if vtype == ARRAY:
        etype, items = v
        out = struct.pack("<IQ", etype, len(items))
        return out + b"".join(value(etype, x) for x in items)
    return struct.pack(_FMT[vtype], v)


def render(vtype: int, v) -> str:
    """The string our reader should show for a value (llama-cpp-python's metadata style)."""
    if vtype == STRING:
        return v if isinstance(v, str) else v.decode("utf-8", "replace")
    if vtype == ARRAY:
        etype, items = v
        parts = []
        for x in items:
            if etype == STRING:
                s = x if isinstance(x, str) else x.decode("utf-8", "replace")
                parts.append('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
            else:
                parts.append(render(etype, x))
        return "[" + ", ".join(parts) + "]"
    if vtype == BOOL:
        return "true" if v else "false"
    if vtype in (F32V, F64):
        if vtype == F32V:
            v = struct.unpack("<f", struct.pack("<f", v))[0]
        return "%f" % v
    return str(int(v))


@dataclass
class Tensor:
    name: str
    shape: Tuple[int, ...]  # GGUF order, shape[0] contiguous
    ttype: Tuple[int, int, int]
    data: bytes = b""
    offset: Optional[int] = None  # None: laid out in order with alignment padding
    type_id: Optional[int] = None  # overrides ttype[0] in the table (unknown types)

    def n_bytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n // self.ttype[1] * self.ttype[2]


@dataclass
class Layout:
    """Offsets of interesting fields in a built file (for targeted corruption)."""
    kv_starts: List[int] = field(default_factory=list)
    tensor_info_starts: List[int] = field(default_factory=list)
    data_offset: int = 0


def build(kvs: Sequence[Tuple[str, int, object]], tensors: Sequence[Tensor] = (), *, version: int = 3,
          magic: bytes = b"GGUF", alignment: int = 32, n_kv: Optional[int] = None,
          n_tensors: Optional[int] = None, layout: Optional[Layout] = None) -> bytes:
    out = bytearray(magic + struct.pack("<I", version))
    out += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors,
                       len(kvs) if n_kv is None else n_kv)
    for key, vtype, v in kvs:
        if layout is not None:
            layout.kv_starts.append(len(out))
        out += gstr(key) + struct.pack("<I", vtype) + value(vtype, v)
    offsets = []
    pos = 0
    for t in tensors:
        off = pos if t.offset is None else t.offset
        offsets.append(off)
        pos = max(pos, off + (len(t.data) + alignment - 1) // alignment * alignment)
    for t, off in zip(tensors, offsets):
        if layout is not None:
            layout.tensor_info_starts.append(len(out))
        out += gstr(t.name) + struct.pack("<I", len(t.shape))
        out += b"".join(struct.pack("<Q", d) for d in t.shape)
        out += struct.pack("<IQ", t.ttype[0] if t.type_id is None else t.type_id, off)
    out += b"\0" * (-len(out) % alignment)
    data_offset = len(out)
    if layout is not None:
        layout.data_offset = data_offset
    for t, off in zip(tensors, offsets):
        if off >= 1 << 32:
            continue  # a deliberately absurd offset: no data written for it
        end = data_offset + off
        if len(out) < end:
            out += b"\0" * (end - len(out))
        out[end:end + len(t.data)] = t.data
    out += b"\0" * (-(len(out) - data_offset) % alignment)
    return bytes(out)


def f32_tensor(name: str, shape: Tuple[int, ...]) -> Tensor:
    n = 1
    for d in shape:
        n *= d
    return Tensor(name, shape, F32, struct.pack(f"<{n}f", *[float(i) for i in range(n)]))
