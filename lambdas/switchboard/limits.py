"""The request-body limit, enforced where it can really be enforced: in front of Lambda.

Lambda's synchronous invocation payload is 6 MiB (6,291,456 bytes) for the *whole event*, not the
body: API Gateway embeds the body as a JSON string beside the headers and request context, so a
body near 6 MB never reaches the gateway function; Lambda refuses the invocation and the client
would see a 5xx (issue 10 item 5). Inside the event, escaping grows the body: a valid JSON body at
most doubles (each ``"`` or ``\\`` gains a backslash) and at most triples if non-ASCII characters
were written as ``\\uXXXX`` (a 4-byte emoji becomes a 12-byte surrogate pair). So a body of at most
:data:`MAX_REQUEST_BODY_BYTES` always fits with room for the headers and context, and:

* the WAF web ACL refuses a larger ``Content-Length`` with 413 before API Gateway calls anything
  (``infra/constructs/api.py``; the rule is always deployed, with or without the managed rules);
* the gateway function refuses a larger body it does receive (a request without a
  ``Content-Length``, e.g. chunked) with the same 413;
* the local front door, which plays API Gateway and WAF, refuses it with the same 413.

What remains: a body without ``Content-Length`` whose event, after escaping, exceeds 6 MiB (only
possible with invalid JSON full of control characters, escaped as ``\\u00XX``) is refused by
Lambda, and API Gateway answers with its DEFAULT_5XX response (an OpenAI-shaped body, its own 5xx
status). Bodies over 10 MB are refused by API Gateway itself (REQUEST_TOO_LARGE, 413).
"""

from __future__ import annotations

from typing import Final

LAMBDA_EVENT_LIMIT_BYTES: Final = 6 * 1024 * 1024
MAX_ESCAPE_GROWTH: Final = 3
MAX_REQUEST_BODY_BYTES: Final = 2_000_000
"""2 MB: times :data:`MAX_ESCAPE_GROWTH` it leaves ~290 KB of the event for headers and context."""


def larger_than_pattern(limit: int) -> str:
    """A regular expression (PCRE and Python alike) matching a decimal integer, leading zeros
    allowed, that is greater than ``limit``: how a WAF rule compares a ``Content-Length`` header."""
    digits = str(limit)
    width = len(digits)
    alternatives = [f"[1-9][0-9]{{{width},}}"]  # more digits than the limit has
    for i, char in enumerate(digits):  # same width: equal prefix, then a greater digit
        digit = int(char)
        if digit == 9:
            continue
        rest = width - i - 1
        tail = f"[0-9]{{{rest}}}" if rest else ""
        alternatives.append(f"{digits[:i]}[{digit + 1}-9]{tail}")
    return "^0*(" + "|".join(alternatives) + ")$"
