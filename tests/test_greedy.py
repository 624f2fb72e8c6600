"""Greedy continuations of SmolLM2-135M-Instruct Q4_1 must equal llama.cpp's.

tests/data/greedy_smollm2.json was written once by tools/make_expected_greedy.py with
llama-cpp-python 0.3.36 (prompt ids and 128 argmax ids per prompt). We feed the same prompt ids in
one batch and take the argmax 128 times, feeding each token back, exactly as the script did.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from powerinfer_py._context import Context
from powerinfer_py._model import Model

DATA = Path(__file__).resolve().parent / "data" / "greedy_smollm2.json"
CASES = json.loads(DATA.read_text())["cases"] if DATA.is_file() else []


@pytest.fixture(scope="module")
def smol(smollm2_path):
    m = Model(str(smollm2_path))
    yield m
    m.close()


def greedy(model, prompt_ids, n_new):
    with Context(model, n_ctx=512, n_batch=512, n_threads=2, n_threads_batch=2) as ctx:
        ctx.decode(prompt_ids)
        out = []
        for _ in range(n_new):
            tok = int(np.argmax(ctx.logits()))
            out.append(tok)
            ctx.decode([tok])
        return out


def test_expected_data_present():
    assert DATA.is_file(), f"{DATA} is missing: run tools/make_expected_greedy.py with the peer's python"
    assert len(CASES) == 5 and all(len(c["expected_ids"]) == 128 for c in CASES)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_greedy_matches_llama_cpp(smol, case):
    c = CASES[case]
    got = greedy(smol, c["prompt_ids"], len(c["expected_ids"]))
    want = c["expected_ids"]
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert first is None, (f"prompt {c['prompt']!r}: first difference at step {first}: "
                           f"ours {got[first:first + 8]}, llama.cpp {want[first:first + 8]}")
