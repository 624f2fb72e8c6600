"""Chat prompts: the model's own Jinja2 template, a registry of named formats, and chat completion.

Which format a ``Llama`` uses (the order llama-cpp-python documents):
  1. an explicit ``chat_handler`` (any callable taking ``llama=``, ``messages=`` and the sampling
     keywords, returning a chat completion),
  2. an explicit ``chat_format`` name (a registered format, or a template name from the file such as
     "chat_template.default" or "tool_use" for ``tokenizer.chat_template.tool_use``),
  3. the file's ``tokenizer.chat_template`` ("chat_template.default"),
  4. "llama-2".

Templates run in jinja2's ImmutableSandboxedEnvironment (trim_blocks, lstrip_blocks) with
messages, bos_token, eos_token, add_generation_prompt, raise_exception, strftime_now, tools,
tool_choice, a transformers-style ``tojson`` and any ``chat_template_kwargs``. A template is compiled
when first used, so a broken template only fails the calls that need it, with a clear message.
"""
from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

logger = logging.getLogger("powerinfer_py")

# ---------------------------------------------------------------------------------------------
# Formatter protocol and registry
# ---------------------------------------------------------------------------------------------


@dataclass
class ChatFormatterResponse:
    prompt: str
    stop: Optional[Union[str, List[str]]] = None
    stopping_criteria: Any = None
    added_special: bool = False  # the prompt already carries BOS (do not add another)


ChatFormatter = Callable[..., ChatFormatterResponse]


class LlamaChatCompletionHandlerNotFoundException(Exception):
    pass


class ChatTemplateError(ValueError):
    """A chat template that cannot be compiled or rendered."""


_FORMATS: Dict[str, ChatFormatter] = {}


def register_chat_format(name: str, overwrite: bool = False):
    """Decorator registering a formatter ``f(messages, **kwargs) -> ChatFormatterResponse`` under name."""

    def deco(f: ChatFormatter) -> ChatFormatter:
        if name in _FORMATS and not overwrite:
            raise ValueError(f"chat format {name!r} is already registered (pass overwrite=True to replace it)")
        _FORMATS[name] = f
        return f

    return deco


def get_chat_format(name: str) -> ChatFormatter:
    try:
        return _FORMATS[name]
    except KeyError:
        raise LlamaChatCompletionHandlerNotFoundException(
            f"Invalid chat format: {name} (valid formats: {', '.join(sorted(_FORMATS))})") from None


def list_chat_formats() -> List[str]:
    return sorted(_FORMATS)


# ---------------------------------------------------------------------------------------------
# Jinja2 templates
# ---------------------------------------------------------------------------------------------


def _tojson(value, indent=None, separators=None, sort_keys=False, ensure_ascii=False):
    # transformers renders templates with ensure_ascii=False; keep the same bytes in the prompt.
    return json.dumps(value, indent=indent, separators=separators, sort_keys=sort_keys, ensure_ascii=ensure_ascii)


def _raise_exception(message):
    raise ChatTemplateError(str(message))


