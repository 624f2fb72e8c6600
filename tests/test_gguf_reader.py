"""The GGUF reader (vendor/powerinfer-core/src/gguf) through the tier-1 Model class.

- SmolLM2-135M-Instruct Q4_1 read by us and by the gguf package: every key and value, every
  tensor's name, shape, type and offset, and the data section's offset are equal.
- Synthetic files written by the gguf package's GGUFWriter (v3) and by hand (tests/gguf_builder.py):
  v2, the PWRI magic, every metadata type including nested arrays, the alignment key.
- Every bad-file case raises a ValueError subclass naming the file and the cause.
- A sample of random mutations of SmolLM2 (tests/fuzz/fuzz_binding.py) in a subprocess: each load
  succeeds or raises ValueError, and the process never crashes.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gguf_builder as gb
from powerinfer_py._model import Model, TensorInfo
from powerinfer_py.errors import FileFormatError, ModelFileError, UnsupportedError

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# SmolLM2 against the gguf package
# ---------------------------------------------------------------------------------------------


def render_gguf_field(field) -> str:
    """A gguf.ReaderField rendered the way our reader renders values (llama-cpp-python's style)."""
    import gguf

    VT = gguf.GGUFValueType

    def scalar(vtype, arr) -> str:
        v = arr[0]
        if vtype == VT.BOOL:
            return "true" if bool(v) else "false"
        if vtype in (VT.FLOAT32, VT.FLOAT64):
            return "%f" % float(v)
        return str(int(v))

    t0 = field.types[0]
    if t0 == VT.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    if t0 != VT.ARRAY:
        return scalar(t0, field.parts[field.data[0]])
    et = field.types[1] if len(field.types) > 1 else None
    items = []
    for idx in field.data:
        part = field.parts[idx]
        if et == VT.STRING:
            s = bytes(part).decode("utf-8", "replace")
            items.append('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            items.append(scalar(et, part))
    return "[" + ", ".join(items) + "]"


@pytest.fixture(scope="module")
def smollm2_reader(smollm2_path):
    gguf = pytest.importorskip("gguf")
    return gguf.GGUFReader(str(smollm2_path))


@pytest.fixture(scope="module")
def smollm2_model(smollm2_path):
    with Model(smollm2_path, vocab_only=True) as m:
        yield m


def test_smollm2_metadata_equals_gguf_package(smollm2_model, smollm2_reader):
    expected = {k: render_gguf_field(f) for k, f in smollm2_reader.fields.items() if not k.startswith("GGUF.")}
    got = smollm2_model.metadata
    assert list(got) == list(expected)  # every key, in file order
    for key, value in expected.items():
        assert got[key] == value, key
    # Spot checks against values known from the model card and llama.cpp's rendering.
    assert got["general.architecture"] == "llama"
    assert got["llama.embedding_length"] == "576"
    assert got["llama.rope.freq_base"] == "100000.000000"
    assert got["llama.attention.layer_norm_rms_epsilon"] == "0.000010"
    assert got["tokenizer.ggml.add_bos_token"] == "false"
    assert got["tokenizer.ggml.tokens"].startswith('["<|endoftext|>", "<|im_start|>"')
    assert smollm2_model.metadata_type("tokenizer.ggml.tokens") == (gb.ARRAY, gb.STRING, 49152)
    assert smollm2_model.metadata_type("llama.block_count") == (gb.U32, None, 0)
    with pytest.raises(KeyError):
        smollm2_model.metadata_type("no.such.key")


def test_smollm2_tensors_equal_gguf_package(smollm2_model, smollm2_reader):
    ours = smollm2_model.tensors
    theirs = smollm2_reader.tensors
    assert len(ours) == len(theirs) == 272
    for a, b in zip(ours, theirs):
        assert isinstance(a, TensorInfo)
        assert a.name == b.name
        assert a.shape == tuple(int(x) for x in b.shape)
        assert a.type == int(b.tensor_type)
        assert a.type_name == b.tensor_type.name
        assert a.offset == int(b.field.parts[-1][0])  # relative offset as stored
        assert smollm2_model.data_offset + a.offset == int(b.data_offset)
        assert a.n_bytes == int(b.n_bytes)
    assert smollm2_model.data_offset == smollm2_reader.data_offset
    assert ours[0].name == "token_embd.weight" and ours[0].shape == (576, 49152) and ours[0].type_name == "Q8_0"


def test_smollm2_file_facts(smollm2_model):
    assert smollm2_model.gguf_version == 3
    assert smollm2_model.is_sparse_file is False
    assert smollm2_model.alignment == 32
    assert smollm2_model.data_offset % 32 == 0
    assert smollm2_model.arch == "llama"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_vocab_only_maps_no_weights(smollm2_path):
    """A vocab-only load neither maps the file nor keeps it open (other tests' readers may)."""

    def mapped_and_open():
        target = str(Path(smollm2_path).resolve())
        maps = Path("/proc/self/maps").read_text().count(target)
        fds = sum(os.path.realpath(f"/proc/self/fd/{fd}") == target for fd in os.listdir("/proc/self/fd"))
        return maps, fds

    before = mapped_and_open()
    with Model(smollm2_path, vocab_only=True) as m:
        assert len(m.tensors) == 272
        assert mapped_and_open() == before


def test_model_lifetime(smollm2_path):
    m = Model(smollm2_path, vocab_only=True)
    assert not m.closed and "tensors" in repr(m)
    m.close()
    m.close()  # idempotent
    assert m.closed and "closed" in repr(m)
    with pytest.raises(ValueError, match="closed"):
        m.metadata
    with pytest.raises(ValueError, match="sparse_mode"):
        Model(smollm2_path, vocab_only=True, sparse_mode="bogus")


# ---------------------------------------------------------------------------------------------
# Synthetic files
# ---------------------------------------------------------------------------------------------

ALL_TYPES_KVS = [
    ("general.architecture", gb.STRING, "llama"),
    ("t.u8", gb.U8, 255),
    ("t.i8", gb.I8, -128),
    ("t.u16", gb.U16, 65535),
    ("t.i16", gb.I16, -32768),
    ("t.u32", gb.U32, 4294967295),
    ("t.i32", gb.I32, -2147483648),
    ("t.f32", gb.F32V, 0.1),
    ("t.f32big", gb.F32V, 3.0e38),
    ("t.bool.t", gb.BOOL, True),
    ("t.bool.f", gb.BOOL, False),
    ("t.str", gb.STRING, 'quote " backslash \\ newline \n ünïcode'),
    ("t.str.empty", gb.STRING, ""),
    ("t.u64", gb.U64, 2**64 - 1),
    ("t.i64", gb.I64, -(2**63)),
    ("t.f64", gb.F64, -1.0e-7),
    ("t.arr.u8", gb.ARRAY, (gb.U8, [0, 1, 255])),
    ("t.arr.i16", gb.ARRAY, (gb.I16, [-1, 2])),
    ("t.arr.i32", gb.ARRAY, (gb.I32, [1, 2, 3])),
    ("t.arr.u64", gb.ARRAY, (gb.U64, [2**64 - 1])),
    ("t.arr.f32", gb.ARRAY, (gb.F32V, [0.5, -2.25])),
    ("t.arr.f64", gb.ARRAY, (gb.F64, [1e10])),
    ("t.arr.bool", gb.ARRAY, (gb.BOOL, [True, False])),
    ("t.arr.str", gb.ARRAY, (gb.STRING, ["a", 'b"c', "d\\e", ""])),
    ("t.arr.empty", gb.ARRAY, (gb.I32, [])),
    ("t.arr.nested", gb.ARRAY, (gb.ARRAY, [(gb.I32, [1, 2]), (gb.STRING, ["x"]), (gb.ARRAY, [(gb.U8, [7])])])),
]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("version,magic", [(3, b"GGUF"), (2, b"GGUF"), (3, b"PWRI"), (2, b"PWRI")])
def test_hand_written_every_type(tmp_path, version, magic):
    tensors = [gb.f32_tensor("a", (4, 3)), gb.Tensor("q", (64, 2), gb.Q8_0, bytes(range(136))),
               gb.f32_tensor("b", (5,))]
    layout = gb.Layout()
    data = gb.build(ALL_TYPES_KVS, tensors, version=version, magic=magic, layout=layout)
    p = write(tmp_path, "all.gguf", data)
    with Model(p, vocab_only=True) as m:
        assert m.gguf_version == version
        assert m.is_sparse_file == (magic == b"PWRI")
        meta = m.metadata
        assert list(meta) == [k for k, _, _ in ALL_TYPES_KVS]
        for key, vtype, v in ALL_TYPES_KVS:
            if key != "t.arr.nested":
                assert meta[key] == gb.render(vtype, v), key
        assert meta["t.arr.nested"] == '[[1, 2], ["x"], [[7]]]'
        assert meta["t.f32"] == "0.100000" and meta["t.f32big"] == "300000000549775575777803994281145270272.000000"
        assert meta["t.f64"] == "-0.000000" and meta["t.u64"] == "18446744073709551615"
        assert meta["t.str"] == 'quote " backslash \\ newline \n ünïcode'
        assert meta["t.arr.str"] == '["a", "b\\"c", "d\\\\e", ""]'
        assert m.metadata_type("t.arr.nested") == (gb.ARRAY, gb.ARRAY, 3)
        assert m.data_offset == layout.data_offset
        got = [(t.name, t.shape, t.type_name, t.offset, t.n_bytes) for t in m.tensors]
        assert got == [("a", (4, 3), "F32", 0, 48), ("q", (64, 2), "Q8_0", 64, 136), ("b", (5,), "F32", 224, 20)]


@pytest.mark.parametrize("alignment", [1, 8, 64, 4096])
def test_alignment_key(tmp_path, alignment):
    kvs = [("general.alignment", gb.U32, alignment)]
    tensors = [gb.f32_tensor("a", (3,)), gb.f32_tensor("b", (7,))]
    layout = gb.Layout()
    p = write(tmp_path, "al.gguf", gb.build(kvs, tensors, alignment=alignment, layout=layout))
    with Model(p, vocab_only=True) as m:
        assert m.alignment == alignment
        assert m.data_offset == layout.data_offset and m.data_offset % alignment == 0
        assert [t.offset for t in m.tensors] == [0, (12 + alignment - 1) // alignment * alignment]


def test_gguf_package_writer(tmp_path):
    gguf = pytest.importorskip("gguf")
    p = tmp_path / "w.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_uint8("k.u8", 200)
    w.add_int8("k.i8", -5)
    w.add_uint16("k.u16", 60000)
    w.add_int16("k.i16", -300)
    w.add_uint32("k.u32", 123456)
    w.add_int32("k.i32", -7)
    w.add_float32("k.f32", 1.5)
    w.add_uint64("k.u64", 2**40)
    w.add_int64("k.i64", -(2**40))
    w.add_float64("k.f64", 2.5)
    w.add_bool("k.bool", True)
    w.add_string("k.str", "héllo")
    w.add_array("k.arr.i", [1, 2, 3])
    w.add_array("k.arr.s", ["x", "y\"z"])
    w.add_array("k.arr.f", [0.25, 0.5])
    w.add_array("k.arr.nested", [[1, 2], [3]])
    rng = np.random.default_rng(0)
    w.add_tensor("f32", rng.standard_normal((3, 8), dtype=np.float32))
    w.add_tensor("f16", rng.standard_normal((2, 16)).astype(np.float16))
    q4 = rng.integers(0, 255, size=(4, 18 * 2), dtype=np.uint8)  # 4 rows of 64 Q4_0 elements
    w.add_tensor("q4", q4, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    reader = gguf.GGUFReader(str(p))
    with Model(p, vocab_only=True) as m:
        meta = m.metadata
        expected = {k: render_gguf_field(f) for k, f in reader.fields.items()
                    if not k.startswith("GGUF.") and k != "k.arr.nested"}
        for k, v in expected.items():
            assert meta[k] == v, k
        assert meta["k.arr.nested"] == "[[1, 2], [3]]"
        assert meta["k.str"] == "héllo" and meta["k.bool"] == "true" and meta["k.f32"] == "1.500000"
        assert m.data_offset == reader.data_offset
        got = [(t.name, t.shape, t.type_name, t.offset, t.n_bytes) for t in m.tensors]
        want = [(t.name, tuple(int(x) for x in t.shape), t.tensor_type.name, int(t.field.parts[-1][0]),
                 int(t.n_bytes)) for t in reader.tensors]
        assert got == want
        assert got[0][1] == (8, 3) and got[2][1] == (64, 4)


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------

GOOD_KVS = [("general.architecture", gb.STRING, "llama"), ("t.arr", gb.ARRAY, (gb.I32, list(range(16))))]


def good_file(**kw) -> bytes:
    return gb.build(GOOD_KVS, [gb.f32_tensor("a", (8,)), gb.f32_tensor("b", (8, 2))], **kw)


def _cut_inside_string() -> bytes:
    layout = gb.Layout()
    data = gb.build([("a", gb.U32, 1), ("s", gb.STRING, "x" * 100)], layout=layout)
    return data[: layout.kv_starts[1] + 8 + 1 + 4 + 8 + 50]  # half of the value of "s"


def _cut_inside_array() -> bytes:
    layout = gb.Layout()
    data = good_file(layout=layout)
    return data[: layout.kv_starts[1] + 8 + 5 + 4 + 4 + 8 + 4 * 7]


def _cut_inside_tensor_table() -> bytes:
    layout = gb.Layout()
    data = good_file(layout=layout)
    return data[: layout.tensor_info_starts[1] + 8 + 1 + 4 + 8 + 3]  # inside b's second dimension


def _set_u64(data: bytes, off: int, v: int) -> bytes:
    return data[:off] + struct.pack("<Q", v) + data[off + 8:]


def _absurd_string_length() -> bytes:
    layout = gb.Layout()
    return _set_u64(good_file(layout=layout), layout.kv_starts[0], 2**63 + 5)


def _absurd_array_length() -> bytes:
    layout = gb.Layout()
    data = good_file(layout=layout)
    return _set_u64(data, layout.kv_starts[1] + 8 + 5 + 4 + 4, 2**62)


def _data_past_end() -> bytes:
    data = good_file()
    return data[:-40]


def _tensor_offset_past_end() -> bytes:
    t = gb.f32_tensor("a", (8,))
    t.offset = 2**40
    return gb.build(GOOD_KVS, [t])


def _misaligned() -> bytes:
    a, b = gb.f32_tensor("a", (8,)), gb.f32_tensor("b", (8,))
    b.offset = 48
    return gb.build(GOOD_KVS, [a, b])


def _unknown_tensor_type() -> bytes:
    t = gb.f32_tensor("a", (8,))
    t.type_id = 99
    return gb.build(GOOD_KVS, [t])


def _bad_block_multiple() -> bytes:
    return gb.build(GOOD_KVS, [gb.Tensor("q", (16,), gb.Q4_0, bytes(9))])


def _nested_too_deep() -> bytes:
    v = (gb.I32, [1])
    for _ in range(40):
        v = (gb.ARRAY, [v])
    return gb.build([("deep", gb.ARRAY, v)])


def _shape_overflow() -> bytes:
    return gb.build(GOOD_KVS, [gb.Tensor("big", (2**32, 2**32), gb.F32, b"")])


BAD_FILES = [
    # name, bytes, exception class, words the message must contain
    ("empty", b"", FileFormatError, ["empty"]),
    ("wrong_magic", b"GGML" + good_file()[4:], FileFormatError, ["magic"]),
    ("version_1", good_file(version=1), UnsupportedError, ["version 1"]),
    ("version_4", good_file(version=4), UnsupportedError, ["version 4"]),
    ("big_endian", b"GGUF" + struct.pack(">I", 3) + good_file()[8:], UnsupportedError, ["big-endian"]),
    ("truncated_header", good_file()[:14], FileFormatError, ["truncated", "tensor count"]),
    ("truncated_kv_count", good_file()[:20], FileFormatError, ["truncated", "metadata count"]),
    ("truncated_string", _cut_inside_string(), FileFormatError, ["truncated", "string value", "'s'", "past the end"]),
    ("truncated_array", _cut_inside_array(), FileFormatError, ["truncated", "array", "t.arr"]),
    ("truncated_tensor_table", _cut_inside_tensor_table(), FileFormatError, ["truncated", "tensor #1 'b'"]),
    ("absurd_kv_count", gb.build(GOOD_KVS, n_kv=2**62), FileFormatError, ["metadata keys", "cannot fit"]),
    ("absurd_tensor_count", gb.build(GOOD_KVS, n_tensors=2**60), FileFormatError, ["tensors", "cannot fit"]),
    ("absurd_string_length", _absurd_string_length(), FileFormatError, ["key name", "past the end"]),
    ("absurd_array_length", _absurd_array_length(), FileFormatError, ["array of 4611686018427387904", "t.arr"]),
    ("data_past_end", _data_past_end(), FileFormatError, ["tensor #1 'b'", "past the end"]),
    ("offset_past_end", _tensor_offset_past_end(), FileFormatError, ["tensor #0 'a'", "past the end"]),
    ("unknown_tensor_type", _unknown_tensor_type(), UnsupportedError, ["unknown tensor type 99", "'a'"]),
    ("duplicate_tensor", gb.build(GOOD_KVS, [gb.f32_tensor("a", (8,)), gb.f32_tensor("a", (8,))]),
     FileFormatError, ["duplicate tensor name 'a'"]),
    ("duplicate_key", gb.build(GOOD_KVS + [GOOD_KVS[0]]), FileFormatError, ["duplicate metadata key"]),
    ("misaligned", _misaligned(), FileFormatError, ["misaligned", "'b'", "48"]),
    ("alignment_not_pow2", gb.build([("general.alignment", gb.U32, 24)]), FileFormatError, ["power of two"]),
    ("alignment_wrong_type", gb.build([("general.alignment", gb.U64, 32)]), FileFormatError,
     ["general.alignment", "u32"]),
    ("too_many_dims", gb.build([], [gb.Tensor("t", (1, 1, 1, 1, 1), gb.F32, bytes(4))]), FileFormatError,
     ["5 dimensions"]),
    ("bad_block_multiple", _bad_block_multiple(), FileFormatError, ["block size"]),
    ("unknown_value_type", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gb.gstr("k") + struct.pack("<I", 13) + bytes(8),
     FileFormatError, ["unknown value type 13", "'k'"]),
    ("nested_too_deep", _nested_too_deep(), FileFormatError, ["nested"]),
    ("shape_overflow", _shape_overflow(), FileFormatError, ["overflow"]),
]


@pytest.mark.parametrize("vocab_only,use_mmap", [(True, True), (False, True), (False, False)])
@pytest.mark.parametrize("name,data,exc,words", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file(tmp_path, name, data, exc, words, vocab_only, use_mmap):
    p = write(tmp_path, f"{name}.gguf", data)
    with pytest.raises(exc) as info:
        Model(p, vocab_only=vocab_only, use_mmap=use_mmap)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert str(p) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_missing_path(tmp_path):
    p = tmp_path / "nope.gguf"
    with pytest.raises(ModelFileError, match="no such file") as info:
        Model(p)
    assert str(p) in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory") as info:
        Model(tmp_path, vocab_only=True)
    assert str(tmp_path) in str(info.value)


def test_c_side_checks_paths_too(tmp_path):
    """The C library reports missing paths and directories itself (not only Model's checks)."""
    from powerinfer_py._lib import ffi, lib

    for path, words in [(tmp_path / "missing.gguf", "no such file"), (tmp_path, "directory")]:
        out = ffi.new("pi_model **")
        status = lib.pi_model_load(str(path).encode(), ffi.NULL, out)
        assert status == lib.PI_ERR_IO and out[0] == ffi.NULL
        msg = ffi.string(lib.pi_last_error()).decode()
        assert str(path) in msg and words in msg


def test_absurd_counts_allocate_nothing_big(tmp_path):
    """Headers claiming 2**62 keys, strings or elements fail without growing the process."""
    paths = []
    for name in ("absurd_kv_count", "absurd_tensor_count", "absurd_string_length", "absurd_array_length"):
        data = next(b[1] for b in BAD_FILES if b[0] == name)
        paths.append(str(write(tmp_path, name + ".gguf", data)))
    code = (
        "import resource, sys\n"
        "from powerinfer_py._model import Model\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for p in sys.argv[1:]:\n"
        "    for _ in range(20):\n"
        "        try:\n"
        "            Model(p, vocab_only=True)\n"
        "        except ValueError:\n"
        "            pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *paths], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    grown_kib = int(r.stdout.strip().splitlines()[-1])
    assert grown_kib < 64 * 1024


# ---------------------------------------------------------------------------------------------
# Fuzz sample
# ---------------------------------------------------------------------------------------------


def test_fuzz_sample_never_crashes(smollm2_path, tmp_path):
    """300 random mutations of SmolLM2, each loaded vocab-only (and every 3rd fully): success or
    ValueError, never a crash. Runs in a subprocess so a crash fails this test, not pytest."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzz" / "fuzz_binding.py"), str(smollm2_path),
         "--cases", "300", "--seed", "20261125", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    tail = "\n".join((r.stdout + r.stderr).splitlines()[-15:])
    assert r.returncode == 0, f"fuzz sample failed (rc={r.returncode}):\n{tail}"
    assert "cases=300" in r.stdout and "failures=0" in r.stdout, tail


# ---------------------------------------------------------------------------------------------
# Our writer (src/gguf/gguf_writer.cpp), through the C test program when it was built
# ---------------------------------------------------------------------------------------------


def _writer_program():
    candidates = [os.environ.get("POWERINFER_TEST_BIN_DIR", "")]
    lib_path = os.environ.get("POWERINFER_LIB_PATH", "")
    if lib_path:
        p = Path(lib_path)
        candidates.append(str((p if p.is_dir() else p.parent) / "tests"))
    for d in candidates:
        exe = Path(d) / "test_gguf_writer" if d else None
        if exe and exe.is_file() and os.access(exe, os.X_OK):
            return exe
    return None


def test_writer_files_read_by_gguf_package(tmp_path):
    """Files from our writer (every metadata type, F32/F16/Q8_0 tensors, alignments 1 to 4096,
    both magics) read back equal by our reader and the gguf package. Needs the library built with
    -DPOWERINFER_BUILD_TESTS=ON (the program's own round-trip checks also run under ctest)."""
    exe = _writer_program()
    if exe is None:
        pytest.skip("test_gguf_writer not built (configure with -DPOWERINFER_BUILD_TESTS=ON)")
    gguf = pytest.importorskip("gguf")
    r = subprocess.run([str(exe), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = sorted(tmp_path.glob("rt_*.gguf"))
    assert len(files) == 8
    for f in files:
        sparse = f.name.startswith("rt_pwri")
        plain = f
        if sparse:  # the gguf package knows only the GGUF magic
            plain = tmp_path / ("plain_" + f.name)
            plain.write_bytes(b"GGUF" + f.read_bytes()[4:])
        reader = gguf.GGUFReader(str(plain))
        with Model(f, vocab_only=True) as m:
            assert m.is_sparse_file == sparse and m.gguf_version == 3
            meta = m.metadata
            for k, field in reader.fields.items():
                if not k.startswith("GGUF.") and k != "t.arr.nested":
                    assert meta[k] == render_gguf_field(field), (f.name, k)
            assert meta["t.arr.nested"] == '[[1, 2], ["x"]]'
            assert m.alignment == reader.alignment and m.data_offset == reader.data_offset
            got = [(t.name, t.shape, t.type, t.offset, t.n_bytes) for t in m.tensors]
            want = [(t.name, tuple(int(x) for x in t.shape), int(t.tensor_type), int(t.field.parts[-1][0]),
                     int(t.n_bytes)) for t in reader.tensors]
            assert got == want
        a = next(t for t in reader.tensors if t.name == "a")
        np.testing.assert_array_equal(np.asarray(a.data).ravel(), np.arange(15, dtype=np.float32) * 0.5)


@pytest.mark.parametrize("use_mmap", [True, False])
def test_smollm2_full_load(smollm2_path, smollm2_model, use_mmap):
    """A full load (weights mapped or read) sees the same file as a vocab-only load."""
    with Model(smollm2_path, use_mmap=use_mmap) as m:
        assert m.tensors == smollm2_model.tensors
        assert m.metadata == smollm2_model.metadata
        assert m.data_offset == smollm2_model.data_offset
