"""AWS AppConfig multi-variant flag rules: a small parser and evaluator.

The rule language is the prefix one from the AWS AppConfig user guide ("Defining rules for
multi-variant feature flags"):

    (and (eq $tier "premium") (not (in $tenant ["a", "b"])))
    (matches in::$email pattern::"@example\\.com$")
    (split pct::10 by::$userId seed::"canary")

Operators: ``eq gt gte lt lte``, ``and or not`` (``and``/``or`` are n-ary), ``begins_with
ends_with contains in matches exists split``. Operands: double-quoted strings (``\\"`` and ``\\\\``
escapes), integers and floats, ``true``/``false``, arrays ``[...]`` of those, and ``$key`` context
references. Keyword operands are written ``name::value``.

Semantics chosen here (documented because the AWS guide is brief):

* Context values normally arrive as strings (``Context: key=value`` headers). ``eq`` and the
  ordering operators compare **numerically** when both sides are numbers or strings that look like
  numbers (``-?digits[.digits][e±digits]``): ``(eq $n 10)`` matches ``n=10.0``. A boolean literal
  matches the strings ``true``/``false`` (any case). Otherwise ``eq`` compares the text exactly.
* Ordering (``gt gte lt lte``) between two non-numeric strings is lexicographic (handy for ISO
  dates); between a number and a non-numeric string, or with a boolean, it is simply false.
* A ``$key`` missing from the context makes the operator using it false (never an error):
  ``(eq $tier "x")`` is false without ``tier``, so ``(not (eq $tier "x"))`` is true.
  ``exists`` is the way to test presence.
* ``in`` accepts an array (membership, with ``eq``'s coercion) or a string (substring).
* ``matches`` uses ``re.search``: anchor the pattern with ``^``/``$`` for a full match.
* ``split`` hashes ``seed`` and the ``by`` value with SHA-256 into a bucket in [0, 100) and is true
  when ``bucket < pct``. Because the bucket depends only on seed and value, variants of one flag
  that split on the same seed share buckets: ``pct`` values act as cumulative thresholds, exactly
  as the AWS guide describes ("A: pct::20, B: pct::25" gives A 20 %, B 5 %, the rest 75 %).
  Without ``seed`` the evaluator's ``default_seed`` (the flag key, when called from the flag
  evaluation) is used, so a split is consistent within one flag, as AWS documents.

Who uses it: the flag document validator (:mod:`switchboard.routing.document`) parses every rule,
so a rule that does not parse is refused before a deployment: the profile's Lambda validator ships
this module. Evaluating rules is for the stand-ins for the AppConfig extension
(:mod:`switchboard_local.flag_evaluation`: the agent emulator, ``switchboard flags evaluate``). The
gateway never imports it: in AWS the extension evaluates.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Rule",
    "RuleSyntaxError",
    "compile_rule",
    "evaluate_rule",
    "split_bucket",
]

Context = Mapping[str, Any]
Predicate = Callable[[Context, str], bool]
Getter = Callable[[Context], Any]


class RuleSyntaxError(ValueError):
    """A rule that does not parse. ``position`` is the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int, rule: str) -> None:
        self.message = message
        self.position = position
        self.rule = rule
        super().__init__(f"{message} at position {position} in rule {rule!r}")


