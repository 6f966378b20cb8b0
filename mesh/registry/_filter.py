"""Consul's ``?filter=`` expressions (the go-bexpr language), evaluated on response JSON.

Supported, as Consul documents them::

    <Selector> == "<Value>"        <Selector> != "<Value>"
    <Selector> is empty            <Selector> is not empty
    "<Value>" in <Selector>        "<Value>" not in <Selector>
    <Selector> contains "<Value>"  <Selector> not contains "<Value>"
    <Selector> matches "<Regex>"   <Selector> not matches "<Regex>"
    <expr> and <expr>   <expr> or <expr>   not <expr>   ( <expr> )

Selectors are dotted paths into the JSON that the endpoint returns (``Service.Tags``,
``Service.Meta.version``, ``Checks.Status``). A path through a list (``Checks.Status``) matches when
any element matches; a negated operator is the negation of its positive form. Values may be quoted
or bare (``Service.Port == 8080``); regexes are RE2's, as Go's are. Written by hand because no
maintained Python library parses this grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import re2

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<op>==|!=|\(|\))|(?P<word>[^\s()"=!`]+))')
_MISSING = object()
_PREFIX = "Failed to create boolean expression evaluator: "
#: ``matches`` uses RE2, as Consul does (Go's regexp): linear in the text whatever the pattern, so a
#: query such as ``(.*.*.*)*z`` cannot hold the registry's loop (Python's ``re`` backtracks for
#: minutes on it). Its complaints come back as the 400's words, not on stderr.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class FilterError(ValueError):
    """An expression that Consul would reject with 400 Bad Request."""


Predicate = Callable[[Any], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"{_PREFIX}syntax error at {text[pos:]!r}")
        pos = match.end()
        if match.group("str") is not None:
            raw = match.group("str")
            value = raw[1:-1] if raw.startswith("`") else bytes(raw[1:-1], "utf-8").decode("unicode_escape")
            out.append(("str", value))
        elif match.group("op") is not None:
            out.append(("op", match.group("op")))
        else:
            out.append(("word", match.group("word")))
    return out


def _select(item: Any, path: list[str]) -> list[Any]:
    """Return every value the selector reaches (several when it passes through a list)."""
    values = [item]
    for part in path:
        nxt = []
        for value in values:
            for element in value if isinstance(value, list) else [value]:
                if isinstance(element, dict):
                    if part in element:
                        nxt.append(element[part])
                    else:
                        nxt.append(_MISSING)
                elif element is not _MISSING:
                    raise FilterError(f'Selector "{".".join(path)}" is not valid')
        values = nxt
    return values


def _equal(actual: Any, wanted: str) -> bool:
    if actual is _MISSING or actual is None:
        return False
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    if isinstance(actual, (int, float)):
        try:
            return float(wanted) == actual
        except ValueError:
            return False
    return str(actual) == wanted


def _empty(actual: Any) -> bool:
    return actual is _MISSING or actual is None or (hasattr(actual, "__len__") and len(actual) == 0)


def _contains(actual: Any, wanted: str) -> bool:
    if isinstance(actual, list):
        return any(_equal(v, wanted) for v in actual)
    if isinstance(actual, dict):
        return wanted in actual
    if isinstance(actual, str):
        return wanted in actual
    return False


def _matches(actual: Any, pattern: Any) -> bool:
    return isinstance(actual, str) and pattern.search(actual) is not None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError(f"{_PREFIX}unexpected end of expression")
        self.pos += 1
        return token

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1] in words:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        expr = self.parse_or()
        if self.peek() is not None:
            raise FilterError(f"{_PREFIX}unexpected {self.peek()[1]!r}")
        return expr

    def parse_or(self) -> Predicate:
        left = self.parse_and()
        while self.word("or"):
            right = self.parse_and()
            left = (lambda a, b: lambda item: a(item) or b(item))(left, right)
        return left

    def parse_and(self) -> Predicate:
        left = self.parse_not()
        while self.word("and"):
            right = self.parse_not()
            left = (lambda a, b: lambda item: a(item) and b(item))(left, right)
        return left

    def parse_not(self) -> Predicate:
        if self.word("not"):
            inner = self.parse_not()
            return lambda item: not inner(item)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.parse_or()
            if self.take() != ("op", ")"):
                raise FilterError(f"{_PREFIX}missing ')'")
            return inner
        return self.parse_match()

    def value(self) -> str:
        kind, text = self.take()
        if kind == "op":
            raise FilterError(f"{_PREFIX}expected a value, got {text!r}")
        return text

    def selector(self) -> list[str]:
        kind, text = self.take()
        if kind != "word":
            raise FilterError(f"{_PREFIX}expected a selector, got {text!r}")
        return text.split(".")

    def parse_match(self) -> Predicate:
        first = self.peek()
        second = self.peek(1)
        # "<Value>" [not] in <Selector>
        if first and (first[0] == "str" or (second and second[0] == "word" and second[1] in ("in", "not"))):
            value = self.value()
            negate = self.word("not")
            if not self.word("in"):
                raise FilterError(f"{_PREFIX}expected 'in'")
            path = self.selector()
            return self._build(path, lambda vs: any(_contains(v, value) for v in vs), negate)
        path = self.selector()
        token = self.take()
        if token == ("op", "=="):
            value = self.value()
            return self._build(path, lambda vs: any(_equal(v, value) for v in vs), False)
        if token == ("op", "!="):
            value = self.value()
            return self._build(path, lambda vs: any(_equal(v, value) for v in vs), True)
        negate = False
        if token == ("word", "is"):
            negate = self.word("not")
            if not self.word("empty"):
                raise FilterError(f"{_PREFIX}expected 'empty'")
            return self._build(path, lambda vs: all(_empty(v) for v in vs), negate)
        if token == ("word", "not"):
            negate, token = True, self.take()
        if token == ("word", "contains"):
            value = self.value()
            return self._build(path, lambda vs: any(_contains(v, value) for v in vs), negate)
        if token == ("word", "matches"):
            try:
                pattern = re2.compile(self.value(), _RE2_OPTIONS)
            except re2.error as exc:
                raise FilterError(f"{_PREFIX}{_re2_words(exc)}") from None
            return self._build(path, lambda vs: any(_matches(v, pattern) for v in vs), negate)
        raise FilterError(f"{_PREFIX}unknown operator {token[1]!r}")

    @staticmethod
    def _build(path: list[str], test: Callable[[list[Any]], bool], negate: bool) -> Predicate:
        if negate:
            return lambda item: not test(_select(item, path))
        return lambda item: test(_select(item, path))


def compile_filter(expression: str) -> Predicate:
    """Return a predicate on one response item, or raise :class:`FilterError`."""
    if not expression.strip():
        return lambda item: True
    try:
        return _Parser(_tokens(expression)).parse()
    except RecursionError:
        raise FilterError(f"{_PREFIX}the expression is nested too deep") from None


def apply_filter(expression: str | None, items: list[Any]) -> list[Any]:
    """Return the items the expression keeps (all of them when there is no expression)."""
    if not expression:
        return items
    predicate = compile_filter(expression)
    try:
        return [item for item in items if predicate(item)]
    except RecursionError:  # a chain of thousands of "or"s: each item is tested through all of them
        raise FilterError(f"{_PREFIX}the expression is nested too deep") from None


def _re2_words(error: Exception) -> str:
    """RE2's message (it gives bytes), as text."""
    message = error.args[0] if error.args else error
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
