"""The committed Unicode table (src/vocab/unicode_tables.inc) is exactly what
tools/gen_unicode_tables.py generates, and its facts agree with the Unicode database."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "gen_unicode_tables.py"
TABLE = ROOT / "vendor" / "powerinfer-core" / "src" / "vocab" / "unicode_tables.inc"


def _ucd():
    ucd = pytest.importorskip("unicodedata2", reason="pip install unicodedata2==15.1.0 to check the table")
    if ucd.unidata_version != "15.1.0":
        pytest.skip(f"unicodedata2 has Unicode {ucd.unidata_version}, the table is generated from 15.1.0")
    return ucd


def test_regenerating_gives_the_committed_file(tmp_path):
    _ucd()
    out = tmp_path / "unicode_tables.inc"
    subprocess.run([sys.executable, str(TOOL), "--out", str(out)], check=True, capture_output=True)
    assert out.read_text() == TABLE.read_text()


def test_table_matches_the_database():
    ucd = _ucd()
    import re

    text = TABLE.read_text()
    pairs = [(int(a, 16), int(b)) for a, b in re.findall(r"\{0x([0-9A-F]+),(\d+)\}", text)]
    assert pairs[0][0] == 0 and len(pairs) > 1000
    classes = {"N": 1, "L": 2, "Z": 3, "M": 4, "P": 5, "S": 6, "C": 7}
    starts = [p[0] for p in pairs]
    import bisect

    for cp in [0x20, 0x41, 0x3000, 0x0301, 0x1F999, 0x4E2D, 0x0E01, 0x85, 0xA0, 0x2028, 0x10FFFF, 0xE000, 0x0378]:
        flags = pairs[bisect.bisect_right(starts, cp) - 1][1]
        cat = ucd.category(chr(cp))
        assert flags & 7 == (0 if cat == "Cn" else classes[cat[0]]), hex(cp)
        white = cat in ("Zs", "Zl", "Zp") or 0x09 <= cp <= 0x0D or cp == 0x85
        assert bool(flags & 8) == white, hex(cp)