def _strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def _make_environment():
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        """transformers' ``{% generation %}...{% endgeneration %}`` marks assistant text for training
        masks; for rendering it is a no-op block."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols", GenerationTag])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class Jinja2ChatFormatter:
    """Renders a Jinja2 chat template (HF ``chat_template``) into a prompt string."""

    def __init__(self, template: str, eos_token: str, bos_token: str, add_generation_prompt: bool = True,
                 stop_token_ids: Optional[List[int]] = None, name: str = "chat_template"):
        self.template = template
        self.eos_token = eos_token
        self.bos_token = bos_token
        self.add_generation_prompt = add_generation_prompt
        self.stop_token_ids = set(stop_token_ids or [])
        self.name = name
        self._compiled = None

    def _compile(self):
        if self._compiled is None:
            import jinja2

            try:
                self._compiled = _make_environment().from_string(self.template)
            except jinja2.TemplateError as e:
                raise ChatTemplateError(f"the chat template {self.name!r} does not compile: {e}") from e
        return self._compiled

    def __call__(self, *, messages: List[Dict[str, Any]], functions=None, function_call=None, tools=None,
                 tool_choice=None, **kwargs) -> ChatFormatterResponse:
        import jinja2

        template = self._compile()
        variables = dict(
            messages=messages, eos_token=self.eos_token, bos_token=self.bos_token,
            add_generation_prompt=self.add_generation_prompt, functions=functions, function_call=function_call,
            tools=tools, tool_choice=tool_choice,
        )
        variables.update(kwargs)
        try:
            prompt = template.render(**variables)
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"the chat template {self.name!r} failed to render: {e}") from e
        stop = [self.eos_token] if self.eos_token else []
        added = bool(self.bos_token) and prompt.startswith(self.bos_token)
        return ChatFormatterResponse(prompt=prompt, stop=stop, added_special=added)


# ---------------------------------------------------------------------------------------------
# Named formats for models without a template
# ---------------------------------------------------------------------------------------------


def _content(message: Dict[str, Any]) -> str:
    c = message.get("content")
    if c is None:
        return ""
    if isinstance(c, str):
        return c
    # OpenAI content parts: keep the text parts
    return "".join(part.get("text", "") for part in c if isinstance(part, dict) and part.get("type") == "text")


def _system_and_rest(messages, default_system: Optional[str] = None) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    if messages and messages[0].get("role") == "system":
        return _content(messages[0]), list(messages[1:])
    return default_system, list(messages)


@register_chat_format("chatml")
def format_chatml(messages, **kwargs) -> ChatFormatterResponse:
    parts = [f"<|im_start|>{m['role']}\n{_content(m)}<|im_end|>\n" for m in messages]
    parts.append("<|im_start|>assistant\n")
    return ChatFormatterResponse("".join(parts), stop=["<|im_end|>"])


@register_chat_format("qwen")
def format_qwen(messages, **kwargs) -> ChatFormatterResponse:
    system, rest = _system_and_rest(messages, "You are a helpful assistant.")
    msgs = [{"role": "system", "content": system}] + rest
    r = format_chatml(msgs)
    r.stop = ["<|im_end|>", "<|endoftext|>"]
    return r


@register_chat_format("llama-2")
def format_llama2(messages, **kwargs) -> ChatFormatterResponse:
    system, rest = _system_and_rest(messages)
    out = ""
    first_user = True
    for m in rest:
        if m["role"] == "user":
            text = _content(m)
            if first_user and system:
                text = f"<<SYS>>\n{system}\n<</SYS>>\n\n{text}"
            out += f"<s>[INST] {text} [/INST]"
            first_user = False
        elif m["role"] == "assistant":
            out += f" {_content(m)} </s>"
    return ChatFormatterResponse(out, stop=["</s>"], added_special=True)


@register_chat_format("llama-3")
def format_llama3(messages, **kwargs) -> ChatFormatterResponse:
    out = "<|begin_of_text|>"
    for m in messages:
        out += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{_content(m)}<|eot_id|>"
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return ChatFormatterResponse(out, stop=["<|eot_id|>"], added_special=True)


@register_chat_format("mistral-instruct")
def format_mistral_instruct(messages, **kwargs) -> ChatFormatterResponse:
    system, rest = _system_and_rest(messages)
    out = "<s>"
    first_user = True
    for m in rest:
        if m["role"] == "user":
            text = _content(m)
            if first_user and system:
                text = f"{system}\n\n{text}"
            out += f"[INST] {text} [/INST]"
            first_user = False
        elif m["role"] == "assistant":
            out += f"{_content(m)}</s>"
    return ChatFormatterResponse(out, stop=["</s>"], added_special=True)


@register_chat_format("gemma")
def format_gemma(messages, **kwargs) -> ChatFormatterResponse:
    system, rest = _system_and_rest(messages)
    out = "<bos>"
    first_user = True
    for m in rest:
        role = "model" if m["role"] == "assistant" else "user"
        text = _content(m)
        if role == "user" and first_user and system:
            text = f"{system}\n\n{text}"
            first_user = False
        out += f"<start_of_turn>{role}\n{text}<end_of_turn>\n"
    out += "<start_of_turn>model\n"
    return ChatFormatterResponse(out, stop=["<end_of_turn>"], added_special=True)


@register_chat_format("zephyr")
def format_zephyr(messages, **kwargs) -> ChatFormatterResponse:
    out = "".join(f"<|{m['role']}|>\n{_content(m)}</s>\n" for m in messages)
    out += "<|assistant|>\n"
    return ChatFormatterResponse(out, stop=["</s>"])


@register_chat_format("alpaca")
def format_alpaca(messages, **kwargs) -> ChatFormatterResponse:
    system, rest = _system_and_rest(messages)
    out = f"{system}\n\n" if system else ""
    for m in rest:
        if m["role"] == "user":
            out += f"### Instruction:\n{_content(m)}\n\n"
        elif m["role"] == "assistant":
            out += f"### Response:\n{_content(m)}\n\n"
    out += "### Response:\n"
    return ChatFormatterResponse(out, stop=["###"])


@register_chat_format("vicuna")
def format_vicuna(messages, **kwargs) -> ChatFormatterResponse:
    system, rest = _system_and_rest(
        messages, "A chat between a curious user and an artificial intelligence assistant. "
                  "The assistant gives helpful, detailed, and polite answers to the user's questions.")
    out = f"{system} " if system else ""
    for m in rest:
        if m["role"] == "user":
            out += f"USER: {_content(m)} "
        elif m["role"] == "assistant":
            out += f"ASSISTANT: {_content(m)}</s>"
    out += "ASSISTANT:"
    return ChatFormatterResponse(out, stop=["</s>", "USER:"])


# ---------------------------------------------------------------------------------------------
# Choosing the format of a model
# ---------------------------------------------------------------------------------------------


def _token_text(llm, token: int) -> str:
    if token < 0:
        return ""
    from ._lib import cstr, lib

    return cstr(lib.pi_token_text(llm._mp, token)) or ""


def resolve_chat_format(llm, chat_format: Optional[str]) -> Tuple[Optional[str], Dict[str, ChatFormatter]]:
    """Builds the template formatters from the file's metadata (uncompiled) and picks the format."""
    handlers: Dict[str, ChatFormatter] = {}
    eos, bos = _token_text(llm, llm._token_eos), _token_text(llm, llm._token_bos)
    for key, value in llm.metadata.items():
        if key == "tokenizer.chat_template":
            name = "chat_template.default"
        elif key.startswith("tokenizer.chat_template."):
            name = key[len("tokenizer.chat_template."):]
        else:
            continue
        handlers[name] = Jinja2ChatFormatter(value, eos_token=eos, bos_token=bos,
                                             stop_token_ids=[llm._token_eos], name=name)
    if llm.chat_handler is not None:
        return chat_format, handlers
    if chat_format is not None:
        if chat_format not in handlers and chat_format not in _FORMATS:
            get_chat_format(chat_format)  # raises with the list of valid names
        return chat_format, handlers
    if "chat_template.default" in handlers:
        return "chat_template.default", handlers
    logger.info("Using fallback chat format: llama-2")
    return "llama-2", handlers


