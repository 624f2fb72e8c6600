"""GBNF parsing, the JSON-schema converter (pure Python), and constrained generation on SmolLM2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from powerinfer_py.llama_grammar import GrammarError, GrammarState, LlamaGrammar


def test_literals_alternatives_and_repetition():
    g = LlamaGrammar.from_string('root ::= ("ab" | [x-z]+) "!"? digits\ndigits ::= [0-9]{2,3}')
    for s in ["ab12", "xyz!123", "z99"]:
        assert g.matches(s), s
    for s in ["ab1", "ab1234", "a12", "!12", "xyz!!12"]:
        assert not g.matches(s), s


def test_escapes_comments_classes_and_dot():
    g = LlamaGrammar.from_string('# a comment\nroot ::= "\\n" [^a-c] . "\\x41" "\\u00e9"  # trailing\n')
    assert g.matches("\nd?Aé")
    assert not g.matches("\nb?Aé")


def test_multiline_rules():
    g = LlamaGrammar.from_string('root ::= item\n  ("," item)*\nitem ::= "a"\n    | "b"\n')
    assert g.matches("a,b,a") and not g.matches("a,c")


@pytest.mark.parametrize("bad", ['root ::= "a', "root ::= [a-", "item ::= \"a\"", "root ::= undefined-rule",
                                 "root ::= (\"a\"", "root ::= \"\\q\""])
def test_parse_errors(bad):
    with pytest.raises(GrammarError):
        LlamaGrammar.from_string(bad)


def test_json_grammar():
    g = LlamaGrammar.json()
    for s in ['{}', '{"a": 1}', '{"a": [1, -2.5e3, "x\\n\\u00e9"], "b": {"c": null, "d": true}}']:
        assert g.matches(s), s
    for s in ['{"a":}', '[1]', '{"a": 01}', '{"a": "x\n"}', "{'a': 1}"]:
        assert not g.matches(s), s


def test_json_schema_conversion():
    schema = {"type": "object", "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
              "properties": {"name": {"type": "string", "maxLength": 3}, "age": {"type": "integer"},
                             "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1, "maxItems": 2},
                             "alt": {"anyOf": [{"type": "null"}, {"type": "number"}]},
                             "kind": {"const": "k"}},
              "required": ["name", "age"]}
    g = LlamaGrammar.from_json_schema(json.dumps(schema))
    ok = ['{"name": "abc", "age": 3}', '{"name": "", "age": -1, "tags": ["a"]}',
          '{"name": "x", "age": 3, "tags": ["a", "b"], "alt": null, "kind": "k"}', '{"name":"x","age":0,"alt":1.5}']
    bad = ['{"age": 3}', '{"name": "abcd", "age": 3}', '{"name": "x", "age": 3, "tags": []}',
           '{"name": "x", "age": 3, "tags": ["c"]}', '{"name": "x", "age": 3.5}', '{"name": "x", "age": 3, "kind": "j"}']
    for s in ok:
        assert g.matches(s), s
        json.loads(s)
    for s in bad:
        assert not g.matches(s), s


def test_all_optional_properties_and_recursion():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}}
    g = LlamaGrammar.from_json_schema(json.dumps(schema))
    for s in ['{}', '{"a": 1}', '{"b": true}', '{"a": 1, "b": false}']:
        assert g.matches(s), s
    assert not g.matches('{, "b": true}') and not g.matches('{"b": true, "a": 1}')
    tree = {"$ref": "#/definitions/node", "definitions": {"node": {
        "type": "object", "properties": {"v": {"type": "integer"},
                                         "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
        "required": ["v"]}}}
    g2 = LlamaGrammar.from_json_schema(json.dumps(tree))
    assert g2.matches('{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}')


def test_grammar_constrains_completion(smollm2_path):
    from powerinfer_py import Llama

    with Llama(str(smollm2_path), n_ctx=256, n_threads=1, verbose=False) as llm:
        g = LlamaGrammar.from_string('root ::= "yes" | "no"')
        for seed in range(3):
            out = llm("Is the sky blue? Answer:", grammar=g, max_tokens=8, temperature=1.0, seed=seed)
            assert out["choices"][0]["text"] in ("yes", "no")
            assert out["choices"][0]["finish_reason"] == "stop"
        num = LlamaGrammar.from_string('root ::= [1-9] [0-9]* "."')
        out = llm("Count: one, two, three. In digits, 2+2 =", grammar=num, max_tokens=6, temperature=0.0)
        text = out["choices"][0]["text"]
        assert text[:-1].isdigit() or out["choices"][0]["finish_reason"] == "length"


def test_json_closes_before_max_tokens(smollm2_path):
    """A tight token budget: the matcher steers toward the shortest completion in time."""
    from powerinfer_py import Llama

    with Llama(str(smollm2_path), n_ctx=256, n_threads=1, verbose=False) as llm:
        for n in (12, 20, 31):
            out = llm("A JSON object describing a cat:", grammar=LlamaGrammar.json(), max_tokens=n,
                      temperature=0.9, seed=n)
            json.loads(out["choices"][0]["text"])
            assert out["usage"]["completion_tokens"] <= n


def test_compiled_grammars_are_shared_by_text():
    """from_string / from_json_schema / json() return one compiled object per grammar text, so that
    its matcher caches serve every request with the same response_format."""
    schema = '{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}'
    assert LlamaGrammar.from_json_schema(schema) is LlamaGrammar.from_json_schema(schema)
    assert LlamaGrammar.json() is LlamaGrammar.json()
    assert LlamaGrammar.from_string('root ::= "x"') is LlamaGrammar.from_string('root ::= "x"')
    assert LlamaGrammar.from_string('root ::= "x"') is not LlamaGrammar.from_string('root ::= "y"')


def test_cached_masks_equal_fresh_token_checks(smollm2_path):
    """Along a real JSON output, the mask from the per-state cache (any token budget applied as a
    filter) equals checking every token of the vocabulary one by one with a fresh grammar."""
    from powerinfer_py import Llama

    text = '{"name": "Tom", "age": 3}'
    schema = ('{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},'
              ' "required": ["name", "age"]}')
    with Llama(str(smollm2_path), n_ctx=256, n_threads=1, vocab_only=True, verbose=False) as llm:
        shared = LlamaGrammar.from_json_schema(schema)
        fresh = LlamaGrammar(shared.grammar)  # no caches shared with `shared`
        st, ref = shared.start(llm), fresh.start(llm)
        ids = llm.tokenize(text.encode(), add_bos=False)
        for step, tok in enumerate(ids):
            for budget in (2, 9, GrammarState.NO_LIMIT):
                got = st.build_mask(None, 0, budget).copy()
                want = np.array([ref.fits(t, budget) for t in range(llm.n_vocab())], dtype=np.uint8)
                assert np.array_equal(got, want), (step, budget, np.nonzero(got != want)[0][:5])
            st.accept(tok)
            ref.accept(tok)
