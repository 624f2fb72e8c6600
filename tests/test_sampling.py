"""The C sampler (src/sample/sampler.cpp) against a numpy statement of the same chain.

Each truncation is checked by its support (which tokens can come out) and, with many draws from a
fixed seed, by its distribution: empirical frequencies within 4 standard errors of the reference
probabilities. No model is needed.
"""
from __future__ import annotations

import numpy as np
import pytest

from powerinfer_py.sampling import (LogitsProcessorList, MinTokensLogitsProcessor, Sampler, SamplingParams,
                                    StoppingCriteriaList, logits_to_logprobs)


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_distribution(logits, top_k=40, typical_p=1.0, top_p=0.95, min_p=0.05, temperature=0.8):
    """token -> probability after top_k -> typical -> top_p -> min_p -> temperature."""
    ids = np.arange(len(logits))
    lg = np.asarray(logits, dtype=np.float64)
    order = np.lexsort((ids, -lg))  # by logit desc, id asc
    ids, lg = ids[order], lg[order]
    if 0 < top_k < len(ids):
        ids, lg = ids[:top_k], lg[:top_k]
    if typical_p < 1.0:
        p = softmax(lg)
        ent = -(p * np.log(p)).sum()
        o = np.argsort(np.abs(-np.log(p) - ent), kind="stable")
        cum = np.cumsum(p[o])
        keep = int(np.searchsorted(cum, typical_p) + 1)
        sel = np.sort(o[:keep])
        ids, lg = ids[sel], lg[sel]
    if top_p < 1.0:
        p = softmax(lg)
        cum = np.cumsum(p)
        keep = int(np.searchsorted(cum, top_p) + 1)
        ids, lg = ids[:keep], lg[:keep]
    if min_p > 0:
        m = lg >= lg.max() + np.log(min_p)
        ids, lg = ids[m], lg[m]
    p = softmax(lg / temperature)
    return dict(zip(ids.tolist(), p.tolist()))


def draws(logits, n, **kw):
    s = Sampler(len(logits), SamplingParams(**kw))
    return np.array([s.sample(np.asarray(logits, np.float32)) for _ in range(n)])


def assert_distribution(samples, ref, n_vocab):
    counts = np.bincount(samples, minlength=n_vocab) / len(samples)
    assert set(np.nonzero(counts)[0].tolist()) <= set(ref), "a token outside the reference support was drawn"
    for t, p in ref.items():
        se = np.sqrt(max(p * (1 - p), 1e-12) / len(samples))
        assert abs(counts[t] - p) <= 4 * se + 1e-3, (t, counts[t], p)


@pytest.fixture
def logits():
    rng = np.random.default_rng(1234)
    return (rng.standard_normal(64) * 2.0).astype(np.float32)


def test_greedy_is_argmax(logits):
    s = Sampler(len(logits), SamplingParams(temperature=0.0))
    assert s.sample(logits) == int(np.argmax(logits))


def test_greedy_ties_take_lowest_id():
    s = Sampler(4, SamplingParams(temperature=0.0))
    assert s.sample(np.array([0.0, 5.0, 5.0, 1.0], np.float32)) == 1


@pytest.mark.parametrize("kw", [
    dict(top_k=40, top_p=0.95, min_p=0.05, temperature=0.8),  # llama-cpp-python's completion defaults
    dict(top_k=5, top_p=1.0, min_p=0.0, temperature=1.0),
    dict(top_k=0, top_p=0.7, min_p=0.0, temperature=1.0),
    dict(top_k=0, top_p=1.0, min_p=0.2, temperature=0.5),
    dict(top_k=0, top_p=1.0, min_p=0.0, temperature=1.5, typical_p=0.5),
])
def test_truncation_chain_matches_reference(logits, kw):
    ref = reference_distribution(logits, **{k: kw.get(k, d) for k, d in
                                           dict(top_k=40, typical_p=1.0, top_p=0.95, min_p=0.05,
                                                temperature=0.8).items()})
    samples = draws(logits, 20000, seed=7, **kw)
    assert_distribution(samples, ref, len(logits))


