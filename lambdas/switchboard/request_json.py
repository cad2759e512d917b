"""A bounded JSON parser for request bodies: whatever a client sends, a value or `UnacceptableJson`.

Python's `json.loads` turns some hostile bodies into exceptions that are not parse errors (nesting
5,000 deep raises RecursionError, an integer of 5,000 digits raises ValueError from `int`) and
accepts text that breaks things further on (`NaN`, lone UTF-16 surrogates, repeated keys where the
last one silently wins). This parser takes what I-JSON (RFC 7493) asks of an API's input, within
limits no real request comes near, and names the problem when it refuses:

- structure: at most `MAX_DEPTH` arrays and objects deep and `MAX_CONTAINERS` of them in all,
  checked on the raw text before parsing (a 6 MB body of `{},` would otherwise become two million
  dicts, about 150 MB, in a 512 MB function);
- numbers: finite, within a 64-bit float's range, literals of at most `MAX_NUMBER_CHARS` characters;
- no `NaN`, `Infinity` or `-Infinity` (they are not JSON);
- no repeated key in one object (RFC 8259 §4 leaves the meaning to the parser: we refuse it);
- strings and keys are valid Unicode: no lone surrogate, raw or `\\uD800`-style escaped.

Escaped NUL characters (`\\u0000`) are valid JSON and valid Unicode, so they are accepted; raw control
characters are refused by the JSON grammar itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate, repeat
from operator import sub
from typing import Any

__all__ = ["MAX_CONTAINERS", "MAX_DEPTH", "MAX_NUMBER_CHARS", "UnacceptableJson", "parse_request_json"]

MAX_DEPTH = 64
MAX_CONTAINERS = 100_000
MAX_NUMBER_CHARS = 100

_STRING = re.compile(rb'"[^"]*"')
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_DEPTH_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_SCAN_CHUNK = 1 << 16
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class UnacceptableJson(ValueError):
    """The body is not JSON this API takes; `code` and `message` are what the client is told."""

    def __init__(self, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def parse_request_json(text: str) -> Any:
    """Parse a request body or raise `UnacceptableJson`; never any other exception, never unbounded work."""
    _check_structure(text)
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise UnacceptableJson(
            "invalid_json",
            f"We could not parse the JSON body of your request: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno}).",
        ) from exc
    if _may_hold_lone_surrogates(text):
        found = _first_lone_surrogate(value, ())
        if found is not None:
            path, in_key = found
            param = ".".join(path)[:200] or None
            where = f"`{param}`" if param else "the JSON body"
            raise UnacceptableJson(
                "invalid_unicode",
                f"{'A key in ' + where if in_key else where[0].upper() + where[1:]} holds a lone UTF-16 "
                "surrogate, which is not Unicode text: send valid UTF-8, or escape a character outside "
                "the Basic Multilingual Plane as a \\uD8xx\\uDCxx pair.",
                param=param,
            )
    return value


def _check_structure(text: str) -> None:
    """Count arrays and objects, and how deep they nest, from the brackets outside strings.

    Linear in the body and done in C (bytes operations, then `accumulate` over 64 KiB chunks that
    stops once past the limit): a 6 MB body of brackets takes a fraction of a second. Exact for
    valid JSON; for invalid JSON it bounds what the parser would build and recurse into.
    """
    raw = text.encode("utf-8", "surrogatepass")
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    # Drop escaped backslashes, then escaped quotes: every remaining quote opens or closes a string.
    raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    steps = _STRING.sub(b"", raw).translate(_DEPTH_STEP, _NOT_BRACKETS)
    containers = steps.count(2)
    if containers > MAX_CONTAINERS:
        raise UnacceptableJson(
            "json_too_large",
            f"The JSON body holds {containers} arrays and objects; the limit is {MAX_CONTAINERS}.",
        )
    depth = deepest = 0
    for start in range(0, len(steps), _SCAN_CHUNK):
        running = list(accumulate(map(sub, steps[start : start + _SCAN_CHUNK], repeat(1)), initial=depth))
        deepest, depth = max(deepest, max(running)), running[-1]
        if deepest > MAX_DEPTH:
            raise UnacceptableJson(
                "json_too_deep",
                f"The JSON body nests arrays and objects more than {MAX_DEPTH} levels deep; "
                f"flatten it to at most {MAX_DEPTH}.",
            )


def _number_literal(literal: str) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise UnacceptableJson(
            "json_number_out_of_range",
            f"The JSON body has a number literal of {len(literal)} characters ({literal[:20]}...); "
            f"numbers may have at most {MAX_NUMBER_CHARS}.",
        )


def _parse_int(literal: str) -> int:
    _number_literal(literal)
    return int(literal)


def _parse_float(literal: str) -> float:
    _number_literal(literal)
    value = float(literal)
    if not math.isfinite(value):
        raise UnacceptableJson(
            "json_number_out_of_range",
            f"The number {literal} in the JSON body is beyond the range of a 64-bit float.",
        )
    return value


def _parse_constant(name: str) -> Any:
    raise UnacceptableJson(
        "invalid_json", f"`{name}` is not JSON: numbers in the body must be finite decimal literals."
    )


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            shown = key if len(key) <= 64 else f"{key[:64]}..."
            raise UnacceptableJson(
                "json_duplicate_key",
                f"The JSON body repeats the key {json.dumps(shown)} in one object; send each key once.",
            )
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means one repeats")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
    strict=True,
)


def _may_hold_lone_surrogates(text: str) -> bool:
    """Cheap test first: a lone surrogate comes from a `\\uD8xx`-style escape or a raw surrogate."""
    if _SURROGATE_ESCAPE.search(text):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_lone_surrogate(value: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], bool] | None:
    """Where the first string holding a lone surrogate is: its path, and whether it is a key there."""
    for where, text, is_key in _strings(value, path):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return where, is_key
    return None


def _strings(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """Every string in `value`: its path, itself, and whether it is a key (then the path is its object's).

    A key is checked before what it holds, so a path handed out never contains a lone surrogate.
    Recursion is bounded: nesting is at most `MAX_DEPTH` by the time this runs.
    """
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, key, True
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, str(index)))