def formatter_for(llm, name: Optional[str]) -> ChatFormatter:
    if name in llm._chat_handlers:
        return llm._chat_handlers[name]
    return get_chat_format(name)


# ---------------------------------------------------------------------------------------------
# create_chat_completion
# ---------------------------------------------------------------------------------------------


def _chat_logprobs(lp: Optional[Dict[str, list]]) -> Optional[Dict[str, Any]]:
    if lp is None:
        return None
    content = []
    for tok, val, tops in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
        content.append({
            "token": tok, "logprob": val, "bytes": None,
            "top_logprobs": [{"token": t, "logprob": v, "bytes": None} for t, v in (tops or {}).items()],
        })
    return {"content": content, "refusal": None}


def _response_format_grammar(response_format: Optional[Dict[str, Any]]):
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    from .llama_grammar import LlamaGrammar

    if kind == "json_object":
        schema = response_format.get("schema")
        return LlamaGrammar.from_json_schema(json.dumps(schema)) if schema else LlamaGrammar.json()
    if kind == "json_schema":  # OpenAI's form: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema", spec if "type" in spec or "properties" in spec else None)
        return LlamaGrammar.from_json_schema(json.dumps(schema)) if schema else LlamaGrammar.json()
    raise ValueError(f"response_format type {kind!r} is not one of 'text', 'json_object', 'json_schema'")


