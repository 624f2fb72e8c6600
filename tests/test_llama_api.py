"""The Llama class on SmolLM2-135M-Instruct: construction, facts, tokens, completion, streaming,
sampling knobs, prefix reuse, state, logprobs (llama-cpp-python's surface)."""
from __future__ import annotations

import gc
import logging

import numpy as np
import pytest

from powerinfer_py import Llama, LogitsProcessorList, StoppingCriteriaList

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def llm(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=512, n_threads=1, verbose=False, seed=1234) as m:
        yield m


@pytest.fixture(scope="module")
def llm_all(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=256, logits_all=True, n_threads=1, verbose=False) as m:
        yield m


def greedy(llm, prompt=PROMPT, n=12, **kw):
    return llm.create_completion(prompt, max_tokens=n, temperature=0.0, **kw)


# ---------------------------------------------------------------- construction and facts
def test_unknown_kwargs_are_ignored_and_vocab_only(smollm2_path):
    m = Llama(str(smollm2_path), vocab_only=True, n_parts=-1, f16_kv=True, mul_mat_q=True, rpc_servers=None,
              device="cpu", n_threads=1, verbose=False)
    assert m.metadata["general.architecture"] == "llama"
    assert m.n_vocab() == 49152
    assert any(t.name == "token_embd.weight" for t in m.tensors)
    assert m.tokenize(b"Hello world", add_bos=False)
    with pytest.raises(RuntimeError):
        m.create_completion("hi")
    m.close()
    m.close()  # idempotent


def test_missing_path_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="Model path does not exist"):
        Llama(str(tmp_path / "nope.gguf"), n_threads=1, verbose=False)


def test_close_and_context_manager_and_del(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=64, n_threads=1, verbose=False) as m:
        assert m.n_ctx() == 64
    with pytest.raises(RuntimeError):
        m.create_completion("x")
    m2 = Llama(str(smollm2_path), n_ctx=64, n_threads=1, verbose=False)
    del m2
    gc.collect()


def test_facts(llm):
    assert llm.n_ctx() == 512
    assert llm.n_vocab() == 49152
    assert llm.n_embd() == 576
    assert llm.token_bos() == 1 and llm.token_eos() == 2
    assert isinstance(llm.metadata, dict) and all(isinstance(v, str) for v in llm.metadata.values())
    assert "tokenizer.chat_template" in llm.metadata
    assert llm.chat_format == "chat_template.default"


def test_tokenize_detokenize(llm):
    ids = llm.tokenize(b"Hello world")
    assert all(isinstance(t, int) for t in ids)
    assert llm.detokenize(ids) == b"Hello world"
    plain = llm.tokenize(b"<|im_end|>", add_bos=False, special=False)
    special = llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    assert len(special) == 1 and len(plain) > 1
    assert llm.detokenize(special, special=True) == b"<|im_end|>"


