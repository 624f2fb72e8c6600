"""Shared helpers of the tokenizer tests: reading llama.cpp's .inp/.out vectors, opening a
vocabulary-only model, and running the peer (llama-cpp-python) in its own interpreter."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import List, Tuple

# The vocabularies whose vectors must all pass, and those we try but do not require.
REQUIRED_VOCABS = [
    "command-r", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2", "llama-bpe", "llama-spm",
    "mpt", "phi-3", "qwen2", "qwen35", "refact", "starcoder",
]
WELCOME_VOCABS = ["bert-bge", "gemma-4"]

SEPARATOR = b"\n__ggml_vocab_test__\n"



def vocab_file(vocab_dir: Path, name: str) -> Path:
    return vocab_dir / f"ggml-vocab-{name}.gguf"


def read_vectors(gguf: Path) -> List[Tuple[bytes, List[int]]]:
    """The (input bytes, expected ids) pairs of a vocabulary's .inp/.out files.

    .inp holds the inputs, each followed by a line "__ggml_vocab_test__"; .out has one line per
    input with its ids separated by spaces (an empty line for no tokens).
    """
    raw = Path(str(gguf) + ".inp").read_bytes()
    inputs = raw.split(SEPARATOR)
    if inputs and inputs[-1] == b"":
        inputs = inputs[:-1]
    lines = Path(str(gguf) + ".out").read_text(encoding="utf-8").split("\n")
    assert len(lines) >= len(inputs), f"{gguf}.out has {len(lines)} lines for {len(inputs)} inputs"
    return [(inp, [int(x) for x in line.split()]) for inp, line in zip(inputs, lines)]


def open_vocab(path: Path):
    from powerinfer_py._model import Model

    return Model(path, vocab_only=True)


def peer_python():
    """The peer's interpreter (powerinfer_py.assets.peer_python) if llama_cpp imports there, else None."""
    from powerinfer_py import assets

    p = assets.peer_python()
    if p is None:
        return None
    r = subprocess.run([str(p), "-c", "import llama_cpp"], capture_output=True, timeout=120)
    return p if r.returncode == 0 else None


# Run inside the peer's interpreter: reads a JSON job on stdin, prints JSON ids.
PEER_TOKENIZE = r"""
import json, sys, base64
import llama_cpp
job = json.load(sys.stdin)
llm = llama_cpp.Llama(job["model"], vocab_only=True, verbose=False)
out = []
for t in job["texts"]:
    b = base64.b64decode(t)
    out.append(llm.tokenize(b, add_bos=job["add_bos"], special=job["special"]))
print(json.dumps(out))
"""


def peer_tokenize(model: Path, texts: List[bytes], add_bos: bool = False, special: bool = False) -> List[List[int]]:
    import base64

    job = {"model": str(model), "texts": [base64.b64encode(t).decode() for t in texts],
           "add_bos": add_bos, "special": special}
    py = peer_python()
    if py is None:
        raise RuntimeError("peer llama-cpp-python is not installed")
    r = subprocess.run([str(py), "-c", PEER_TOKENIZE], input=json.dumps(job), capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"peer tokenizer failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
