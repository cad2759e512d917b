"""`Content-Type` parsed as RFC 9110 §8.3.1 defines it, so "is this JSON?" has one right answer.

Type and subtype are case-insensitive tokens and parameters (`charset=utf-8`) may follow:
`Application/JSON; Charset="UTF-8"` is JSON. Comparing strings instead got both directions
wrong: a case-sensitive prefix test refused `Application/JSON` (415) and took `application/jsonx`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

JSON = "application/json"

# token = 1*tchar
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE; qdtext is HTAB, SP, %x21, %x23-5B,
# %x5D-7E and obs-text; quoted-pair is a backslash before HTAB, SP, VCHAR or obs-text.
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_ESSENCE = re.compile(rf"[ \t]*({_TCHARS})/({_TCHARS})")
# parameters = *( OWS ";" OWS [ parameter ] ): empty parameters (`a/b;;`) are allowed.
_PARAMETER = re.compile(rf"[ \t]*;[ \t]*(?:({_TCHARS})=({_TCHARS}|{_QUOTED}))?")
_TRAILING_SPACE = re.compile(r"[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)")


@dataclass(frozen=True)
class MediaType:
    type: str
    subtype: str
    parameters: dict[str, str] = field(default_factory=dict)
    """Names lower-cased (they are case-insensitive), values unquoted and otherwise as sent."""

    @property
    def essence(self) -> str:
        """`type/subtype`, lower-case: what to compare."""
        return f"{self.type}/{self.subtype}"

    def __str__(self) -> str:
        params = "".join(f"; {name}={_quote(value)}" for name, value in self.parameters.items())
        return f"{self.essence}{params}"


def _quote(value: str) -> str:
    if re.fullmatch(_TCHARS, value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_media_type(value: str) -> MediaType | None:
    """The media type in a `Content-Type` value, or None when it is not one."""
    essence = _ESSENCE.match(value)
    if essence is None:
        return None
    parameters: dict[str, str] = {}
    position = essence.end()
    while True:
        parameter = _PARAMETER.match(value, position)
        if parameter is None:
            break
        position = parameter.end()
        name, raw = parameter.group(1), parameter.group(2)
        if name is not None:
            unquoted = _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
            parameters.setdefault(name.lower(), unquoted)
    trailing = _TRAILING_SPACE.match(value, position)
    if trailing is None or trailing.end() != len(value):
        return None
    return MediaType(essence.group(1).lower(), essence.group(2).lower(), parameters)
