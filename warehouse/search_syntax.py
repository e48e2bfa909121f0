"""The search query language: words, "quoted phrases", AND / OR / NOT, parentheses.

Grammar (operators are upper case; lower-case ``or``/``and``/``not`` are ordinary words)::

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*          -- juxtaposition is AND
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or_expr ")" | PHRASE | WORD

``thu tuong`` finds articles with both words anywhere; ``"thu tuong"`` only those where
they are consecutive; ``a OR b``; ``-a`` and ``NOT a`` exclude. Folding (case,
diacritics, đ) happens later, in the database, with the same macro that built the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPERATORS = ("AND", "OR", "NOT")


class QuerySyntaxError(ValueError):
    """The query cannot be parsed; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = Word | Phrase | Not | And | Or

_LEXER = re.compile(r'\s*(?:(?P<phrase>"[^"]*"?)|(?P<open>\()|(?P<close>\))|(?P<minus>-(?=\S))|'
                    r'(?P<word>[^\s()"]+))')


def _lex(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _LEXER.match(query, pos)
        if not m or m.end() == pos:
            raise QuerySyntaxError(f"cannot read the query at {query[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        value = m[kind]
        if kind == "phrase":
            if len(value) < 2 or not value.endswith('"'):
                raise QuerySyntaxError('a quote (") is not closed')
            out.append(("phrase", value[1:-1]))
        elif kind == "word" and value in OPERATORS:
            out.append((value, value))
        else:
            out.append((kind, value))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.peek() not in (None, "OR", "close"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node:
        if self.peek() in ("NOT", "minus"):
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind = self.peek()
        if kind is None:
            raise QuerySyntaxError("the query ends where a word was expected")
        if kind == "open":
            self.take()
            node = self.or_expr()
            if self.peek() != "close":
                raise QuerySyntaxError("a parenthesis is not closed")
            self.take()
            return node
        if kind in ("AND", "OR", "close"):
            raise QuerySyntaxError(f"{self.tokens[self.i][1]!r} where a word was expected")
        _, value = self.take()
        return Phrase(value) if kind == "phrase" else Word(value)


def parse_query(query: str) -> Node:
    """The syntax tree of ``query``; :class:`QuerySyntaxError` if it is malformed or empty."""
    tokens = _lex(query)
    if not tokens:
        raise QuerySyntaxError("the query is empty")
    parser = _Parser(tokens)
    node = parser.or_expr()
    if parser.peek() is not None:
        raise QuerySyntaxError(f"unexpected {parser.tokens[parser.i][1]!r}")
    return node


def leaves(node: Node) -> list[Word | Phrase]:
    """Every word and phrase of the tree, in reading order."""
    if isinstance(node, Word | Phrase):
        return [node]
    if isinstance(node, Not):
        return leaves(node.child)
    return [leaf for child in node.children for leaf in leaves(child)]


def positive_leaves(node: Node, negated: bool = False) -> list[Word | Phrase]:
    """The words and phrases not under an odd number of NOTs: those that rank and highlight."""
    if isinstance(node, Word | Phrase):
        return [] if negated else [node]
    if isinstance(node, Not):
        return positive_leaves(node.child, not negated)
    return [leaf for child in node.children for leaf in positive_leaves(child, negated)]


__all__ = [
    "And",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "QuerySyntaxError",
    "Word",
    "leaves",
    "parse_query",
    "positive_leaves",
]
