"""LangChain models over powerinfer_py's Llama (needs the ``langchain`` extra: langchain-core).

    from powerinfer_py.langchain import ChatPowerInfer, PowerInferLLM
    llm = PowerInferLLM(model_path="model.gguf", max_tokens=64)          # a text-completion LLM
    chat = ChatPowerInfer(model_path="model.gguf", temperature=0)        # a chat model
    chat.with_structured_output(MyPydanticModel).invoke("...")

Field names follow langchain-community's LlamaCpp/ChatLlamaCpp (model_path, n_ctx, n_gpu_layers,
max_tokens, temperature, top_p, top_k, repeat_penalty, stop, streaming, model_kwargs); unknown
constructor arguments go into model_kwargs, which are passed to Llama(). An already loaded Llama
can be shared with ``client=llama`` (then model_path may be omitted).
"""
from __future__ import annotations

from operator import itemgetter
from typing import Any, Dict, Iterator, List, Literal, Optional, Sequence, Union

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.language_models.llms import LLM
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (JsonOutputKeyToolsParser, PydanticToolsParser,
                                                        parse_tool_call)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, GenerationChunk
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["PowerInferLLM", "ChatPowerInfer"]

_LOAD_FIELDS = ("n_ctx", "n_gpu_layers", "n_threads", "n_batch", "seed", "use_mmap", "use_mlock", "verbose")


