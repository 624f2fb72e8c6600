"""Chat templates and named formats (pure Python; SmolLM2's template is read from its GGUF with
the gguf package, no engine needed)."""
from __future__ import annotations

import pytest

from powerinfer_py import chat_format as cf

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Bye"},
]


def smollm2_template(path):
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def test_smollm2_template_renders_chatml(smollm2_path):
    f = cf.Jinja2ChatFormatter(smollm2_template(smollm2_path), eos_token="<|im_end|>", bos_token="<|im_start|>")
    r = f(messages=MESSAGES)
    assert r.prompt == ("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                        "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                        "<|im_start|>assistant\n")
    assert r.stop == ["<|im_end|>"]
    # same text as the registry's chatml format
    assert r.prompt == cf.get_chat_format("chatml")(MESSAGES).prompt


def test_template_variables_and_tojson():
    t = ("{{ bos_token }}{% for m in messages %}{{ m['role'] }}={{ m['content'] }};{% endfor %}"
         "{% if tools %}{{ tools | tojson }}{% endif %}{% if add_generation_prompt %}>{% endif %}"
         "{% if enable_thinking is defined %}think={{ enable_thinking }}{% endif %}")
    f = cf.Jinja2ChatFormatter(t, eos_token="</s>", bos_token="<s>")
    r = f(messages=MESSAGES[:2], tools=[{"name": "é"}], enable_thinking=False)
    assert r.prompt == '<s>system=You are terse.;user=Hi;[{"name": "é"}]>think=False'
    assert r.added_special


def test_trim_and_lstrip_blocks():
    t = "{% for m in messages %}\n    {% if m %}{{ m['content'] }}{% endif %}\n{% endfor %}"
    assert cf.Jinja2ChatFormatter(t, "", "")(messages=MESSAGES[:2]).prompt == "You are terse.Hi"


def test_raise_exception_and_strftime_now():
    t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}{{ strftime_now('%Y') }}"
    f = cf.Jinja2ChatFormatter(t, "", "")
    with pytest.raises(ValueError, match="first must be user"):
        f(messages=MESSAGES)
    assert f(messages=MESSAGES[1:]).prompt.isdigit()


def test_generation_tag_is_accepted():
    t = "{% for m in messages %}{% generation %}{{ m['content'] }}{% endgeneration %}{% endfor %}"
    assert cf.Jinja2ChatFormatter(t, "", "")(messages=MESSAGES[1:2]).prompt == "Hi"


def test_sandbox_blocks_attribute_escape():
    t = "{{ messages.__class__.__mro__ }}"
    with pytest.raises(ValueError):
        cf.Jinja2ChatFormatter(t, "", "")(messages=[])


def test_broken_template_fails_when_used_not_when_built():
    f = cf.Jinja2ChatFormatter("{% for m in messages %}", "", "", name="broken")  # no error here
    with pytest.raises(cf.ChatTemplateError, match="broken.*does not compile"):
        f(messages=MESSAGES)


@pytest.mark.parametrize("name,expected", [
    ("chatml", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
    ("llama-2", "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]"),
    ("llama-3", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
    ("mistral-instruct", "<s>[INST] S\n\nHi [/INST]"),
    ("gemma", "<bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n"),
    ("zephyr", "<|system|>\nS</s>\n<|user|>\nHi</s>\n<|assistant|>\n"),
    ("alpaca", "S\n\n### Instruction:\nHi\n\n### Response:\n"),
    ("vicuna", "S USER: Hi ASSISTANT:"),
    ("qwen", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
])
def test_named_formats(name, expected):
    msgs = [{"role": "user", "content": "Hi"}] if name == "chatml" else \
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    r = cf.get_chat_format(name)(msgs)
    assert r.prompt == expected
    assert r.stop


def test_registry_add_and_duplicate_and_unknown():
    @cf.register_chat_format("test-echo")
    def echo(messages, **kw):
        return cf.ChatFormatterResponse(prompt="|".join(m["content"] for m in messages), stop=["|"])

    assert cf.get_chat_format("test-echo")(MESSAGES).prompt.startswith("You are terse.|Hi")
    with pytest.raises(ValueError):
        cf.register_chat_format("test-echo")(echo)
    cf.register_chat_format("test-echo", overwrite=True)(echo)
    with pytest.raises(cf.LlamaChatCompletionHandlerNotFoundException, match="chatml"):
        cf.get_chat_format("no-such-format")
    assert "test-echo" in cf.list_chat_formats()


def test_content_parts_are_flattened():
    msgs = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": "x"},
                                         {"type": "text", "text": "b"}]}]
    assert "ab" in cf.get_chat_format("chatml")(msgs).prompt


def test_response_format_to_grammar_kinds():
    assert cf._response_format_grammar(None) is None
    assert cf._response_format_grammar({"type": "text"}) is None
    with pytest.raises(ValueError):
        cf._response_format_grammar({"type": "yaml"})
