"""Mutation fuzzing of the GGUF reader through the Python binding.

    python tests/fuzz/fuzz_binding.py SEED.gguf --cases 300 --seed 1 [--full-every 3]

Each case mutates a copy of SEED (bit flips, bytes set to boundary values, length and count
fields set huge, a run of bytes shifted by one, or the whole file truncated) and opens it with
``Model(vocab_only=True)`` and, every --full-every cases, with a full load (use_mmap alternating).
Every outcome must be success or a ValueError; anything else is a failure. A crash kills this
process: the last "case N:" line printed (flushed before each load) tells which case did it.
Exit status 0 when every case passed. Used by tests/test_gguf_reader.py (in a subprocess) and
by hand for longer runs; tests/fuzz/run_fuzz.sh runs the C harness under ASan+UBSan.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from powerinfer_py._model import Model  # noqa: E402


def header_fields(data: bytes):
    """Walks a GGUF header and returns (fields, header_end): fields are (offset, size) of every
    count, length, type and dimension field, the places where corruption is most interesting."""
    fields = []
    pos = 8
    fields.append((4, 4))  # version

    def u32():
        nonlocal pos
        v = struct.unpack_from("<I", data, pos)[0]
        fields.append((pos, 4))
        pos += 4
        return v

    def u64():
        nonlocal pos
        v = struct.unpack_from("<Q", data, pos)[0]
        fields.append((pos, 8))
        pos += 8
        return v

    def string():
        nonlocal pos
        n = u64()
        pos += n

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def val(t, record_strings=True):
        nonlocal pos
        if t == 8:
            if record_strings:
                string()
            else:
                pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        elif t == 9:
            et = u32()
            n = u64()
            # Only the first few elements' fields: 100k string lengths would drown the rest.
            for j in range(n):
                val(et, record_strings=j < 8)
        else:
            pos += sizes[t]

    n_tensors = u64()
    n_kv = u64()
    for _ in range(n_kv):
        string()
        val(u32())
    for _ in range(n_tensors):
        string()
        nd = u32()
        for _ in range(nd):
            u64()
        u32()
        u64()
    return fields, pos


BOUNDARY_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
HUGE_U64 = (2**64 - 1, 2**63 - 1, 2**63, 2**32, 2**32 - 1, 2**40, 0)


def mutate(rng: random.Random, data: bytes, fields, header_end: int):
    """Returns (description, mutated bytes of the header region or None, truncate_to or None)."""
    kind = rng.random()
    head = bytearray(data[:header_end])
    if kind < 0.10:
        cut = rng.choice([rng.randrange(0, header_end), rng.randrange(0, len(data))])
        return f"truncate to {cut}", None, cut
    if kind < 0.35:
        off, size = rng.choice(fields)
        if size == 8:
            v = rng.choice(HUGE_U64 + (struct.unpack_from("<Q", head, off)[0] + rng.choice((-1, 1)),))
            head[off:off + 8] = struct.pack("<Q", v % 2**64)
        else:
            v = rng.choice((0, 1, 5, 9, 12, 13, 31, 99, 2**31, 2**32 - 1, rng.randrange(2**32)))
            head[off:off + 4] = struct.pack("<I", v)
        return f"field @{off} size {size} = {v}", bytes(head), None
    if kind < 0.60:
        near = rng.random() < 0.5
        off = rng.choice(fields)[0] + rng.randrange(-4, 12) if near else rng.randrange(header_end)
        off = min(max(off, 0), header_end - 1)
        bit = rng.randrange(8)
        head[off] ^= 1 << bit
        return f"flip bit {bit} @{off}", bytes(head), None
    if kind < 0.80:
        off = rng.randrange(header_end) if rng.random() < 0.5 else rng.randrange(min(header_end, 4096))
        head[off] = rng.choice(BOUNDARY_BYTES)
        return f"set byte @{off} = {head[off]}", bytes(head), None
    # Shift [p, q) one byte (an insertion at p and a deletion at q): same total length.
    p = rng.randrange(header_end - 1)
    q = min(header_end, p + rng.randrange(1, 4096))
    if rng.random() < 0.5:
        head[p:q] = bytes([rng.randrange(256)]) + head[p:q - 1]
        return f"insert @{p} delete @{q - 1}", bytes(head), None
    head[p:q] = head[p + 1:q] + bytes([rng.randrange(256)])
    return f"delete @{p} insert @{q - 1}", bytes(head), None


def try_load(path: str, **kw) -> str:
    try:
        with Model(path, **kw) as m:
            m.metadata
            m.tensors
        return "ok"
    except ValueError as e:
        return "ValueError: " + str(e)[:100]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("seed_file")
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full-every", type=int, default=3, help="also do a full load every N cases")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    data = Path(args.seed_file).read_bytes()
    fields, header_end = header_fields(data)
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(dir=args.workdir, prefix="gguf-fuzz-")
    full = os.path.join(tmp, "case.gguf")
    cut_path = os.path.join(tmp, "cut.gguf")
    shutil.copyfile(args.seed_file, full)
    original_head = data[:header_end]
    failures = 0
    outcomes = {"ok": 0, "ValueError": 0}
    try:
        with open(full, "r+b") as fh:
            for case in range(args.cases):
                desc, head, cut = mutate(rng, data, fields, header_end)
                if cut is not None:
                    with open(cut_path, "wb") as c:
                        c.write(data[:cut])
                    path = cut_path
                else:
                    fh.seek(0)
                    fh.write(head)
                    fh.flush()
                    path = full
                print(f"case {case}: {desc}", flush=True)
                loads = [dict(vocab_only=True)]
                if args.full_every > 0 and case % args.full_every == 0:
                    loads.append(dict(vocab_only=False, use_mmap=(case // args.full_every) % 2 == 0))
                for kw in loads:
                    try:
                        result = try_load(path, **kw)
                    except Exception as e:  # not a ValueError: a failure of the contract
                        failures += 1
                        print(f"  FAIL {kw}: {type(e).__name__}: {e}", flush=True)
                        continue
                    outcomes[result.split(":")[0]] += 1
                if cut is None:
                    fh.seek(0)
                    fh.write(original_head)
                    fh.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cases={args.cases} loads_ok={outcomes['ok']} value_errors={outcomes['ValueError']} "
          f"failures={failures}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