class _PowerInferBase(BaseModel):
    """Fields and model loading shared by the two classes."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    client: Any = Field(default=None, exclude=True, description="the Llama instance (built from model_path)")
    model_path: Optional[str] = None
    n_ctx: int = 2048
    n_gpu_layers: Optional[int] = None
    n_threads: Optional[int] = None
    n_batch: int = 512
    seed: int = -1
    use_mmap: bool = True
    use_mlock: bool = False
    verbose: bool = False
    max_tokens: Optional[int] = 256
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    stop: Optional[List[str]] = None
    grammar: Optional[str] = Field(default=None, description="GBNF grammar constraining every answer")
    model_kwargs: Dict[str, Any] = Field(default_factory=dict, description="extra Llama() arguments")

    @model_validator(mode="before")
    @classmethod
    def _extra_into_model_kwargs(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        known = set(cls.model_fields) | {"callbacks", "callback_manager", "tags", "metadata", "cache",
                                         "rate_limiter", "disable_streaming", "output_version"}
        extra = {k: values.pop(k) for k in list(values) if k not in known}
        if extra:
            values["model_kwargs"] = {**values.get("model_kwargs", {}), **extra}
        return values

    @model_validator(mode="after")
    def _load(self):
        if self.client is None:
            if not self.model_path:
                raise ValueError("give model_path (a GGUF file) or client (a loaded powerinfer_py.Llama)")
            from .llama import Llama

            kw = {name: getattr(self, name) for name in _LOAD_FIELDS}
            if kw["n_gpu_layers"] is None:
                del kw["n_gpu_layers"]
            if kw["seed"] == -1:
                kw["seed"] = 0xFFFFFFFF
            kw.update(self.model_kwargs)
            try:
                self.client = Llama(model_path=self.model_path, **kw)
            except Exception as e:
                raise ValueError(f"Could not load Llama model from path: {self.model_path}: {e}") from e
        return self

    def _sampling(self, stop: Optional[List[str]], **kwargs: Any) -> Dict[str, Any]:
        params: Dict[str, Any] = dict(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                      top_k=self.top_k, min_p=self.min_p, repeat_penalty=self.repeat_penalty,
                                      stop=list(stop if stop is not None else (self.stop or [])))
        if self.grammar:
            from .llama_grammar import LlamaGrammar

            params["grammar"] = LlamaGrammar.from_string(self.grammar, verbose=False)
        params.update(kwargs)
        return params

    @property
    def _identifying_params(self) -> Dict[str, Any]:
        return {"model_path": self.model_path or getattr(self.client, "model_path", None), "n_ctx": self.n_ctx,
                "max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "top_k": self.top_k, "min_p": self.min_p, "repeat_penalty": self.repeat_penalty,
                "stop": self.stop, "grammar": self.grammar}

    def get_num_tokens(self, text: str) -> int:
        return len(self.client.tokenize(text.encode("utf-8")))


class PowerInferLLM(_PowerInferBase, LLM):
    """A langchain-core text-completion LLM (prompt string in, completion string out)."""

    streaming: bool = False

    @property
    def _llm_type(self) -> str:
        return "powerinfer"

    def _call(self, prompt: str, stop: Optional[List[str]] = None,
              run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> str:
        if self.streaming:
            return "".join(chunk.text for chunk in self._stream(prompt, stop, run_manager, **kwargs))
        out = self.client.create_completion(prompt, **self._sampling(stop, **kwargs))
        return out["choices"][0]["text"]

    def _stream(self, prompt: str, stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        for part in self.client.create_completion(prompt, stream=True, **self._sampling(stop, **kwargs)):
            choice = part["choices"][0]
            chunk = GenerationChunk(text=choice["text"], generation_info={
                "finish_reason": choice.get("finish_reason"), "logprobs": choice.get("logprobs")})
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk, verbose=self.verbose)
            yield chunk


def _usage(usage: Optional[Dict[str, int]]) -> Optional[UsageMetadata]:
    if not usage:
        return None
    return UsageMetadata(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"],
                         total_tokens=usage["total_tokens"])


def _tool_choice(tool_choice: Any, tools: List[Dict[str, Any]]) -> Any:
    """LangChain's tool_choice spellings -> OpenAI's. A bool/"any"/"required" with one tool forces it."""
    if tool_choice in (None, "auto", "none", False):
        return None if tool_choice in (None, False) else tool_choice
    if isinstance(tool_choice, dict):
        return tool_choice
    names = [t["function"]["name"] for t in tools]
    if tool_choice in (True, "any", "required"):
        if len(names) != 1:
            raise ValueError(f"tool_choice={tool_choice!r} needs exactly one tool to force; got {names}")
        return {"type": "function", "function": {"name": names[0]}}
    if isinstance(tool_choice, str):
        if tool_choice not in names:
            raise ValueError(f"tool_choice {tool_choice!r} is not among the tools {names}")
        return {"type": "function", "function": {"name": tool_choice}}
    raise ValueError(f"unsupported tool_choice {tool_choice!r}")


class ChatPowerInfer(_PowerInferBase, BaseChatModel):
    """A langchain-core chat model; uses the GGUF's chat template (or Llama's chat_format)."""

    streaming: bool = False

    @property
    def _llm_type(self) -> str:
        return "powerinfer-chat"

    def _chat_params(self, messages: List[BaseMessage], stop: Optional[List[str]], **kwargs: Any) -> Dict[str, Any]:
        params = self._sampling(stop, **kwargs)
        params["messages"] = convert_to_openai_messages(messages)
        return params

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> ChatResult:
        if self.streaming and not kwargs.get("tool_choice"):
            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        out = self.client.create_chat_completion(**self._chat_params(messages, stop, **kwargs))
        choice = out["choices"][0]
        raw = choice["message"]
        tool_calls, invalid = [], []
        for call in raw.get("tool_calls") or []:
            try:
                tool_calls.append(parse_tool_call(call, return_id=True))
            except Exception as e:  # the model wrote arguments that are not JSON
                invalid.append({"name": call["function"]["name"], "args": call["function"]["arguments"],
                                "id": call.get("id"), "error": str(e), "type": "invalid_tool_call"})
        meta = {"finish_reason": choice.get("finish_reason"), "model_name": out.get("model"),
                "logprobs": choice.get("logprobs")}
        message = AIMessage(content=raw.get("content") or "", tool_calls=tool_calls, invalid_tool_calls=invalid,
                            usage_metadata=_usage(out.get("usage")), response_metadata=meta, id=out.get("id"))
        return ChatResult(generations=[ChatGeneration(message=message, generation_info=meta)],
                          llm_output={"token_usage": out.get("usage"), "model_name": out.get("model")})

    def _stream(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        params = self._chat_params(messages, stop, **kwargs)
        params["stream_options"] = {"include_usage": True}
        for part in self.client.create_chat_completion(stream=True, **params):
            if not part["choices"]:  # the closing usage chunk
                chunk = ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=_usage(part.get("usage"))))
            else:
                choice = part["choices"][0]
                delta = choice.get("delta") or {}
                calls = [{"name": c["function"].get("name"), "args": c["function"].get("arguments"),
                          "id": c.get("id"), "index": c.get("index", 0)} for c in delta.get("tool_calls") or []]
                finish = choice.get("finish_reason")
                info = {"finish_reason": finish, "model_name": part.get("model")} if finish else None
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(content=delta.get("content") or "", tool_call_chunks=calls,
                                           response_metadata=info or {}, id=part.get("id")),
                    generation_info=info)
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, BaseMessage]:
        """Tools as OpenAI function specs. A forced tool (a name, True, "any" or "required" with one
        tool) makes the answer a call whose arguments are constrained to the tool's JSON schema."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        choice = _tool_choice(tool_choice, formatted)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(self, schema: Union[Dict[str, Any], type], *, include_raw: bool = False,
                               method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
                               **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Answers parsed into schema (a pydantic class, a TypedDict or a JSON-schema dict). Generation is
        grammar-constrained to the schema, so the output always parses."""
        is_pydantic = isinstance(schema, type) and issubclass(schema, BaseModel)
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name)
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True) if is_pydantic else \
                JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        elif method in ("json_schema", "json_mode"):
            if method == "json_mode":
                fmt: Dict[str, Any] = {"type": "json_object"}
            else:
                json_schema = schema.model_json_schema() if is_pydantic else \
                    convert_to_openai_tool(schema)["function"]["parameters"]
                fmt = {"type": "json_schema", "json_schema": {"name": "output", "schema": json_schema}}
            llm = self.bind(response_format=fmt)
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        else:
            raise ValueError(f"method must be function_calling, json_schema or json_mode, not {method!r}")
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks([fallback], exception_key="parsing_error")
