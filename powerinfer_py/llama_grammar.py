"""GBNF grammars for constrained generation: parser, token-level matcher, JSON-schema converter.

    g = LlamaGrammar.from_string('root ::= "yes" | "no"')
    llm("Answer:", grammar=g)
    g = LlamaGrammar.from_json_schema(json.dumps({"type": "object", "properties": {...}}))

GBNF as llama.cpp defines it: ``name ::= alternatives``; literals "..." (escapes \\n \\t \\r \\\\ \\" \\xHH
\\uHHHH), classes [a-z] and [^...], ``.`` (any character), groups ( ), ``|``, and ``* + ? {m} {m,} {m,n}``;
``#`` starts a comment; the start rule is ``root``.

Matching works on Unicode characters with a set of pushdown stacks (each stack: the positions still
to match, innermost last). A token is allowed when every character of its text keeps at least one
stack alive. Per generated token the matcher first checks only the token the sampler drew (usually
accepted); when it is rejected, it uses the list of allowed tokens of that state if an earlier step
made it, else checks the most likely tokens in order until it has the top_k allowed ones (what a
top_k sampler can draw; 1 for greedy decoding), falling back to a walk of a character trie of the
whole vocabulary, whose list (each token with the distance left after it, so that any token budget
is a filter) is kept per state. Transitions are memoized, so repeated states cost a dict
lookup.
Tokens whose bytes are not complete UTF-8 on their own are never allowed inside a grammar.
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from typing import Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from ._lib import ffi

# An element: ("c", ranges, negated) matches one character; ("r", rule_id) expands a rule.
Element = tuple
Position = Tuple[int, int, int]  # (rule id, alternative index, element index)
Stack = Tuple[Position, ...]

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "^": "^",
            "/": "/", "'": "'", "0": "\0"}


class GrammarError(ValueError):
    pass


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.rules: Dict[str, List[List[Element]]] = {}
        self.order: List[str] = []
        self.n_generated = 0

    # -- low level
    def ws(self, newlines: bool) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "#":
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            elif c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            else:
                break

    def error(self, msg: str) -> GrammarError:
        line = self.s.count("\n", 0, self.i) + 1
        return GrammarError(f"grammar parse error at line {line}: {msg} (near {self.s[self.i:self.i + 20]!r})")

    def name(self) -> str:
        m = re.compile(r"[A-Za-z0-9_-]+").match(self.s, self.i)
        if not m:
            raise self.error("expected a rule name")
        self.i = m.end()
        return m.group()

    def char(self) -> str:
        s = self.s
        if self.i >= len(s):
            raise self.error("unexpected end of input")
        c = s[self.i]
        if c != "\\":
            self.i += 1
            return c
        if self.i + 1 >= len(s):
            raise self.error("dangling backslash")
        e = s[self.i + 1]
        for prefix, width in (("x", 2), ("u", 4), ("U", 8)):
            if e == prefix:
                h = s[self.i + 2:self.i + 2 + width]
                if len(h) != width or not all(ch in "0123456789abcdefABCDEF" for ch in h):
                    raise self.error(f"bad \\{prefix} escape")
                self.i += 2 + width
                return chr(int(h, 16))
        if e in _ESCAPES:
            self.i += 2
            return _ESCAPES[e]
        raise self.error(f"unknown escape \\{e}")

    def new_rule(self, base: str, alts: List[List[Element]]) -> Element:
        self.n_generated += 1
        name = f"{base}-{self.n_generated}"
        self.rules[name] = alts
        return ("r", name)

    # -- grammar
    def parse(self) -> None:
        self.ws(True)
        while self.i < len(self.s):
            name = self.name()
            self.ws(False)
            if not self.s.startswith("::=", self.i):
                raise self.error("expected ::=")
            self.i += 3
            self.ws(True)
            alts = self.alternatives(name, nested=False)
            if name in self.rules and name in self.order:
                raise self.error(f"rule {name!r} is defined twice")
            self.rules[name] = alts
            self.order.append(name)
            self.ws(True)

    def alternatives(self, rule: str, nested: bool) -> List[List[Element]]:
        alts = [self.sequence(rule, nested)]
        while self.i < len(self.s) and self.s[self.i] == "|":
            self.i += 1
            self.ws(True)
            alts.append(self.sequence(rule, nested))
        return alts

    def _at_rule_start(self) -> bool:
        return re.compile(r"[A-Za-z0-9_-]+[ \t]*::=").match(self.s, self.i) is not None

    def sequence(self, rule: str, nested: bool) -> List[Element]:
        seq: List[Element] = []
        while True:
            self.ws(nested)
            if self.i >= len(self.s):
                break
            c = self.s[self.i]
            if c in "\r\n":  # end of the rule, unless the next line continues it
                self.ws(True)
                if self.i >= len(self.s) or self._at_rule_start() or self.s[self.i] in "|)":
                    break
                continue
            if c in "|)":
                break
            last_start = len(seq)
            if c == '"':
                self.i += 1
                while self.i < len(self.s) and self.s[self.i] != '"':
                    ch = self.char()
                    seq.append(("c", ((ord(ch), ord(ch)),), False))
                if self.i >= len(self.s):
                    raise self.error("unterminated string")
                self.i += 1
            elif c == "[":
                self.i += 1
                neg = self.i < len(self.s) and self.s[self.i] == "^"
                if neg:
                    self.i += 1
                ranges = []
                while self.i < len(self.s) and self.s[self.i] != "]":
                    lo = self.char()
                    hi = lo
                    if self.s.startswith("-", self.i) and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                        self.i += 1
                        hi = self.char()
                    ranges.append((ord(lo), ord(hi)))
                if self.i >= len(self.s):
                    raise self.error("unterminated character class")
                self.i += 1
                seq.append(("c", tuple(ranges), neg))
            elif c == ".":
                self.i += 1
                seq.append(("c", ((0, 0x10FFFF),), False))
            elif c == "(":
                self.i += 1
                self.ws(True)
                alts = self.alternatives(rule, nested=True)
                if not self.s.startswith(")", self.i):
                    raise self.error("expected )")
                self.i += 1
                seq.append(self.new_rule(rule, alts))
            elif re.match(r"[A-Za-z0-9_-]", c):
                if not nested and self._at_rule_start():
                    break
                seq.append(("r", self.name()))
            else:
                raise self.error(f"unexpected {c!r}")
            # postfix repetition applies to the last element
            self.ws(False)
            if self.i < len(self.s) and self.s[self.i] in "*+?{":
                seq[last_start:] = [self.repeat(rule, seq[last_start:])]
        return seq

    def repeat(self, rule: str, item: List[Element]) -> Element:
        c = self.s[self.i]
        if c == "{":
            m = re.compile(r"\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}").match(self.s, self.i)
            if not m:
                raise self.error("bad {m,n} repetition")
            self.i = m.end()
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            if hi is not None and hi < lo:
                raise self.error("{m,n} with n < m")
        else:
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        seq: List[Element] = list(item) * lo
        if hi is None:
            star = self.new_rule(rule, [])
            self.rules[star[1]] = [list(item) + [star], []]
            seq.append(star)
        else:
            tail: List[List[Element]] = [[]]
            for _ in range(hi - lo):  # nested optionals: (x (x (x)?)?)?
                opt = self.new_rule(rule, tail)
                tail = [list(item) + [opt], []]
            if hi > lo:
                seq.append(self.new_rule(rule, tail))
        return self.new_rule(rule, [seq]) if len(seq) != 1 else seq[0]


def _compile(text: str):
    p = _Parser(text)
    p.parse()
    if "root" not in p.rules:
        raise GrammarError("the grammar has no root rule")
    names = list(p.rules)
    ids = {n: i for i, n in enumerate(names)}
    rules = []
    for n in names:
        alts = []
        for alt in p.rules[n]:
            out = []
            for e in alt:
                if e[0] == "r":
                    if e[1] not in ids:
                        raise GrammarError(f"rule {e[1]!r} is used but never defined")
                    out.append(("r", ids[e[1]]))
                else:
                    out.append(e)
            alts.append(tuple(out))
        rules.append(tuple(alts))
    return tuple(rules), ids["root"]


def _matches(elem: Element, cp: int) -> bool:
    hit = any(lo <= cp <= hi for lo, hi in elem[1])
    return hit != elem[2]


_COMPILED: "OrderedDict[str, LlamaGrammar]" = OrderedDict()  # LlamaGrammar._shared, by grammar text
_COMPILED_MAX = 32
_COMPILED_LOCK = threading.Lock()


class LlamaGrammar:
    """A compiled GBNF grammar. Immutable; each generation starts its own matcher state."""

    def __init__(self, text: str):
        self._grammar = text
        self.rules, self.root = _compile(text)
        self._min_len = self._rule_min_lengths()
        self._dist_cache: Dict[FrozenSet[Stack], int] = {}
        self._expand_cache: Dict[Stack, FrozenSet[Stack]] = {}
        self._advance_cache: Dict[Tuple[FrozenSet[Stack], str], FrozenSet[Stack]] = {}
        # (vocabulary, stacks) -> (ids of the tokens allowed there, the distance left after each):
        # JSON output returns to the same few states again and again.
        self._mask_cache: "OrderedDict[Tuple[int, FrozenSet[Stack]], Tuple[np.ndarray, np.ndarray]]" = OrderedDict()
        self._mask_cache_size = 0  # tokens held in _mask_cache
        self._mask_lock = threading.Lock()

    @classmethod
    def _shared(cls, text: str) -> "LlamaGrammar":
        """The compiled grammar of text, shared between calls (it is immutable), so that a server
        compiling the same response_format per request keeps the matcher's caches warm."""
        with _COMPILED_LOCK:
            g = _COMPILED.get(text)
            if g is not None:
                _COMPILED.move_to_end(text)
                return g
        g = cls(text)  # outside the lock: compiling may raise GrammarError
        with _COMPILED_LOCK:
            _COMPILED[text] = g
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
        return g

    @classmethod
    def from_string(cls, grammar: str, verbose: bool = True) -> "LlamaGrammar":
        return cls._shared(grammar)

    @classmethod
    def from_file(cls, file, verbose: bool = True) -> "LlamaGrammar":
        with open(file, encoding="utf-8") as f:
            return cls(f.read())

    @classmethod
    def from_json_schema(cls, json_schema: str, verbose: bool = True) -> "LlamaGrammar":
        from ._json_schema import json_schema_to_gbnf

        return cls._shared(json_schema_to_gbnf(json.loads(json_schema) if isinstance(json_schema, str) else json_schema))

    @classmethod
    def json(cls) -> "LlamaGrammar":
        """Any JSON object."""
        from ._json_schema import JSON_OBJECT_GBNF

        return cls._shared(JSON_OBJECT_GBNF)

    @property
    def grammar(self) -> str:
        return self._grammar

    # -- shortest completions (used to close the output before the token budget runs out)
    def _rule_min_lengths(self) -> List[float]:
        """Fewest characters each rule can match (fixed point; inf for rules that never end)."""
        inf = float("inf")
        best = [inf] * len(self.rules)
        changed = True
        while changed:
            changed = False
            for r, alts in enumerate(self.rules):
                for alt in alts:
                    n = 0.0
                    for e in alt:
                        n += 1 if e[0] == "c" else best[e[1]]
                    if n < best[r]:
                        best[r] = n
                        changed = True
        return best

    def _rest_len(self, pos: Position) -> float:
        r, a, e = pos
        return sum(1 if el[0] == "c" else self._min_len[el[1]] for el in self.rules[r][a][e:])

    def distance(self, stacks: FrozenSet[Stack]) -> float:
        """Fewest characters that complete the sentence from stacks (0 when it is complete)."""
        hit = self._dist_cache.get(stacks)
        if hit is None:
            hit = min((sum(self._rest_len(p) for p in st) for st in stacks), default=float("inf"))
            self._dist_cache[stacks] = hit
        return hit

    # -- the pushdown machine
    def _expand(self, stack: Stack) -> FrozenSet[Stack]:
        """All stacks reachable from stack without reading a character, each ending in a character
        element (or empty = the grammar is complete)."""
        hit = self._expand_cache.get(stack)
        if hit is not None:
            return hit
        out = set()
        todo = [stack]
        seen = set()
        while todo:
            st = todo.pop()
            if st in seen:
                continue
            seen.add(st)
            if len(st) > 2000:
                raise GrammarError("the grammar recurses without consuming input (left recursion?)")
            if not st:
                out.add(st)
                continue
            r, a, e = st[-1]
            alt = self.rules[r][a]
            if e == len(alt):
                todo.append(st[:-1])
                continue
            elem = alt[e]
            if elem[0] == "c":
                out.add(st)
                continue
            rest = st[:-1] + ((r, a, e + 1),)
            # drop positions that are at their end so that stacks stay short
            while rest and rest[-1][2] == len(self.rules[rest[-1][0]][rest[-1][1]]):
                rest = rest[:-1]
            for ai in range(len(self.rules[elem[1]])):
                todo.append(rest + ((elem[1], ai, 0),))
        res = frozenset(out)
        self._expand_cache[stack] = res
        return res

    def initial(self) -> FrozenSet[Stack]:
        out = set()
        for ai in range(len(self.rules[self.root])):
            out |= self._expand(((self.root, ai, 0),))
        return frozenset(out)

    def advance(self, stacks: FrozenSet[Stack], ch: str) -> FrozenSet[Stack]:
        key = (stacks, ch)
        hit = self._advance_cache.get(key)
        if hit is not None:
            return hit
        cp = ord(ch)
        out = set()
        for st in stacks:
            if not st:
                continue
            r, a, e = st[-1]
            if _matches(self.rules[r][a][e], cp):
                out |= self._expand(st[:-1] + ((r, a, e + 1),))
        res = frozenset(out)
        if len(self._advance_cache) > 200000:
            self._advance_cache.clear()
        self._advance_cache[key] = res
        return res

    def advance_text(self, stacks: FrozenSet[Stack], text: str) -> FrozenSet[Stack]:
        for ch in text:
            stacks = self.advance(stacks, ch)
            if not stacks:
                break
        return stacks

    def matches(self, text: str) -> bool:
        """Whether text is a complete sentence of the grammar."""
        return () in self.advance_text(self.initial(), text)

    def start(self, llm) -> "GrammarState":
        return GrammarState(self, _vocab_index(llm))


