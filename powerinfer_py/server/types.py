"""Request bodies of the OpenAI-style routes, validated by pydantic so absurd values get a 400.

Unknown fields are ignored (clients send fields of newer API versions). Bounds follow OpenAI's
documented ranges where there is one; ``n`` and ``best_of`` must be 1 (one model, one sequence).
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_STOP = 16
MAX_LOGPROBS = 20


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class _Sampling(_Request):
    """Fields shared by completions and chat completions."""

    model: Optional[str] = None
    max_tokens: Optional[int] = Field(default=None, ge=0, description="0 or null: up to the context window")
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, ge=0.0, le=1.0)
    top_k: int = Field(default=40, ge=0, le=1 << 20)
    min_p: float = Field(default=0.05, ge=0.0, le=1.0)
    typical_p: float = Field(default=1.0, ge=0.0, le=1.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    repeat_penalty: float = Field(default=1.0, ge=0.0, le=10.0)
    stop: Optional[Union[str, List[str]]] = None
    stream: bool = False
    stream_options: Optional[Dict[str, Any]] = None
    seed: Optional[int] = Field(default=None, ge=-(1 << 63), lt=1 << 64)
    logit_bias: Optional[Dict[str, float]] = None
    mirostat_mode: int = Field(default=0, ge=0, le=2)
    mirostat_tau: float = Field(default=5.0, ge=0.0, le=100.0)
    mirostat_eta: float = Field(default=0.1, ge=0.0, le=1.0)
    grammar: Optional[str] = Field(default=None, max_length=1 << 20, description="a GBNF grammar")
    n: int = Field(default=1, ge=1, le=1, description="only one choice per request")
    user: Optional[str] = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, v):
        if isinstance(v, list) and len(v) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, v):
        for key, bias in (v or {}).items():
            try:
                int(key)
            except ValueError:
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}") from None
            if not -100.0 <= bias <= 100.0:
                raise ValueError(f"logit_bias values must lie in [-100, 100], got {bias}")
        return v

    def sampling_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for Llama.create_completion / create_chat_completion."""
        kw = dict(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                  min_p=self.min_p, typical_p=self.typical_p, presence_penalty=self.presence_penalty,
                  frequency_penalty=self.frequency_penalty, repeat_penalty=self.repeat_penalty,
                  stop=self.stop or [], stream=self.stream, stream_options=self.stream_options,
                  mirostat_mode=self.mirostat_mode, mirostat_tau=self.mirostat_tau,
                  mirostat_eta=self.mirostat_eta)
        if self.seed is not None:
            kw["seed"] = self.seed & 0xFFFFFFFF
        if self.logit_bias:
            kw["logit_bias"] = {int(k): float(b) for k, b in self.logit_bias.items()}
        return kw


class CompletionRequest(_Sampling):
    prompt: Union[str, List[str], List[int]] = ""
    suffix: Optional[str] = None
    max_tokens: Optional[int] = Field(default=16, ge=0)
    logprobs: Optional[int] = Field(default=None, ge=0, le=MAX_LOGPROBS)
    echo: bool = False
    best_of: Optional[int] = Field(default=None, ge=1, le=1)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v):
        if isinstance(v, list) and v and isinstance(v[0], str):
            if len(v) > 1:
                raise ValueError("only one prompt per request (a list of at most one string)")
            return v[0]
        return v


class ChatMessage(_Request):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Optional[Union[str, List[Dict[str, Any]]]] = None
    name: Optional[str] = None
    tool_calls: Optional[List[Dict[str, Any]]] = None
    tool_call_id: Optional[str] = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema_: Optional[Dict[str, Any]] = Field(default=None, alias="schema")
    json_schema: Optional[Dict[str, Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": self.type}
        if self.schema_ is not None:
            out["schema"] = self.schema_
        if self.json_schema is not None:
            out["json_schema"] = self.json_schema
        return out


class ChatCompletionRequest(_Sampling):
    messages: List[ChatMessage] = Field(min_length=1)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    max_completion_tokens: Optional[int] = Field(default=None, ge=0)
    logprobs: Optional[bool] = False
    top_logprobs: Optional[int] = Field(default=None, ge=0, le=MAX_LOGPROBS)
    response_format: Optional[ResponseFormat] = None
    tools: Optional[List[Dict[str, Any]]] = None
    tool_choice: Optional[Union[str, Dict[str, Any]]] = None
    functions: Optional[List[Dict[str, Any]]] = None
    function_call: Optional[Union[str, Dict[str, Any]]] = None

    @model_validator(mode="after")
    def _completion_tokens_alias(self):
        if self.max_tokens is None and self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens
        return self

    def chat_kwargs(self) -> Dict[str, Any]:
        kw = self.sampling_kwargs()
        kw["messages"] = [m.model_dump(exclude_none=True) for m in self.messages]
        if self.logprobs:
            kw["logprobs"] = True
            kw["top_logprobs"] = self.top_logprobs
        if self.response_format is not None:
            kw["response_format"] = self.response_format.as_dict()
        for name in ("tools", "tool_choice", "functions", "function_call"):
            value = getattr(self, name)
            if value is not None:
                kw[name] = value
        return kw


class EmbeddingRequest(_Request):
    model: Optional[str] = None
    input: Union[str, List[str]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = Field(default=None, ge=1)
    user: Optional[str] = None

    @field_validator("input")
    @classmethod
    def _some_input(cls, v):
        if isinstance(v, list) and not 1 <= len(v) <= 2048:
            raise ValueError("input must hold between 1 and 2048 strings")
        return v


class TokenizeRequest(_Request):
    input: str
    add_bos: bool = True
    special: bool = False


class DetokenizeRequest(_Request):
    tokens: List[int] = Field(max_length=1 << 20)