class _Missing:
    """Marker for a context key that was not supplied."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NUMBER_FULL_RE = re.compile(r"\s*-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\s*")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF_RE = re.compile(r"\$([A-Za-z0-9_][A-Za-z0-9_.:-]*)")
_DELIMITERS = frozenset(" \t\r\n()[],")

# --------------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "(" ")" "[" "]" "," "str" "num" "bool" "ref" "kw" "ident" "end"
    value: Any
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c in "()[],":
            toks.append(_Tok(c, c, i))
            i += 1
            continue
        if c == '"':
            start = i
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise RuleSyntaxError("unterminated string", start, text)
                ch = text[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise RuleSyntaxError("unterminated string", start, text)
                    nxt = text[i + 1]
                    buf.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                buf.append(ch)
                i += 1
            toks.append(_Tok("str", "".join(buf), start))
            _expect_delimiter(text, i)
            continue
        if c == "$":
            m = _REF_RE.match(text, i)
            if not m:
                raise RuleSyntaxError("expected a context key name after '$'", i, text)
            toks.append(_Tok("ref", m.group(1), i))
            i = m.end()
            _expect_delimiter(text, i)
            continue
        if c == "-" or c.isdigit():
            m = _NUMBER_RE.match(text, i)
            if not m:
                raise RuleSyntaxError("malformed number", i, text)
            raw = m.group(0)
            value: int | float = float(raw) if any(ch in raw for ch in ".eE") else int(raw)
            toks.append(_Tok("num", value, i))
            i = m.end()
            _expect_delimiter(text, i)
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            word = m.group(0)
            end = m.end()
            if text.startswith("::", end):
                toks.append(_Tok("kw", word, i))
                i = end + 2
                continue
            if word in ("true", "false"):
                toks.append(_Tok("bool", word == "true", i))
            else:
                toks.append(_Tok("ident", word, i))
            i = end
            _expect_delimiter(text, i)
            continue
        raise RuleSyntaxError(f"unexpected character {c!r}", i, text)
    toks.append(_Tok("end", None, n))
    return toks


def _expect_delimiter(text: str, i: int) -> None:
    if i < len(text) and text[i] not in _DELIMITERS:
        raise RuleSyntaxError(f"unexpected character {text[i]!r}", i, text)


# --------------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any  # str | int | float | bool | tuple of those
    pos: int


@dataclass(frozen=True, slots=True)
class _Ref:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Expr:
    op: str
    args: tuple[_Node, ...]
    kwargs: dict[str, _Node]
    pos: int


_Node = _Lit | _Ref | _Expr


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def error(self, message: str, pos: int) -> RuleSyntaxError:
        return RuleSyntaxError(message, pos, self.text)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> _Node:
        first = self.peek()
        if first.kind == "end":
            raise self.error("empty rule", 0)
        if first.kind != "(":
            raise self.error('a rule must be an expression in parentheses, e.g. (eq $key "value")', first.pos)
        node = self.operand()
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(f"unexpected {_describe(tok)} after the end of the rule", tok.pos)
        return node

    def operand(self) -> _Node:
        tok = self.take()
        if tok.kind == "(":
            return self.expression(tok.pos)
        if tok.kind == "[":
            return self.array(tok.pos)
        if tok.kind in ("str", "num", "bool"):
            return _Lit(tok.value, tok.pos)
        if tok.kind == "ref":
            return _Ref(tok.value, tok.pos)
        raise self.error(f"expected an operand, found {_describe(tok)}", tok.pos)

    def array(self, pos: int) -> _Lit:
        items: list[Any] = []
        if self.peek().kind == "]":
            self.take()
            return _Lit((), pos)
        while True:
            tok = self.take()
            if tok.kind not in ("str", "num", "bool"):
                raise self.error(f"array elements must be literals, found {_describe(tok)}", tok.pos)
            items.append(tok.value)
            sep = self.take()
            if sep.kind == "]":
                return _Lit(tuple(items), pos)
            if sep.kind != ",":
                raise self.error(f"expected ',' or ']' in array, found {_describe(sep)}", sep.pos)

    def expression(self, pos: int) -> _Expr:
        head = self.take()
        if head.kind != "ident":
            raise self.error(f"expected an operator after '(', found {_describe(head)}", head.pos)
        op = head.value
        if op not in _OPERATORS:
            known = ", ".join(sorted(_OPERATORS))
            raise self.error(f"unknown operator {op!r} (known: {known})", head.pos)
        args: list[_Node] = []
        kwargs: dict[str, _Node] = {}
        while True:
            tok = self.peek()
            if tok.kind == ")":
                self.take()
                break
            if tok.kind == "end":
                raise self.error(f"missing ')' to close {op!r} opened", pos)
            if tok.kind == "kw":
                self.take()
                if tok.value in kwargs:
                    raise self.error(f"duplicate keyword {tok.value}:: in {op!r}", tok.pos)
                kwargs[tok.value] = self.operand()
            else:
                args.append(self.operand())
        expr = _Expr(op, tuple(args), kwargs, pos)
        _OPERATORS[op](self, expr)  # arity / operand checks
        return expr


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of rule"
    if tok.kind == "kw":
        return f"keyword {tok.value}::"
    if tok.kind == "str":
        return f"string {tok.value!r}"
    return f"{tok.value!r}" if tok.kind not in ("(", ")", "[", "]", ",") else f"'{tok.kind}'"


# --------------------------------------------------------------------------------------------------
# Operator checks (run at parse time)


def _check_positional(p: _Parser, e: _Expr, count: int | None, minimum: int = 0) -> None:
    if e.kwargs:
        name = next(iter(e.kwargs))
        raise p.error(f"{e.op!r} takes no keyword operands (got {name}::)", e.pos)
    n = len(e.args)
    if count is not None and n != count:
        raise p.error(f"{e.op!r} takes {count} operand(s), got {n}", e.pos)
    if n < minimum:
        raise p.error(f"{e.op!r} takes at least {minimum} operand(s), got {n}", e.pos)


def _check_value(p: _Parser, e: _Expr, node: _Node, allow_array: bool = False) -> None:
    if isinstance(node, _Expr):
        raise p.error(f"{e.op!r} compares values; a nested ({node.op} ...) is not a value", node.pos)
    if isinstance(node, _Lit) and isinstance(node.value, tuple) and not allow_array:
        raise p.error(f"{e.op!r} does not take an array operand", node.pos)


def _check_compare(p: _Parser, e: _Expr) -> None:
    _check_positional(p, e, 2)
    for a in e.args:
        _check_value(p, e, a)


def _check_logic(p: _Parser, e: _Expr) -> None:
    if e.op == "not":
        _check_positional(p, e, 1)
    else:
        _check_positional(p, e, None, minimum=1)
    for a in e.args:
        if isinstance(a, _Expr) or (isinstance(a, _Lit) and isinstance(a.value, bool)):
            continue
        raise p.error(f"{e.op!r} operands must be expressions or true/false", a.pos)


def _check_in(p: _Parser, e: _Expr) -> None:
    _check_positional(p, e, 2)
    _check_value(p, e, e.args[0])
    _check_value(p, e, e.args[1], allow_array=True)


def _check_kwargs(p: _Parser, e: _Expr, required: set[str], optional: set[str]) -> None:
    if e.args:
        raise p.error(f"{e.op!r} takes keyword operands only (e.g. name::value)", e.args[0].pos)
    missing = sorted(required - e.kwargs.keys())
    if missing:
        raise p.error(f"{e.op!r} needs {', '.join(k + '::' for k in missing)}", e.pos)
    extra = sorted(e.kwargs.keys() - required - optional)
    if extra:
        raise p.error(f"{e.op!r} does not take {', '.join(k + '::' for k in extra)}", e.pos)


def _check_matches(p: _Parser, e: _Expr) -> None:
    _check_kwargs(p, e, {"in", "pattern"}, set())
    _check_value(p, e, e.kwargs["in"])
    pattern = e.kwargs["pattern"]
    if not (isinstance(pattern, _Lit) and isinstance(pattern.value, str)):
        raise p.error("'matches' pattern:: must be a string literal", pattern.pos)
    try:
        re.compile(pattern.value)
    except re.error as exc:
        raise p.error(f"invalid regular expression for pattern:: ({exc})", pattern.pos) from None


def _check_exists(p: _Parser, e: _Expr) -> None:
    _check_kwargs(p, e, {"key"}, set())
    key = e.kwargs["key"]
    if not (isinstance(key, _Lit) and isinstance(key.value, str)):
        raise p.error("'exists' key:: must be a string literal, e.g. key::\"country\"", key.pos)


def _check_split(p: _Parser, e: _Expr) -> None:
    _check_kwargs(p, e, {"pct", "by"}, {"seed"})
    pct = e.kwargs["pct"]
    if not (
        isinstance(pct, _Lit)
        and isinstance(pct.value, int | float)
        and not isinstance(pct.value, bool)
        and 0 <= pct.value <= 100
    ):
        raise p.error("'split' pct:: must be a number from 0 to 100", pct.pos)
    if not isinstance(e.kwargs["by"], _Ref):
        raise p.error("'split' by:: must be a context reference such as $userId", e.kwargs["by"].pos)
    seed = e.kwargs.get("seed")
    if seed is not None and not (isinstance(seed, _Lit) and isinstance(seed.value, str)):
        raise p.error("'split' seed:: must be a string literal", seed.pos)


_OPERATORS: dict[str, Callable[[_Parser, _Expr], None]] = {
    "eq": _check_compare,
    "gt": _check_compare,
    "gte": _check_compare,
    "lt": _check_compare,
    "lte": _check_compare,
    "begins_with": _check_compare,
    "ends_with": _check_compare,
    "contains": _check_compare,
    "and": _check_logic,
    "or": _check_logic,
    "not": _check_logic,
    "in": _check_in,
    "matches": _check_matches,
    "exists": _check_exists,
    "split": _check_split,
}

# --------------------------------------------------------------------------------------------------
# Value semantics


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER_FULL_RE.fullmatch(value):
        s = value.strip()
        return float(s) if any(ch in s for ch in ".eE") else int(s)
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        ba, bb = _as_bool(a), _as_bool(b)
        return ba is not None and ba == bb
    na, nb = _as_number(a), _as_number(b)
    if na is not None and nb is not None:
        return na == nb
    return _as_text(a) == _as_text(b)


def _order(a: Any, b: Any) -> int | None:
    """-1/0/1, or None when the two values cannot be ordered."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    na, nb = _as_number(a), _as_number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    if na is None and nb is None and isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def split_bucket(seed: str, value: Any) -> float:
    """Deterministic bucket in [0, 100) for ``value`` under ``seed`` (SHA-256, stable across runs)."""
    digest = hashlib.sha256(f"{seed}\x1f{_as_text(value)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64) * 100.0


# --------------------------------------------------------------------------------------------------
# Compilation to closures


def _getter(node: _Node) -> Getter:
    if isinstance(node, _Ref):
        name = node.name

        def get_ref(ctx: Context) -> Any:
            return ctx.get(name, MISSING)

        return get_ref
    assert isinstance(node, _Lit)
    value = node.value
    return lambda ctx: value


_ORDER_TESTS: dict[str, Callable[[int], bool]] = {
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
}


def _compile(node: _Node) -> Predicate:
    if isinstance(node, _Lit):
        const = bool(node.value)
        return lambda ctx, seed: const
    assert isinstance(node, _Expr)
    op = node.op
    if op in ("and", "or", "not"):
        parts = [_compile(a) for a in node.args]
        if op == "and":
            return lambda ctx, seed: all(p(ctx, seed) for p in parts)
        if op == "or":
            return lambda ctx, seed: any(p(ctx, seed) for p in parts)
        inner = parts[0]
        return lambda ctx, seed: not inner(ctx, seed)
    if op == "exists":
        key = node.kwargs["key"]
        assert isinstance(key, _Lit)
        key_name = key.value
        return lambda ctx, seed: key_name in ctx
    if op == "split":
        pct_node, by_node, seed_node = node.kwargs["pct"], node.kwargs["by"], node.kwargs.get("seed")
        assert isinstance(pct_node, _Lit) and isinstance(by_node, _Ref)
        pct = float(pct_node.value)
        by = by_node.name
        fixed_seed = seed_node.value if isinstance(seed_node, _Lit) else None

        def split(ctx: Context, default_seed: str) -> bool:
            value = ctx.get(by, MISSING)
            if value is MISSING:
                return False
            return split_bucket(fixed_seed if fixed_seed is not None else default_seed, value) < pct

        return split
    if op == "matches":
        get_in = _getter(node.kwargs["in"])
        pattern = node.kwargs["pattern"]
        assert isinstance(pattern, _Lit)
        regex = re.compile(pattern.value)

        def matches(ctx: Context, seed: str) -> bool:
            value = get_in(ctx)
            return value is not MISSING and regex.search(_as_text(value)) is not None

        return matches

    left, right = (_getter(a) for a in node.args)
    test = _binary(op)

    def binary(ctx: Context, seed: str) -> bool:
        a = left(ctx)
        if a is MISSING:
            return False
        b = right(ctx)
        if b is MISSING:
            return False
        return test(a, b)

    return binary


def _binary(op: str) -> Callable[[Any, Any], bool]:
    if op == "eq":
        return _equal
    if op in _ORDER_TESTS:
        wanted = _ORDER_TESTS[op]

        def ordered(a: Any, b: Any) -> bool:
            c = _order(a, b)
            return c is not None and wanted(c)

        return ordered
    if op == "begins_with":
        return lambda a, b: _as_text(a).startswith(_as_text(b))
    if op == "ends_with":
        return lambda a, b: _as_text(a).endswith(_as_text(b))
    if op == "contains":
        return lambda a, b: _as_text(b) in _as_text(a)
    if op == "in":

        def contained(a: Any, b: Any) -> bool:
            if isinstance(b, tuple):
                return any(_equal(a, item) for item in b)
            return _as_text(a) in _as_text(b)

        return contained
    raise AssertionError(f"no evaluator for {op}")  # pragma: no cover - parser rejects unknown ops


# --------------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Rule:
    """A compiled rule. ``evaluate`` is pure and thread-safe."""

    text: str
    _predicate: Predicate

    def evaluate(self, context: Context, default_seed: str = "") -> bool:
        """True when the rule matches ``context``. ``default_seed`` is used by ``split`` without seed::."""
        return self._predicate(context, default_seed)


@functools.lru_cache(maxsize=1024)
def compile_rule(text: str) -> Rule:
    """Parse ``text`` once (cached) into a :class:`Rule`. Raises :class:`RuleSyntaxError`."""
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a rule must be a string, not {type(text).__name__}", 0, repr(text))
    node = _Parser(text).parse()
    if not isinstance(node, _Expr):
        raise RuleSyntaxError('a rule must be an expression in parentheses, e.g. (eq $k "v")', 0, text)
    return Rule(text, _compile(node))


def evaluate_rule(text: str, context: Context, default_seed: str = "") -> bool:
    """Compile (cached) and evaluate ``text`` against ``context``."""
    return compile_rule(text).evaluate(context, default_seed)
