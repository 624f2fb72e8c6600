"""JSON Schema -> GBNF, for response_format and forced tool calls.

Covers what structured-output requests use: object (properties, required, optional properties in
declared order), array (items, minItems, maxItems), string (enum, const, minLength, maxLength),
number, integer, boolean, null, enum, const, anyOf/oneOf, allOf of objects, type lists, and $ref to
#/$defs or #/definitions (recursion allowed). Unknown keywords (format, pattern, minimum...) are
ignored: the output is then valid JSON of the right type but not checked against them.

Whitespace between tokens is limited (one space, or a newline and up to 20 spaces/tabs) and numbers
to 16 integer digits, so a model cannot loop forever inside padding.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict

_BASE = r'''
ws ::= | " " | "\n" [ \t]{0,20}
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\""
integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
number ::= integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( member ( "," ws member )* )? "}"
member ::= string ws ":" ws value ws
array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
'''

JSON_OBJECT_GBNF = "root ::= object\n" + _BASE
JSON_VALUE_GBNF = "root ::= value\n" + _BASE


def gbnf_literal(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class _Converter:
    def __init__(self, root: Dict[str, Any]):
        self.root = root
        self.rules: Dict[str, str] = {}
        self.ref_names: Dict[str, str] = {}

    def _name(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9-]+", "-", hint).strip("-").lower() or "r"
        if base in ("root", "ws", "char", "string", "integer", "number", "boolean", "null", "value", "object",
                    "member", "array"):
            base = "s-" + base
        name, i = base, 1
        while name in self.rules:
            i += 1
            name = f"{base}-{i}"
        self.rules[name] = ""  # reserve
        return name

    def _rule(self, hint: str, body: str) -> str:
        name = self._name(hint)
        self.rules[name] = body
        return name

    def _resolve(self, ref: str) -> Dict[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"$ref {ref!r}: only local references (#/$defs/..., #/definitions/...) are supported")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"$ref {ref!r} does not resolve")
            node = node[part]
        return node

    def visit(self, schema: Any, hint: str) -> str:
        """A GBNF expression matching schema (a rule name or a small inline expression)."""
        if schema is True or schema == {} or schema is None:
            return "value"
        if schema is False:
            raise ValueError("a schema of false matches nothing")
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref not in self.ref_names:
                name = self._name(ref.rsplit("/", 1)[-1])
                self.ref_names[ref] = name
                self.rules[name] = self.visit(self._resolve(ref), name)
            return self.ref_names[ref]
        if "const" in schema:
            return gbnf_literal(json.dumps(schema["const"], ensure_ascii=False))
        if "enum" in schema:
            return "(" + " | ".join(gbnf_literal(json.dumps(v, ensure_ascii=False)) for v in schema["enum"]) + ")"
        for key in ("anyOf", "oneOf"):
            if key in schema:
                alts = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(schema[key])]
                return self._rule(hint, " | ".join(alts))
        if "allOf" in schema:
            merged: Dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for sub in schema["allOf"]:
                sub = self._resolve(sub["$ref"]) if "$ref" in sub else sub
                merged["properties"].update(sub.get("properties", {}))
                merged["required"] += [r for r in sub.get("required", []) if r not in merged["required"]]
            return self.visit(merged, hint)
        t = schema.get("type")
        if isinstance(t, list):
            return self._rule(hint, " | ".join(self.visit(dict(schema, type=x), f"{hint}-{x}") for x in t))
        if t == "object" or (t is None and "properties" in schema):
            return self._object(schema, hint)
        if t == "array" or (t is None and "items" in schema):
            return self._array(schema, hint)
        if t == "string":
            lo, hi = schema.get("minLength"), schema.get("maxLength")
            if lo is None and hi is None:
                return "string"
            rep = f"{{{int(lo or 0)},{'' if hi is None else int(hi)}}}"
            return self._rule(hint, f'"\\"" char{rep} "\\""')
        if t in ("number", "integer", "boolean", "null"):
            return t
        if t is None:
            return "value"
        raise ValueError(f"unsupported schema type {t!r}")

    def _object(self, schema: Dict[str, Any], hint: str) -> str:
        props: Dict[str, Any] = schema.get("properties") or {}
        if not props:
            return "object"
        required = [k for k in props if k in set(schema.get("required", []))]
        optional = [k for k in props if k not in required]
        kv = {k: f'{gbnf_literal(json.dumps(k, ensure_ascii=False))} ws ":" ws {self.visit(v, f"{hint}-{k}")} ws'
              for k, v in props.items()}
        body = " \",\" ws ".join(kv[k] for k in required)
        if required:
            tail = " ".join(f'( "," ws {kv[k]} )?' for k in optional)
            return self._rule(hint, f'"{{" ws {body} {tail} "}}"')
        # no required property: the first one present has no leading comma
        firsts = []
        for i, k in enumerate(optional):
            rest = " ".join(f'( "," ws {kv[j]} )?' for j in optional[i + 1:])
            firsts.append(f"{kv[k]} {rest}".strip())
        inner = self._rule(hint + "-props", " | ".join(f"( {f} )" for f in firsts))
        return self._rule(hint, f'"{{" ws {inner}? "}}"')

    def _array(self, schema: Dict[str, Any], hint: str) -> str:
        item = self.visit(schema.get("items", {}), hint + "-item")
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        hi = None if hi is None else int(hi)
        if lo == 0 and hi is None:
            return self._rule(hint, f'"[" ws ( {item} ws ( "," ws {item} ws )* )? "]"')
        first = f"{item} ws"
        more = f'"," ws {item} ws'
        if hi == 0:
            return self._rule(hint, '"[" ws "]"')
        rep_lo = max(lo - 1, 0)
        rep = f"{{{rep_lo},{'' if hi is None else hi - 1}}}"
        seq = f"{first} ( {more} ){rep}"
        return self._rule(hint, f'"[" ws {seq} "]"' if lo > 0 else f'"[" ws ( {seq} )? "]"')


def json_schema_to_gbnf(schema: Dict[str, Any]) -> str:
    conv = _Converter(schema if isinstance(schema, dict) else {})
    root = conv.visit(schema, "root-value")
    lines = [f"root ::= {root}"]
    lines += [f"{name} ::= {body}" for name, body in conv.rules.items()]
    return "\n".join(lines) + "\n" + _BASE