@pytest.mark.parametrize("scale, kw", [
    (3.0, dict(top_k=0, top_p=0.9)),    # nucleus of 85: inside the first head (128)
    (2.5, dict(top_k=0, top_p=0.9)),    # 385: inside the second (1024)
    (1.2, dict(top_k=0, top_p=0.9)),    # 2642: beyond both, the full list
    (1.0, dict(top_k=300, top_p=1.0)),  # a top_k long enough for the radix select
])
def test_long_heads_match_reference(scale, kw):
    """5000 logits, so that top_p's head passes and a long top_k take their other paths."""
    rng = np.random.default_rng(77)
    lg = (rng.standard_normal(5000) * scale).astype(np.float32)
    kw = dict(kw, min_p=0.0, temperature=1.0)
    ref = reference_distribution(lg, **kw)
    samples = draws(lg, 6000, seed=9, **kw)
    assert_distribution(samples, ref, len(lg))


def test_negative_temperature_draws_from_full_softmax(logits):
    samples = draws(logits, 20000, seed=3, temperature=-1.0)
    assert_distribution(samples, dict(enumerate(softmax(logits).tolist())), len(logits))


def test_same_seed_same_tokens_and_different_seed_differs(logits):
    a = draws(logits, 200, seed=42, top_k=0, top_p=1.0, min_p=0.0, temperature=1.0)
    b = draws(logits, 200, seed=42, top_k=0, top_p=1.0, min_p=0.0, temperature=1.0)
    c = draws(logits, 200, seed=43, top_k=0, top_p=1.0, min_p=0.0, temperature=1.0)
    assert (a == b).all()
    assert (a != c).any()


def test_logit_bias_is_additive():
    lg = np.zeros(8, np.float32)
    s = Sampler(8, SamplingParams(temperature=0.0, logit_bias={5: 3.0, 2: -100.0}))
    assert s.sample(lg) == 5
    lg2 = np.array([9, 0, 10, 0, 0, 0, 0, 0], np.float32)
    assert s.sample(lg2) == 0  # token 2 is biased down below token 0


def test_logit_bias_rejects_unknown_token():
    with pytest.raises(ValueError):
        Sampler(8, SamplingParams(logit_bias={8: 1.0}))


def test_mask_excludes_tokens(logits):
    allowed = np.zeros(len(logits), np.uint8)
    allowed[[3, 10, 20]] = 1
    s = Sampler(len(logits), SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=1))
    got = {s.sample(logits, allowed) for _ in range(300)}
    assert got <= {3, 10, 20} and len(got) >= 2
    g = Sampler(len(logits), SamplingParams(temperature=0.0))
    assert g.sample(logits, allowed) == max([3, 10, 20], key=lambda t: logits[t])
    with pytest.raises(ValueError):
        g.sample(logits, np.zeros(len(logits), np.uint8))


def test_repeat_penalty_divides_positive_and_multiplies_negative():
    s = Sampler(3, SamplingParams(temperature=0.0, repeat_penalty=2.0, penalty_last_n=64))
    lg = np.array([3.0, 2.0, -1.0], np.float32)
    assert s.sample(lg) == 0
    s.accept(0)  # token 0: 3.0 / 2 = 1.5 < 2.0
    assert s.sample(lg) == 1
    s2 = Sampler(2, SamplingParams(temperature=0.0, repeat_penalty=3.0))
    s2.accept(0)  # -1 * 3 = -3 < -2
    assert s2.sample(np.array([-1.0, -2.0], np.float32)) == 1


def test_frequency_and_presence_penalties_and_window():
    s = Sampler(2, SamplingParams(temperature=0.0, frequency_penalty=1.0, presence_penalty=0.5, penalty_last_n=3))
    lg = np.array([2.0, 0.0], np.float32)
    s.accept(0)
    assert s.sample(lg) == 0  # 2 - 1 - 0.5 = 0.5 > 0
    s.accept(0)
    assert s.sample(lg) == 1  # 2 - 2 - 0.5 < 0
    for _ in range(3):
        s.accept(1)  # token 0 leaves the 3-token window; token 1: 0 - 3 - 0.5
    assert s.sample(lg) == 0