def _forced_tool(tools, tool_choice) -> Optional[Dict[str, Any]]:
    if not isinstance(tool_choice, dict):
        return None
    name = (tool_choice.get("function") or {}).get("name")
    for t in tools or []:
        if (t.get("function") or {}).get("name") == name:
            return t["function"]
    raise ValueError(f"tool_choice names {name!r}, which is not among the tools")


def create_chat_completion(
    llm, messages: List[Dict[str, Any]], functions=None, function_call=None, tools=None, tool_choice=None,
    temperature: float = 0.2, top_p: float = 0.95, top_k: int = 40, min_p: float = 0.05, typical_p: float = 1.0,
    stream: bool = False, stop: Optional[Union[str, List[str]]] = [], seed: Optional[int] = None,
    response_format=None, max_tokens: Optional[int] = None, presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0, repeat_penalty: float = 1.0, tfs_z: float = 1.0, mirostat_mode: int = 0,
    mirostat_tau: float = 5.0, mirostat_eta: float = 0.1, model: Optional[str] = None, logits_processor=None,
    grammar=None, logit_bias=None, logprobs: Optional[bool] = None, top_logprobs: Optional[int] = None,
    stream_options: Optional[Dict[str, Any]] = None, chat_template_kwargs: Optional[Dict[str, Any]] = None,
    **kwargs,
):
    if llm.chat_handler is not None:
        return llm.chat_handler(
            llama=llm, messages=messages, functions=functions, function_call=function_call, tools=tools,
            tool_choice=tool_choice, temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
            typical_p=typical_p, stream=stream, stop=stop, seed=seed, response_format=response_format,
            max_tokens=max_tokens, presence_penalty=presence_penalty, frequency_penalty=frequency_penalty,
            repeat_penalty=repeat_penalty, tfs_z=tfs_z, mirostat_mode=mirostat_mode, mirostat_tau=mirostat_tau,
            mirostat_eta=mirostat_eta, model=model, logits_processor=logits_processor, grammar=grammar,
            logit_bias=logit_bias, logprobs=logprobs, top_logprobs=top_logprobs)

    from . import _completion

    if functions and not tools:  # the legacy names
        tools = [{"type": "function", "function": f} for f in functions]
    if isinstance(function_call, dict) and tool_choice is None:
        tool_choice = {"type": "function", "function": function_call}

    template_kwargs = dict(llm.chat_template_kwargs)
    template_kwargs.update(chat_template_kwargs or {})
    formatter = formatter_for(llm, llm.chat_format)
    result = formatter(messages=messages, functions=functions, function_call=function_call, tools=tools,
                       tool_choice=tool_choice, **template_kwargs)
    prompt_tokens = llm.tokenize(result.prompt.encode("utf-8"), add_bos=False, special=True)
    if not result.added_special and llm._add_bos and llm._token_bos >= 0 and \
            (not prompt_tokens or prompt_tokens[0] != llm._token_bos):
        prompt_tokens.insert(0, llm._token_bos)

    stops = [stop] if isinstance(stop, str) else list(stop or [])
    fs = result.stop
    stops += [fs] if isinstance(fs, str) else list(fs or [])

    tool = _forced_tool(tools, tool_choice)
    if tool is not None and grammar is None:
        from .llama_grammar import LlamaGrammar

        grammar = LlamaGrammar.from_json_schema(json.dumps(tool.get("parameters") or {"type": "object"}))
    if grammar is None:
        grammar = _response_format_grammar(response_format)

    req = _completion.CompletionRequest(
        prompt=prompt_tokens, max_tokens=max_tokens, temperature=temperature, top_p=top_p, min_p=min_p,
        typical_p=typical_p, logprobs=(top_logprobs or 0) if logprobs else None, stop=stops,
        frequency_penalty=frequency_penalty, presence_penalty=presence_penalty, repeat_penalty=repeat_penalty,
        top_k=top_k, seed=seed, mirostat_mode=mirostat_mode, mirostat_tau=mirostat_tau, mirostat_eta=mirostat_eta,
        model=model, logits_processor=logits_processor, grammar=grammar, logit_bias=logit_bias,
        include_usage=bool((stream_options or {}).get("include_usage")),
    )
    if stream:
        return _completion.locked_stream(llm, _chat_chunks(llm, _completion.completion_chunks(llm, req), tool))
    with llm._lock:
        done = _completion.collect_completion(llm, _completion.completion_chunks(llm, req), req)
    return _chat_result(done, tool)


