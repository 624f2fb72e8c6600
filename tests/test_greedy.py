"""Greedy continuations of SmolLM2-135M-Instruct Q4_1 against llama.cpp's.

tests/data/greedy_smollm2.json was written once by tools/make_expected_greedy.py with
llama-cpp-python 0.3.36: prompt ids, 128 argmax ids per prompt, and at each step llama.cpp's five
best ids with their logits. We feed the same prompt ids in one batch and take the
argmax 128 times, feeding each token back, exactly as the script did.

What "equal" can mean here. Both engines quantize every activation to 8 bits per block of 32
before each product; a difference in the last bit of a float sum (summation order) flips a rounding
somewhere, and this model amplifies that into logit changes of about 1 (see test_forward.py). llama.cpp
is not stable at that level against itself: its logits for the same tokens differ by up to 1.30
between evaluating a sequence as one batch and one token at a time, and its top-2 margin by up to
0.30 (40 greedy steps of the first prompt). Between our logits and llama.cpp's, on the first 40 greedy steps of these five prompts (280
positions), the top-2 margin differs by median 0.10, 99th percentile 0.49, max 0.64. So at a step
where llama.cpp's top two logits are closer than about 0.5, which token wins is decided by rounding
noise, and after such a step the two continuations are different texts that cannot be compared.

test_greedy_matches_llama_cpp therefore requires: the ids are equal up to the first difference,
if any; at that step our id is among llama.cpp's five best, with a logit (in llama.cpp's own
logits) less than NEAR_TIE = 0.5 (the 99th percentile above) below llama.cpp's choice.

Measured (Dec 2026, activations in ggml's formats: f16 block scales, f16 Q and attention weights):
first differences at steps 5, 15, 6, 118, 6; llama.cpp ranks our id there 0.330, 0.125, 0.017,
0.087 and 0.185 below its own. The same llama.cpp (0.3.36) built for AVX2 instead of this CPU's
AVX-512 (tests/data/greedy_smollm2_llamacpp_avx2.json, made by tools/make_expected_greedy.py --out
with CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF") departs from the native
build's ids at steps -, 18, 10, 64, 10, by near-ties of 0.034, 0.034, 0.140 and 0.020, and its
top-5 logits differ from the native build's by median 0.16-0.30 (max 0.67) before that: the size
of our own difference from the native build. "Equal to llama.cpp" is thus a property of one build
of llama.cpp, not of the model; test_criterion_accepts_llama_cpp_against_itself checks that the
criterion accepts llama.cpp's AVX2 build against its native one.
Other variations of llama.cpp against itself: evaluating the prompt one token at a time changes
its greedy ids from steps 15 and 9 on (prompts 2 and 5); flash_attn=True from steps 8, 10, 74
and 9 (prompts 2-5); one thread instead of two changes nothing.
test_greedy_exactly_equal is the strict form, expected to fail while those steps differ; it is
kept so that the run shows where.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from powerinfer_py._context import Context

DATA = Path(__file__).resolve().parent / "data" / "greedy_smollm2.json"
CASES = json.loads(DATA.read_text())["cases"] if DATA.is_file() else []
AVX2_DATA = DATA.with_name("greedy_smollm2_llamacpp_avx2.json")
NEAR_TIE = 0.5




@pytest.fixture(scope="module")
def ours(smol):
    """Our greedy continuation of every prompt (computed once)."""
    return [greedy(smol, c["prompt_ids"], len(c["expected_ids"])) for c in CASES]


def greedy(model, prompt_ids, n_new):
    with Context(model, n_ctx=512, n_batch=512, n_threads=2, n_threads_batch=2) as ctx:
        ctx.decode(prompt_ids)
        out = []
        for _ in range(n_new):
            tok = int(np.argmax(ctx.logits()))
            out.append(tok)
            ctx.decode([tok])
        return out


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


def test_expected_data_present():
    assert DATA.is_file(), f"{DATA} is missing: run tools/make_expected_greedy.py with the peer's python"
    assert len(CASES) == 5
    for c in CASES:
        assert len(c["expected_ids"]) == len(c["top_ids"]) == len(c["top_logits"]) == 128
        assert all(ids[0] == e for ids, e in zip(c["top_ids"], c["expected_ids"]))


def assert_equal_up_to_a_near_tie(c, got, who):
    """got equals llama.cpp's ids of case c up to the first difference, and there is a near-tie."""
    want = c["expected_ids"]
    k = first_difference(got, want)
    if k is None:
        return
    ids, logits = c["top_ids"][k], c["top_logits"][k]
    assert got[k] in ids, (f"prompt {c['prompt']!r}: step {k}: {who} {got[k]} is not among llama.cpp's "
                           f"five best {ids}")
    gap = logits[0] - logits[ids.index(got[k])]
    assert gap < NEAR_TIE, (f"prompt {c['prompt']!r}: step {k}: {who} {got[k]}, llama.cpp {want[k]}; llama.cpp "
                            f"ranks it {gap:.3f} lower: not a near-tie")


@pytest.mark.parametrize("case", range(len(CASES)))
def test_greedy_matches_llama_cpp(ours, case):
    assert_equal_up_to_a_near_tie(CASES[case], ours[case], "ours")


def test_criterion_accepts_llama_cpp_against_itself():
    """The criterion, applied to llama.cpp's AVX2 build against its native build, accepts it; and
    that build does differ (so the criterion is not vacuous there)."""
    other = json.loads(AVX2_DATA.read_text())["cases"]
    assert [c["prompt_ids"] for c in other] == [c["prompt_ids"] for c in CASES]
    differs = 0
    for c, o in zip(CASES, other):
        assert_equal_up_to_a_near_tie(c, o["expected_ids"], "llama.cpp AVX2")
        differs += first_difference(o["expected_ids"], c["expected_ids"]) is not None
    assert differs >= 1


@pytest.mark.xfail(reason="near-ties decided by 8-bit rounding noise; see the module docstring", strict=False)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_greedy_exactly_equal(ours, case):
    c = CASES[case]
    k = first_difference(ours[case], c["expected_ids"])
    assert k is None, (f"prompt {c['prompt']!r}: first difference at step {k} (llama.cpp's best "
                       f"{c['top_ids'][k]} {c['top_logits'][k]}): ours {ours[case][k:k + 6]}, llama.cpp {c['expected_ids'][k:k + 6]}")