def test_mirostat_v2_draws_only_unsurprising_tokens(logits):
    tau = 2.0
    samples = draws(logits, 3000, seed=5, mirostat_mode=2, mirostat_tau=tau, mirostat_eta=0.1, temperature=1.0)
    p = softmax(logits)
    surprise = -np.log2(p[samples])
    # mu starts at 2*tau and follows the observed surprise toward tau: the mean settles near tau
    assert abs(surprise[1000:].mean() - tau) < 0.5
    assert len(set(samples.tolist())) > 1


def test_mirostat_v1_targets_tau(logits):
    tau = 3.0
    samples = draws(logits, 3000, seed=5, mirostat_mode=1, mirostat_tau=tau, mirostat_eta=0.1, temperature=1.0)
    surprise = -np.log2(softmax(logits)[samples])
    assert abs(surprise[1000:].mean() - tau) < 0.7


@pytest.mark.parametrize("mode", [1, 2])
def test_mirostat_with_a_large_mu_draws_from_the_whole_distribution(mode):
    """tau = 40: mu starts at 80, so mirostat 2's floor (p >= 2^-mu) and mirostat 1's k (beyond the
    first 100 candidates: the radix-select path) keep every token, and the draws follow
    softmax(logits / T) over all 300."""
    rng = np.random.default_rng(11)
    lg = (rng.standard_normal(300) * 1.5).astype(np.float32)
    samples = draws(lg, 6000, seed=3, mirostat_mode=mode, mirostat_tau=40.0, mirostat_eta=0.1, temperature=0.7)
    p = softmax(lg / 0.7)
    assert_distribution(samples, dict(enumerate(p.tolist())), len(lg))


@pytest.mark.parametrize("mode", [1, 2])
def test_mirostat_never_draws_a_masked_token(mode):
    rng = np.random.default_rng(12)
    lg = (rng.standard_normal(500) * 2).astype(np.float32)
    allowed = np.zeros(500, np.uint8)
    allowed[rng.choice(500, 40, replace=False)] = 1
    for tau in (0.5, 5.0, 40.0):  # few kept, some, all
        s = Sampler(len(lg), SamplingParams(seed=4, mirostat_mode=mode, mirostat_tau=tau, temperature=0.9))
        got = {s.sample(lg, allowed) for _ in range(400)}
        assert got <= set(np.nonzero(allowed)[0].tolist())


def test_bad_settings_raise():
    with pytest.raises(ValueError):
        Sampler(10, SamplingParams(mirostat_mode=3))
    with pytest.raises(ValueError):
        Sampler(10, SamplingParams(repeat_penalty=0.0))


def test_processor_lists_and_min_tokens():
    scores = np.zeros(4, np.float32)
    procs = LogitsProcessorList([lambda ids, s: s + 1, lambda ids, s: s * 2])
    assert (procs(np.array([1]), scores) == 2).all()
    stop = StoppingCriteriaList([lambda ids, lg: len(ids) > 3])
    assert not stop(np.array([1, 2]), scores) and stop(np.array([1, 2, 3, 4]), scores)
    m = MinTokensLogitsProcessor(2, token_eos=3)
    assert m(np.array([7, 8]), np.zeros(4))[3] == -np.inf  # first call: prompt of 2, 0 generated
    assert m(np.array([7, 8, 1, 2]), np.zeros(4))[3] == 0.0


def test_logits_to_logprobs():
    lp = logits_to_logprobs(np.array([1.0, 2.0, 3.0]))
    assert np.allclose(np.exp(lp).sum(), 1.0)
    assert np.allclose(lp, np.log(softmax([1.0, 2.0, 3.0])), atol=1e-6)