# ---------------------------------------------------------------- completion
def test_completion_shape_and_defaults(llm):
    out = llm(PROMPT, temperature=0.0)
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    assert isinstance(out["created"], int) and out["model"] == llm.model_path
    ch = out["choices"][0]
    assert ch["index"] == 0 and ch["logprobs"] is None and ch["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 16  # max_tokens defaults to 16
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + 16
    assert "Paris" in ch["text"]


def test_echo_and_token_prompt(llm):
    a = greedy(llm, echo=True)["choices"][0]["text"]
    b = greedy(llm)["choices"][0]["text"]
    assert a == PROMPT + b
    toks = llm.tokenize(PROMPT.encode(), add_bos=False)
    assert greedy(llm, toks)["choices"][0]["text"] == b


def test_stop_string_cuts_before_it(llm):
    full = greedy(llm, n=24)["choices"][0]["text"]
    word = full.split()[1]
    out = greedy(llm, n=24, stop=[word])
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["choices"][0]["text"] == full[:full.index(word)]


def test_stream_matches_non_stream(llm):
    full = greedy(llm, n=20)
    chunks = list(greedy(llm, n=20, stream=True))
    assert all(c["object"] == "text_completion" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert "".join(c["choices"][0]["text"] for c in chunks) == full["choices"][0]["text"]
    last = chunks[-1]["choices"][0]
    assert last["text"] == "" and last["finish_reason"] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_stream_with_stop_holds_back_and_usage_chunk(llm):
    full = greedy(llm, n=24)["choices"][0]["text"]
    stop = full[5:9]
    chunks = list(greedy(llm, n=24, stop=[stop], stream=True, stream_options={"include_usage": True}))
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert text == full[:full.index(stop)]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_context_overflow_and_clamp(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=32, n_threads=1, verbose=False) as m:
        with pytest.raises(ValueError, match=r"Requested tokens \(\d+\) exceed context window of 32"):
            m.create_completion("word " * 40)
        out = m.create_completion("Once upon a time", max_tokens=100, temperature=0.0)
        assert out["choices"][0]["finish_reason"] in ("length", "stop")
        assert out["usage"]["total_tokens"] <= 32


def test_seed_reproducible(llm):
    a = llm(PROMPT, max_tokens=16, temperature=1.0, seed=7)["choices"][0]["text"]
    b = llm(PROMPT, max_tokens=16, temperature=1.0, seed=7)["choices"][0]["text"]
    c = llm(PROMPT, max_tokens=16, temperature=1.0, seed=8)["choices"][0]["text"]
    d = llm(PROMPT, max_tokens=16, temperature=1.0, seed=9)["choices"][0]["text"]
    assert a == b
    assert len({a, c, d}) > 1


def test_sampling_knobs_run(llm):
    for kw in [dict(top_k=1), dict(top_p=0.5), dict(min_p=0.3), dict(typical_p=0.5), dict(repeat_penalty=1.3),
               dict(frequency_penalty=0.5, presence_penalty=0.5), dict(mirostat_mode=1), dict(mirostat_mode=2),
               dict(tfs_z=0.9)]:
        out = llm(PROMPT, max_tokens=8, temperature=0.7, seed=3, **kw)
        assert out["usage"]["completion_tokens"] >= 1
    # top_k=1 is greedy whatever the temperature
    assert llm(PROMPT, max_tokens=8, top_k=1, temperature=1.5, seed=1)["choices"][0]["text"] == \
        greedy(llm, n=8)["choices"][0]["text"]


def test_logit_bias_and_logits_processor_force_a_token(llm):
    target = llm.tokenize(b" banana", add_bos=False)[0]
    out = llm(PROMPT, max_tokens=3, temperature=0.0, logit_bias={target: 100.0})
    assert out["choices"][0]["text"] == " banana" * 3

    def force(ids, scores):
        scores[:] = -np.inf
        scores[target] = 0.0
        return scores

    out2 = llm(PROMPT, max_tokens=3, temperature=0.8, logits_processor=LogitsProcessorList([force]))
    assert out2["choices"][0]["text"] == " banana" * 3


def test_stopping_criteria(llm):
    n_prompt = len(llm.tokenize(PROMPT.encode(), add_bos=False))
    crit = StoppingCriteriaList([lambda ids, logits: len(ids) >= n_prompt + 4])
    out = greedy(llm, n=20, stopping_criteria=crit)
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["completion_tokens"] == 3


def test_eos_ends_with_stop(llm):
    out = llm.create_chat_completion([{"role": "user", "content": "Say OK."}], temperature=0.0, max_tokens=64)
    assert out["choices"][0]["finish_reason"] == "stop"
    assert "<|im_end|>" not in out["choices"][0]["message"]["content"]


# ---------------------------------------------------------------- logprobs
def test_logprobs_need_logits_all(llm):
    with pytest.raises(ValueError, match="logits_all"):
        llm(PROMPT, max_tokens=2, logprobs=2)


def test_logprobs_shape(llm_all):
    out = llm_all(PROMPT, max_tokens=5, temperature=0.0, logprobs=3)
    lp = out["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == 5
    assert "".join(lp["tokens"]) == out["choices"][0]["text"]
    for v, top in zip(lp["token_logprobs"], lp["top_logprobs"]):
        assert v <= 0 and 3 <= len(top) <= 4
        assert max(top.values()) == pytest.approx(v, abs=1e-5)  # greedy took the most likely token
    echo = llm_all(PROMPT, max_tokens=2, temperature=0.0, logprobs=1, echo=True)["choices"][0]["logprobs"]
    assert echo["token_logprobs"][0] is None and echo["top_logprobs"][0] is None
    assert all(v <= 0 for v in echo["token_logprobs"][1:])


def test_chat_logprobs(llm_all):
    out = llm_all.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0.0,
                                         logprobs=True, top_logprobs=2)
    content = out["choices"][0]["logprobs"]["content"]
    assert len(content) >= 1 and {"token", "logprob", "bytes", "top_logprobs"} <= set(content[0])


# ---------------------------------------------------------------- prefix reuse and state
def test_prefix_reuse_gives_fresh_output(llm, smollm2_path):
    long_prompt = "Q: What is the tallest mountain on Earth?\nA:"
    llm.reset()
    first = greedy(llm, long_prompt, n=10)["choices"][0]["text"]
    llm._ctx.reset_timings()
    second = greedy(llm, long_prompt + first, n=10)["choices"][0]["text"]
    evaluated = llm._ctx.timings()["n_prompt_tokens"]
    n_prompt = len(llm.tokenize((long_prompt + first).encode(), add_bos=False))
    assert evaluated < n_prompt // 2  # the shared prefix was not evaluated again
    with Llama(str(smollm2_path), n_ctx=512, n_threads=1, verbose=False) as fresh:
        assert greedy(fresh, long_prompt + first, n=10)["choices"][0]["text"] == second
    # the same prompt twice: the cache is fully reused and the output is the same
    assert greedy(llm, long_prompt, n=10)["choices"][0]["text"] == first
    assert greedy(llm, long_prompt, n=10)["choices"][0]["text"] == first


def test_save_and_load_state(llm):
    greedy(llm, PROMPT, n=1)
    state = llm.save_state()
    assert state.n_tokens == llm.n_tokens and state.llama_state_size > 0
    a = llm(PROMPT, max_tokens=10, temperature=0.9, seed=11)["choices"][0]["text"]
    greedy(llm, "Something else entirely", n=4)
    llm.load_state(state)
    assert llm.n_tokens == state.n_tokens
    b = llm(PROMPT, max_tokens=10, temperature=0.9, seed=11)["choices"][0]["text"]
    assert a == b


# ---------------------------------------------------------------- logging
def test_verbose_false_is_silent(smollm2_path, capfd):
    with Llama(str(smollm2_path), n_ctx=64, n_threads=1, verbose=False) as m:
        m("Hi", max_tokens=2)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_logs_go_to_logging(smollm2_path, caplog):
    with caplog.at_level(logging.INFO, logger="powerinfer_py"):
        with Llama(str(smollm2_path), n_ctx=64, n_threads=1, verbose=True) as m:
            m("Hi", max_tokens=2)
    assert any(r.name.startswith("powerinfer_py") for r in caplog.records)
    from powerinfer_py import _logger
    _logger.set_verbose(False)


def test_small_n_batch_evaluates_in_chunks(smollm2_path, llm):
    prompt = "Q: List three colors of the rainbow and explain each one briefly.\nA:"
    with Llama(str(smollm2_path), n_ctx=256, n_batch=8, n_threads=1, verbose=False) as small:
        assert greedy(small, prompt, n=8)["choices"][0]["text"] == greedy(llm, prompt, n=8)["choices"][0]["text"]


def test_unlimited_max_tokens_stops_at_context(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=48, n_threads=1, verbose=False) as m:
        eog = {t: -100.0 for t in range(m.n_vocab()) if m.is_eog(t)}
        for mt in (None, -1, 0):
            out = m("Once upon a time", max_tokens=mt, temperature=0.0, logit_bias=eog)
            assert out["choices"][0]["finish_reason"] == "length"
            assert out["usage"]["total_tokens"] == 48


def test_generate_low_level(llm):
    toks = llm.tokenize(PROMPT.encode(), add_bos=False)
    out = []
    for t in llm.generate(toks, temp=0.0):
        out.append(t)
        if len(out) == 6:
            break
    assert llm.detokenize(out).decode() == greedy(llm, n=6)["choices"][0]["text"]


def test_stream_never_splits_a_utf8_character(llm):
    """Force the byte-level tokens of an emoji, one per step: chunks carry only whole characters."""
    seq = llm.tokenize("🦙🦙".encode(), add_bos=False)
    assert any(not llm.token_piece(t).decode("utf-8", errors="ignore") for t in seq)  # partial-byte tokens
    n_prompt = len(llm.tokenize(PROMPT.encode(), add_bos=False))

    def force(ids, scores):
        step = len(ids) - n_prompt
        scores[:] = -np.inf
        scores[seq[step]] = 0.0
        return scores

    chunks = list(llm(PROMPT, max_tokens=len(seq), stream=True, logits_processor=LogitsProcessorList([force])))
    texts = [c["choices"][0]["text"] for c in chunks]
    assert "".join(texts) == "🦙🦙"
    assert all("\ufffd" not in t for t in texts)
    assert all(t in ("", "🦙", "🦙🦙") for t in texts)
