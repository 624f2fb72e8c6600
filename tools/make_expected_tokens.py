#!/usr/bin/env python3
"""Writes the expected SmolLM2 token ids of a ~100 kB mixed text, produced once with the peer
(llama-cpp-python 0.3.36, its own interpreter), for tests/test_tokenizer_smollm2.py.

    python3 tools/make_expected_tokens.py [--peer-python PATH] [--model PATH]

Outputs (committed):
    tests/data/smollm2_mixed.txt   the text (tools/mixed_text.py, 100 kB, seed 20260525)
    tests/data/smollm2_mixed.ids.gz  gzip text, one line per setting: "add_bos=<0|1> special=<0|1>:" and the ids
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

from mixed_text import mixed_text  # noqa: E402

SIZE, SEED = 100_000, 20260525
SETTINGS = [(False, False), (True, True)]  # (add_bos, special)
DATA = ROOT / "tests" / "data"

PEER_SCRIPT = r"""
import json, sys
import llama_cpp
job = json.load(sys.stdin)
llm = llama_cpp.Llama(job["model"], vocab_only=True, verbose=False)
text = open(job["text"], "rb").read()
print(json.dumps({"version": llama_cpp.__version__,
                  "ids": [llm.tokenize(text, add_bos=a, special=s) for a, s in job["settings"]]}))
"""


def main() -> int:
    from powerinfer_py import assets  # the cached SmolLM2 file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", default=str(Path.home() / ".cache/powerinfer-py/assets/peer-venv/bin/python"))
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    model = args.model or str(assets.smollm2_path())
    DATA.mkdir(parents=True, exist_ok=True)
    text_path = DATA / "smollm2_mixed.txt"
    text_path.write_bytes(mixed_text(SIZE, SEED).encode("utf-8"))
    job = {"model": model, "text": str(text_path), "settings": SETTINGS}
    r = subprocess.run([args.peer_python, "-c", PEER_SCRIPT], input=json.dumps(job), capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"peer failed: {r.stderr[-3000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    lines = [f"# SmolLM2-135M-Instruct token ids of smollm2_mixed.txt by llama-cpp-python {res['version']}"]
    for (a, s), ids in zip(SETTINGS, res["ids"]):
        lines.append(f"add_bos={int(a)} special={int(s)}: " + " ".join(map(str, ids)))
    # mtime=0: the same ids give the same file bytes.
    (DATA / "smollm2_mixed.ids.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    print(f"wrote {text_path} ({text_path.stat().st_size} bytes) and smollm2_mixed.ids.gz "
          f"({', '.join(str(len(x)) for x in res['ids'])} ids)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
