"""JSON Schema `pattern`s from clients, matched with Python's `re` without handing clients a ReDoS.

`re` is a backtracking engine: a short pattern such as `(a+)+$`, `(a|a)*$` or `a?a?a?…aaa` takes
exponential time on a string of a few dozen characters, and `\\d*\\d*\\d*x` takes minutes on a
thousand digits (measured here). A schema's patterns come from the client, and the strings they are
matched against come from a model the client prompts, so both halves are hostile. Three guards:

1. `pattern_problem` refuses a pattern (the gateway answers 400) when it is longer than
   `MAX_PATTERN_LENGTH`, does not compile, uses backreferences, or has a shape that backtracks
   badly, found on the parse tree `re` itself builds:
   - a repeat (max ≥ 2) whose body can match strings of several lengths, when the repeat or the
     inner one is unbounded: `(a+)+`, `(a*)*`, `([a-z]+\\.)*` (star height > 1);
   - a repeat (max ≥ 2) of alternatives that can start with the same character: `(a|ab)*`, `(\\w|\\d)+`;
   - two variable-length parts in one sequence that can consume the same characters, with
     nothing between them that only the one could not match: `\\d*\\d*`, `\\d+1\\d+`,
     `a?a?a?aaa`, `.*foo.*` (`\\d+-\\d+` is fine: `-` separates them).
   The checks are conservative: some safe patterns are refused (the message says why; a simpler
   pattern usually says the same thing, e.g. `^[a-z.]+$` for `^([a-z]+\\.)*[a-z]+$`).
2. Patterns are compiled with `re.ASCII`, so `\\d` and `\\w` mean what ECMA-262 (JSON Schema's
   regex dialect) says they mean: ASCII digits and word characters.
3. `MAX_PATTERN_SUBJECT` caps the length of a string matched against a pattern (longer is a
   validation failure, said so): what remains after (1) is at worst a repeat followed by something
   it overlaps, scanned from every start position by `re.search`, i.e. quadratic in the length.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_PATTERN_LENGTH = 1000
MAX_PATTERN_SUBJECT = 2000
# A bounded repeat with more iterations than this is treated like an unbounded one.
_LARGE_REPEAT = 100
_UNBOUNDED = 1 << 30
# Ways of splitting a string among bounded variable parts that overlap (`a?a?a?aaa`: 2 per part).
_MAX_COMBINATIONS = 1000
# A variable part may be repeated at most this many times (and not nested in another repeat).
_SMALL_NESTED_REPEAT = 4

try:  # the parser `re` compiles with; private, but present in every CPython the Lambdas run
    _parser: Any = importlib.import_module("re._parser")
    _constants: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - then every pattern is refused, never matched unchecked
    _parser = None
    _constants = None

_ALL_ASCII = (1 << 128) - 1


@dataclass(frozen=True)
class _Chars:
    """What characters a piece may consume: ASCII as a bit set, anything beyond as one flag."""

    ascii: int = 0
    wide: bool = False

    def __or__(self, other: _Chars) -> _Chars:
        return _Chars(self.ascii | other.ascii, self.wide or other.wide)

    def overlaps(self, other: _Chars) -> bool:
        return bool(self.ascii & other.ascii) or (self.wide and other.wide)

    def complement(self) -> _Chars:
        return _Chars(_ALL_ASCII & ~self.ascii, True)


@dataclass(frozen=True)
class _Piece:
    chars: _Chars  # what it may consume
    first: _Chars  # what its first character may be
    low: int  # shortest match
    high: int  # longest match (capped at _UNBOUNDED)
    nested: bool = False  # holds a repeat of a variable-length part

    @property
    def variable(self) -> bool:
        return self.low != self.high

    @property
    def wide_range(self) -> bool:
        return self.high - self.low > _LARGE_REPEAT


class UnsafePattern(Exception):
    pass


def _single(chars: _Chars) -> _Piece:
    return _Piece(chars, chars, 1, 1)


_EMPTY = _Piece(_Chars(), _Chars(), 0, 0)


def _bits(*codes: int) -> int:
    bits = 0
    for code in codes:
        bits |= 1 << code
    return bits


def _range_bits(low: int, high: int) -> int:
    bits = 0
    for code in range(low, min(high, 127) + 1):
        bits |= 1 << code
    return bits


_DIGIT = _range_bits(ord("0"), ord("9"))
_WORD = _DIGIT | _range_bits(ord("a"), ord("z")) | _range_bits(ord("A"), ord("Z")) | _bits(ord("_"))
_SPACE = _bits(9, 10, 11, 12, 13, 32)


class _Analyser:
    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        c = _constants
        self._categories = {
            c.CATEGORY_DIGIT: _Chars(_DIGIT),
            c.CATEGORY_NOT_DIGIT: _Chars(_DIGIT).complement(),
            c.CATEGORY_WORD: _Chars(_WORD, True),
            c.CATEGORY_NOT_WORD: _Chars(_WORD).complement(),
            c.CATEGORY_SPACE: _Chars(_SPACE, True),
            c.CATEGORY_NOT_SPACE: _Chars(_SPACE).complement(),
        }

    def literal(self, code: int) -> _Chars:
        if code > 127:
            return _Chars(0, True)
        bits = 1 << code
        char = chr(code)
        if self.ignore_case and char.isalpha():
            bits |= (1 << ord(char.lower())) | (1 << ord(char.upper()))
        return _Chars(bits)

    def char_class(self, items: list[Any]) -> _Chars:
        c = _constants
        chars = _Chars()
        negate = False
        for op, arg in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                chars = chars | self.literal(arg)
            elif op is c.RANGE:
                low, high = arg
                chars = chars | _Chars(_range_bits(low, high), high > 127)
                if self.ignore_case:
                    chars = chars | _Chars(_WORD, True)  # conservative: any letter, either case
            elif op is c.CATEGORY:
                chars = chars | self._categories.get(arg, _Chars(_ALL_ASCII, True))
            else:  # anything else: assume it can match anything
                chars = _Chars(_ALL_ASCII, True)
        return chars.complement() if negate else chars

    def sequence(self, items: Any) -> _Piece:
        """Analyse a sequence of items; raises `UnsafePattern` on an overlap of variable parts."""
        pieces = [self.item(op, arg) for op, arg in items]
        ambiguous: set[int] = set()
        for i, first in enumerate(pieces):
            if not first.variable:
                continue
            for j in range(i + 1, len(pieces)):
                second = pieces[j]
                # Ambiguous where the second can start with something the first could consume.
                if second.variable and first.chars.overlaps(second.first):
                    if first.wide_range or second.wide_range:
                        raise UnsafePattern(
                            "two variable-length parts can match the same characters one after the other"
                        )
                    ambiguous.update((i, j))
                if second.low > 0 and not second.first.overlaps(first.chars):
                    break  # a separator the first part cannot match: backtracking stops here
        combinations = 1
        for index in ambiguous:
            combinations *= pieces[index].high - pieces[index].low + 1
        if combinations > _MAX_COMBINATIONS:
            raise UnsafePattern("too many optional parts that can match the same characters")
        chars = first_chars = _Chars()
        for piece in pieces:
            chars = chars | piece.chars
        for piece in pieces:
            first_chars = first_chars | piece.first
            if piece.low > 0:
                break
        return _Piece(
            chars=chars,
            first=first_chars,
            low=min(_UNBOUNDED, sum(p.low for p in pieces)),
            high=min(_UNBOUNDED, sum(p.high for p in pieces)),
            nested=any(p.nested for p in pieces),
        )

    def item(self, op: Any, arg: Any) -> _Piece:
        c = _constants
        if op is c.LITERAL:
            return _single(self.literal(arg))
        if op is c.NOT_LITERAL:
            return _single(self.literal(arg).complement())
        if op is c.ANY:
            return _single(_Chars(_ALL_ASCII, True))
        if op is c.IN:
            return _single(self.char_class(arg))
        if op is c.AT:
            return _EMPTY
        if op in (c.ASSERT, c.ASSERT_NOT):
            self.sequence(arg[1])
            return _EMPTY
        if op is c.SUBPATTERN:
            return self.sequence(arg[-1])
        if op is getattr(c, "ATOMIC_GROUP", object()):
            return self.sequence(arg)
        if op is c.BRANCH:
            return self.branch(arg[1], repeated=False)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", object()):
            return self.repeat(*arg)
        if op in (c.GROUPREF, c.GROUPREF_EXISTS) or op is getattr(c, "GROUPREF_IGNORE", object()):
            raise UnsafePattern("backreferences are not supported")
        raise UnsafePattern(f"unsupported regular expression construct {op}")

    def branch(self, alternatives: list[Any], *, repeated: bool) -> _Piece:
        pieces = [self.sequence(alt) for alt in alternatives]
        if repeated:
            for i, first in enumerate(pieces):
                for second in pieces[i + 1 :]:
                    if first.first.overlaps(second.first):
                        raise UnsafePattern("a repeated alternation whose alternatives can start alike")
        chars = first_chars = _Chars()
        for piece in pieces:
            chars = chars | piece.chars
            first_chars = first_chars | piece.first
        return _Piece(
            chars=chars,
            first=first_chars,
            low=min(p.low for p in pieces),
            high=max(p.high for p in pieces),
            nested=any(p.nested for p in pieces),
        )

    def repeat(self, low: int, high: int, body: Any) -> _Piece:
        c = _constants
        inner_items = body
        if len(body) == 1 and body[0][0] is c.SUBPATTERN:
            inner_items = body[0][1][-1]
        if high >= 2 and len(inner_items) == 1 and inner_items[0][0] is c.BRANCH:
            inner = self.branch(inner_items[0][1][1], repeated=True)
        else:
            inner = self.sequence(inner_items)
        if high >= 2 and inner.low == 0:
            raise UnsafePattern("a repeat of something that can match the empty string")
        nested = high >= 2 and inner.variable
        outer_large = high == c.MAXREPEAT or high > _SMALL_NESTED_REPEAT
        if nested and (outer_large or inner.nested or inner.wide_range):
            raise UnsafePattern("a repeat of something that itself varies in length (nested quantifiers)")
        return _Piece(
            chars=inner.chars,
            first=inner.first,
            low=min(_UNBOUNDED, low * inner.low),
            high=_UNBOUNDED if high == c.MAXREPEAT else min(_UNBOUNDED, high * inner.high),
            # A small repeat of a variable part (`(\d{1,3}\.){3}`) is fine once, not nested again.
            nested=inner.nested or nested,
        )


@lru_cache(maxsize=256)
def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` may not be used (None: safe to match with :func:`search`)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters"
    if _parser is None:
        return "cannot be checked for safety on this Python runtime"
    try:
        re.compile(pattern, re.ASCII)
        parsed = _parser.parse(pattern, re.ASCII)
    except (re.error, RecursionError, OverflowError):
        return "is not a regular expression this gateway understands (ECMA-262 subset)"
    try:
        _Analyser(ignore_case=bool(parsed.state.flags & re.IGNORECASE)).sequence(parsed)
    except UnsafePattern as unsafe:
        return f"may backtrack catastrophically: {unsafe}"
    except RecursionError:
        return "is nested too deeply"
    return None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


def search(pattern: str, subject: str) -> bool:
    """Whether `pattern` matches somewhere in `subject` (JSON Schema's semantics: unanchored).

    Call only with patterns :func:`pattern_problem` accepted and subjects within
    `MAX_PATTERN_SUBJECT` characters.
    """
    return _compiled(pattern).search(subject) is not None


_PREFERRED_CODES = [
    *range(ord("a"), ord("z") + 1),
    *range(ord("0"), ord("9") + 1),
    *range(ord("A"), ord("Z") + 1),
    *range(32, 127),
]


class _Writer:
    """Writes a short string the parse tree matches: first alternatives, `repeats` per open repeat."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.analyser = _Analyser(ignore_case=False)

    def pick(self, chars: _Chars) -> str:
        for code in _PREFERRED_CODES:
            if chars.ascii >> code & 1:
                return chr(code)
        raise UnsafePattern("no ASCII character fits")

    def member(self, items: list[Any]) -> str:
        """A character of a class: its first listed one, unless the class is negated."""
        c = _constants
        if any(op is c.NEGATE for op, _ in items):
            return self.pick(self.analyser.char_class(items))
        op, arg = items[0]
        if op is c.LITERAL:
            return chr(arg)
        if op is c.RANGE:
            return chr(arg[0])
        return self.pick(self.analyser.char_class(items))

    def sequence(self, items: Any) -> str:
        return "".join(self.item(op, arg) for op, arg in items)

    def item(self, op: Any, arg: Any) -> str:
        c = _constants
        if op is c.LITERAL:
            return chr(arg)
        if op in (c.NOT_LITERAL, c.ANY):
            return "b" if op is c.NOT_LITERAL and arg == ord("a") else "a"
        if op is c.IN:
            return self.member(arg)
        if op is c.SUBPATTERN:
            return self.sequence(arg[-1])
        if op is getattr(c, "ATOMIC_GROUP", object()):
            return self.sequence(arg)
        if op is c.BRANCH:
            return self.sequence(arg[1][0])
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) or op is getattr(c, "POSSESSIVE_REPEAT", object()):
            low, high, body = arg
            piece = self.sequence(body)
            count = min(high, max(low, self.repeats))
            if len(piece) * count > MAX_PATTERN_SUBJECT:
                raise UnsafePattern("the example would be too long")
            return piece * count
        return ""  # anchors and lookarounds write nothing (the caller checks the result)


def pattern_example(pattern: str, length: int = 0) -> str | None:
    """A string `pattern` matches, about `length` characters long when it can (None: none found).

    For patterns :func:`pattern_problem` accepted. Tries each repeat at its minimum, then at
    enough iterations to reach `length`; the first candidate that really matches wins.
    """
    if _parser is None:
        return None
    try:
        parsed = _parser.parse(pattern, re.ASCII)
        candidates = [_Writer(repeats).sequence(parsed) for repeats in (0, 1, max(length, 1))]
    except (re.error, UnsafePattern, RecursionError):
        return None
    matching = [c for c in candidates if len(c) <= MAX_PATTERN_SUBJECT and search(pattern, c)]
    long_enough = [c for c in matching if len(c) >= length]
    best = long_enough or matching
    return best[0] if best else None
