"""create_chat_completion on SmolLM2: shapes, streaming, templates from the GGUF, named formats,
chat_template_kwargs, structured output."""
from __future__ import annotations

import json

import pytest

from powerinfer_py import Llama
from powerinfer_py import chat_format as cf

MSGS = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def llm(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=1024, n_threads=1, verbose=False) as m:
        yield m


def test_chat_shape_and_defaults(llm):
    out = llm.create_chat_completion(MSGS, temperature=0.0, max_tokens=32)
    assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
    ch = out["choices"][0]
    assert ch["message"]["role"] == "assistant" and isinstance(ch["message"]["content"], str)
    assert ch["message"]["content"].strip()
    assert ch["finish_reason"] in ("stop", "length")
    assert set(out["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_chat_stream_shape(llm):
    full = llm.create_chat_completion(MSGS, temperature=0.0, max_tokens=24)
    chunks = list(llm.create_chat_completion(MSGS, temperature=0.0, max_tokens=24, stream=True,
                                             stream_options={"include_usage": True}))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-2]["choices"][0]["delta"] == {} and chunks[-2]["choices"][0]["finish_reason"] is not None
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == full["usage"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
    assert text == full["choices"][0]["message"]["content"]


def test_chat_uses_gguf_template_prompt(llm):
    out = llm.create_chat_completion(MSGS, temperature=0.0, max_tokens=1)
    prompt = cf.formatter_for(llm, "chat_template.default")(messages=MSGS).prompt
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert out["usage"]["prompt_tokens"] == len(llm.tokenize(prompt.encode(), add_bos=False, special=True))


def test_named_format_and_template_kwargs(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=512, chat_format="chatml", n_threads=1, verbose=False) as m:
        assert m.chat_format == "chatml"
        out = m.create_chat_completion(MSGS, temperature=0.0, max_tokens=8)
        assert out["choices"][0]["message"]["content"]
    with Llama(str(smollm2_path), n_ctx=512, n_threads=1, verbose=False, chat_template_kwargs={"extra": "A"}) as m:
        t = "{% for m in messages %}{{ m['content'] }}{% endfor %}{{ extra }}{{ more | default('') }}"
        m._chat_handlers["chat_template.default"] = cf.Jinja2ChatFormatter(t, "<|im_end|>", "<|im_start|>")
        a = m.create_chat_completion(MSGS, max_tokens=1, temperature=0.0)["usage"]["prompt_tokens"]
        b = m.create_chat_completion(MSGS, max_tokens=1, temperature=0.0,
                                     chat_template_kwargs={"more": " and some more words here"})["usage"]["prompt_tokens"]
        assert b > a


def test_unknown_chat_format_lists_the_valid_ones(smollm2_path):
    with pytest.raises(cf.LlamaChatCompletionHandlerNotFoundException, match="chatml"):
        Llama(str(smollm2_path), n_ctx=64, chat_format="nope", n_threads=1, verbose=False)


def test_broken_template_fails_at_use_not_load(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=64, n_threads=1, verbose=False) as m:
        m._chat_handlers["chat_template.default"] = cf.Jinja2ChatFormatter("{% if %}", "", "", name="bad")
        with pytest.raises(cf.ChatTemplateError, match="bad"):
            m.create_chat_completion(MSGS, max_tokens=1)


def test_chat_handler_is_called(smollm2_path):
    seen = {}

    def handler(llama, messages, **kw):
        seen.update(kw, n=len(messages))
        return {"handled": True}

    with Llama(str(smollm2_path), n_ctx=64, chat_handler=handler, n_threads=1, verbose=False) as m:
        assert m.create_chat_completion(MSGS, temperature=0.3) == {"handled": True}
    assert seen["n"] == 1 and seen["temperature"] == 0.3


@pytest.mark.parametrize("fmt", [
    {"type": "json_object"},
    {"type": "json_object", "schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                                        "population": {"type": "integer"}},
                                       "required": ["city", "population"]}},
    {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"answer": {"type": "string"}, "sure": {"type": "boolean"}},
        "required": ["answer", "sure"]}}},
])
def test_structured_output_always_parses(llm, fmt):
    msgs = [{"role": "user", "content": "Give me the capital of France and its population as JSON."}]
    for seed in (1, 2):
        out = llm.create_chat_completion(msgs, response_format=fmt, temperature=0.7, seed=seed, max_tokens=200)
        data = json.loads(out["choices"][0]["message"]["content"])
        assert isinstance(data, dict)
        schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
        if schema:
            assert set(schema["required"]) <= set(data)
            for k, v in schema["properties"].items():
                if k in data:
                    assert isinstance(data[k], {"string": str, "integer": int, "boolean": bool}[v["type"]])


def test_forced_tool_call(llm):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    out = llm.create_chat_completion([{"role": "user", "content": "Weather in Paris?"}], tools=tools,
                                     tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                     temperature=0.0, max_tokens=64)
    ch = out["choices"][0]
    assert ch["finish_reason"] == "tool_calls"
    call = ch["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])


PEER_SCRIPT = r"""
import json, sys
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=512, verbose=False)
convs = json.loads(sys.argv[2])
out = []
for msgs in convs:
    r = llm.create_chat_completion(msgs, temperature=0.0, max_tokens=1)
    chunks = list(llm.create_chat_completion(msgs, temperature=0.0, max_tokens=2, stream=True))
    out.append({"usage": r["usage"], "keys": sorted(r), "choice_keys": sorted(r["choices"][0]),
                "first_delta": chunks[0]["choices"][0]["delta"], "last_delta": chunks[-1]["choices"][0]["delta"],
                "chunk_keys": sorted(chunks[0])})
print(json.dumps(out))
"""


def test_chat_prompt_and_shapes_match_llama_cpp_python(llm, smollm2_path, peer_python):
    """The same messages give the same prompt token count (the template renders identically) and
    the same result and chunk shapes as llama-cpp-python 0.3.36."""
    import subprocess

    convs = [MSGS, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]]
    r = subprocess.run([str(peer_python), "-c", PEER_SCRIPT, str(smollm2_path), json.dumps(convs)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    peer = json.loads(r.stdout.strip().splitlines()[-1])
    for msgs, p in zip(convs, peer):
        ours = llm.create_chat_completion(msgs, temperature=0.0, max_tokens=1)
        chunks = list(llm.create_chat_completion(msgs, temperature=0.0, max_tokens=2, stream=True))
        assert ours["usage"]["prompt_tokens"] == p["usage"]["prompt_tokens"]
        assert sorted(ours) == p["keys"] and sorted(ours["choices"][0]) == p["choice_keys"]
        assert chunks[0]["choices"][0]["delta"] == p["first_delta"]
        assert chunks[-1]["choices"][0]["delta"] == p["last_delta"]
        assert sorted(chunks[0]) == p["chunk_keys"]