def _tool_call(tool, arguments: str, cmpl_id: str) -> Dict[str, Any]:
    return {"id": f"call__0_{tool['name']}_{cmpl_id}", "type": "function",
            "function": {"name": tool["name"], "arguments": arguments}}


def _chat_result(done: Dict[str, Any], tool) -> Dict[str, Any]:
    choice = done["choices"][0]
    message: Dict[str, Any] = {"role": "assistant", "content": choice["text"]}
    finish = choice["finish_reason"]
    if tool is not None:
        call = _tool_call(tool, choice["text"], done["id"])
        message = {"role": "assistant", "content": None, "function_call": call["function"], "tool_calls": [call]}
        finish = "tool_calls"
    return {
        "id": "chat" + done["id"],
        "object": "chat.completion",
        "created": done["created"],
        "model": done["model"],
        "choices": [{"index": 0, "message": message, "logprobs": _chat_logprobs(choice["logprobs"]),
                     "finish_reason": finish}],
        "usage": done["usage"],
    }


def _chat_chunks(llm, chunks: Iterator[Dict[str, Any]], tool) -> Iterator[Dict[str, Any]]:
    first = True
    for c in chunks:
        base = {"id": "chat" + c["id"], "object": "chat.completion.chunk", "created": c["created"], "model": c["model"]}
        if first:
            first = False
            yield dict(base, choices=[{"index": 0, "delta": {"role": "assistant"}, "logprobs": None,
                                       "finish_reason": None}])
        if not c["choices"]:  # the usage chunk
            yield dict(base, choices=[], usage=c["usage"])
            continue
        ch = c["choices"][0]
        if ch["finish_reason"] is not None:
            finish = "tool_calls" if tool is not None else ch["finish_reason"]
            yield dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
        elif ch["text"]:
            if tool is not None:
                delta = {"role": None, "content": None, "tool_calls": [
                    {"index": 0, "id": f"call__0_{tool['name']}_{c['id']}", "type": "function",
                     "function": {"name": tool["name"], "arguments": ch["text"]}}]}
            else:
                delta = {"content": ch["text"]}
            yield dict(base, choices=[{"index": 0, "delta": delta, "logprobs": _chat_logprobs(ch["logprobs"]),
                                       "finish_reason": None}])
