"""powerinfer_py.langchain with the real langchain-core, over SmolLM2-135M-Instruct (greedy)."""
from __future__ import annotations

from typing import Any, List

import pytest

pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from powerinfer_py import Llama  # noqa: E402
from powerinfer_py.langchain import ChatPowerInfer, PowerInferLLM  # noqa: E402


@pytest.fixture(scope="module")
def llama(smollm2_path):
    with Llama(str(smollm2_path), n_ctx=1024, n_threads=2, verbose=False) as m:
        yield m


class Tokens(BaseCallbackHandler):
    def __init__(self):
        self.tokens: List[str] = []
        self.chunks: List[Any] = []

    def on_llm_new_token(self, token: str, *, chunk=None, **kwargs) -> None:
        self.tokens.append(token)
        self.chunks.append(chunk)


class Person(BaseModel):
    name: str
    age: int


def test_llm_invoke_matches_library(llama):
    llm = PowerInferLLM(client=llama, max_tokens=8, temperature=0)
    ref = llama.create_completion("The capital of France is", max_tokens=8, temperature=0, repeat_penalty=1.1)
    assert llm.invoke("The capital of France is") == ref["choices"][0]["text"] != ""
    assert llm._llm_type == "powerinfer"
    assert llm._identifying_params["max_tokens"] == 8


def test_llm_stream_calls_on_llm_new_token(llama):
    llm = PowerInferLLM(client=llama, max_tokens=8, temperature=0)
    whole = llm.invoke("One, two, three,")
    cb = Tokens()
    parts = list(llm.stream("One, two, three,", config={"callbacks": [cb]}))
    assert len(parts) > 2 and "".join(parts) == whole
    assert "".join(cb.tokens) == whole and all(c is not None for c in cb.chunks)
    streaming = PowerInferLLM(client=llama, max_tokens=8, temperature=0, streaming=True)
    assert streaming.invoke("One, two, three,") == whole


def test_llm_loads_from_model_path_and_keeps_unknown_kwargs(smollm2_path):
    llm = PowerInferLLM(model_path=str(smollm2_path), n_ctx=256, max_tokens=3, temperature=0, n_parts=-1, f16_kv=True)
    assert llm.model_kwargs == {"n_parts": -1, "f16_kv": True}
    assert llm.client.n_ctx() == 256 and isinstance(llm.invoke("Hello"), str)
    assert llm.get_num_tokens("Hello world") == len(llm.client.tokenize(b"Hello world"))
    with pytest.raises(ValueError):
        PowerInferLLM()
    with pytest.raises(ValueError, match="Could not load"):
        PowerInferLLM(model_path=str(smollm2_path) + ".missing")


def test_chat_invoke_and_stream(llama):
    chat = ChatPowerInfer(client=llama, max_tokens=12, temperature=0)
    msgs = [SystemMessage("You are brief."), HumanMessage("Name a fruit.")]
    msg = chat.invoke(msgs)
    assert isinstance(msg, AIMessage) and msg.content
    assert msg.usage_metadata["output_tokens"] <= 12 and msg.usage_metadata["input_tokens"] > 5
    assert msg.response_metadata["finish_reason"] in ("stop", "length")
    cb = Tokens()
    chunks = list(chat.stream(msgs, config={"callbacks": [cb]}))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == msg.content and "".join(cb.tokens) == msg.content
    assert total.usage_metadata["output_tokens"] == msg.usage_metadata["output_tokens"]
    assert ChatPowerInfer(client=llama, max_tokens=12, temperature=0, streaming=True).invoke(msgs).content == msg.content


def test_prompt_model_parser_chain(llama):
    chat = ChatPowerInfer(client=llama, max_tokens=10, temperature=0)
    prompt = ChatPromptTemplate.from_messages([("system", "You answer in one word."), ("user", "Colour of {thing}?")])
    chain = prompt | chat | StrOutputParser()
    out = chain.invoke({"thing": "the sky"})
    direct = chat.invoke(prompt.invoke({"thing": "the sky"})).content
    assert isinstance(out, str) and out == direct
    text_chain = PromptTemplate.from_template("Q: {q}\nA:") | PowerInferLLM(client=llama, max_tokens=6, temperature=0)
    assert isinstance(text_chain.invoke({"q": "2+2?"}), str)
    assert [s for s in chain.stream({"thing": "grass"})]  # streams through the parser


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_pydantic(llama, method):
    chat = ChatPowerInfer(client=llama, max_tokens=40, temperature=0)
    out = chat.with_structured_output(Person, method=method).invoke("Alice is 30 years old. Extract the person.")
    assert isinstance(out, Person) and isinstance(out.age, int)


def test_structured_output_dict_schema_and_raw(llama):
    schema = {"title": "city", "description": "a city", "type": "object",
              "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
              "required": ["name", "country"]}
    chat = ChatPowerInfer(client=llama, max_tokens=40, temperature=0)
    out = chat.with_structured_output(schema).invoke("Paris is in France.")
    assert isinstance(out, dict) and set(out) == {"name", "country"}
    raw = chat.with_structured_output(Person, include_raw=True).invoke("Bob is 41.")
    assert raw["parsing_error"] is None and isinstance(raw["parsed"], Person)
    assert raw["raw"].tool_calls[0]["name"] == "Person"


def test_bind_tools_forced_call(llama):
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return "sunny"

    chat = ChatPowerInfer(client=llama, max_tokens=30, temperature=0).bind_tools([get_weather], tool_choice="any")
    msg = chat.invoke("What is the weather in Rome?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather"
    assert isinstance(msg.tool_calls[0]["args"]["city"], str)
    with pytest.raises(ValueError):
        ChatPowerInfer(client=llama).bind_tools([get_weather], tool_choice="nope")