class _VocabIndex:
    """Per model: the text of every token and a character trie over them."""

    def __init__(self, llm):
        n = llm.n_vocab()
        self.n_vocab = n
        self.texts: List[Optional[str]] = [None] * n
        self.eog = np.zeros(n, dtype=bool)
        trie: dict = {}
        for t in range(n):
            if llm.is_eog(t):
                self.eog[t] = True
                continue
            b = llm.token_piece(t)
            if not b:
                continue
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                continue
            self.texts[t] = s
            node = trie
            for ch in s:
                node = node.setdefault(ch, [{}, []])
                last = node
                node = node[0]
            last[1].append(t)
        self.trie = trie


def _vocab_index(llm) -> _VocabIndex:
    idx = getattr(llm, "_grammar_vocab", None)
    if idx is None:
        idx = llm._grammar_vocab = _VocabIndex(llm)
    return idx


class GrammarState:
    """The matcher of one generation: which stacks are alive after the tokens accepted so far."""

    TOP_N = 2048  # tokens checked one by one before walking the whole vocabulary
    NO_LIMIT = 1 << 29  # a budget this large is not checked
    MASK_CACHE_TOKENS = 4 << 20  # allowed-token lists kept per grammar, in tokens (12 bytes each)

    def __init__(self, grammar: LlamaGrammar, vocab: _VocabIndex):
        self.g = grammar
        self.v = vocab
        self.stacks = grammar.initial()
        self.mask = np.zeros(vocab.n_vocab, dtype=np.uint8)
        self.n_masks = 0  # how often the drawn token was rejected (for cost reports)

    def complete(self) -> bool:
        return () in self.stacks

    def done(self) -> bool:
        """Nothing can follow: generation must end here."""
        return self.stacks == frozenset({()})

    def allows(self, token: int) -> bool:
        if self.v.eog[token]:
            return self.complete()
        text = self.v.texts[token]
        return text is not None and bool(self.g.advance_text(self.stacks, text))

    def accept(self, token: int) -> None:
        if self.v.eog[token]:
            return
        text = self.v.texts[token]
        if text is None:
            raise ValueError(f"token {token} is not allowed by the grammar")
        new = self.g.advance_text(self.stacks, text)
        if not new:
            raise ValueError(f"token {token} ({text!r}) is not allowed by the grammar")
        self.stacks = new

    def _walk(self, node: dict, stacks, ids: list, dists: list) -> None:
        """Collects every token the grammar allows after stacks, with the distance left after it."""
        adv, dist = self.g.advance, self.g.distance
        for ch, (children, tokens) in node.items():
            ns = adv(stacks, ch)
            if ns:
                if tokens:
                    ids.extend(tokens)
                    dists.extend([dist(ns)] * len(tokens))
                if children:
                    self._walk(children, ns, ids, dists)

    def _allowed(self) -> Tuple[np.ndarray, np.ndarray]:
        """(ids of every token allowed now, the distance left after each: fewest characters that
        complete the sentence), from the grammar's cache or a walk of the vocabulary trie."""
        g = self.g
        key = (id(self.v), self.stacks)
        with g._mask_lock:  # one grammar may serve several models or threads
            hit = g._mask_cache.get(key)
            if hit is not None:
                g._mask_cache.move_to_end(key)
                return hit
        ids: list = []
        dists: list = []
        self._walk(self.v.trie, self.stacks, ids, dists)
        hit = (np.array(ids, dtype=np.int32), np.array(dists, dtype=np.float64))
        with g._mask_lock:
            if key not in g._mask_cache:
                g._mask_cache[key] = hit
                g._mask_cache_size += len(ids)
            while g._mask_cache_size > self.MASK_CACHE_TOKENS and len(g._mask_cache) > 1:
                g._mask_cache_size -= len(g._mask_cache.popitem(last=False)[1][0])
        return hit

    def fits(self, token: int, budget: int) -> bool:
        """The token is allowed, and afterwards a shortest completion still fits in budget tokens
        (counting one character per token, the worst case). Keeping this true at every step
        guarantees the output can be closed before max_tokens or the context runs out."""
        if self.v.eog[token]:
            return self.complete()
        text = self.v.texts[token]
        if text is None:
            return False
        new = self.g.advance_text(self.stacks, text)
        if not new:
            return False
        return budget >= self.NO_LIMIT or self.g.distance(new) <= budget

    def build_mask(self, logits: Optional[np.ndarray], need: int, budget: int = 1 << 30) -> np.ndarray:
        """The tokens allowed now that leave a completion within budget characters. With logits and
        need, it may mark only the `need` most likely of them (all that a sampler keeping its top
        `need` can draw); when the state's list is cached, or after a walk, it marks all of them."""
        mask = self.mask
        mask[:] = 0
        if self.complete():
            mask[self.v.eog] = 1
        key = (id(self.v), self.stacks)
        if logits is not None and need > 0 and key not in self.g._mask_cache:
            n = min(self.TOP_N, len(logits))
            top = np.argpartition(-logits, n - 1)[:n] if n < len(logits) else np.arange(len(logits))
            top = top[np.argsort(-logits[top], kind="stable")]
            found = int(mask[top].sum())  # end-of-generation tokens already allowed
            for t in top.tolist():
                if found >= need:
                    return mask  # the `need` most likely allowed tokens are marked
                if not mask[t] and self.fits(t, budget):
                    mask[t] = 1
                    found += 1
            if found >= need:
                return mask
        ids, dists = self._allowed()
        mask[ids if budget >= self.NO_LIMIT else ids[dists <= budget]] = 1
        return mask

    def sample(self, sampler, logits_ptr, tokens_left: int = 1 << 30) -> int:
        """Draws a token the grammar allows, with tokens_left counting this one."""
        budget = tokens_left - 1
        token = sampler.sample_ptr(logits_ptr)
        if self.fits(token, budget):
            return token
        self.n_masks += 1
        logits = np.frombuffer(ffi.buffer(logits_ptr, 4 * self.v.n_vocab), dtype=np.float32)
        need = sampler.min_candidates_exact()
        mask = self.build_mask(logits, need, budget)
        if not mask.any():
            raise ValueError("the grammar allows no token of this vocabulary here")
        return sampler.sample_ptr(logits_ptr, ffi.cast("uint8_t *", ffi.from_buffer(mask)))
