"""How much of a request's workflow state each part may take, sized on the whole state.

Step Functions caps a state's input and output at 256 KiB and a state over the cap fails the
execution with ``States.DataLimitExceeded``, which no ``Catch`` can handle. Sizing each payload on
its own ("inline up to 128 KiB") is not enough: a request just under that plus an answer just under
it, beside the workflow's own keys, is over the cap (issue 10 item 6). So the budget is split here,
once, for the worst state the request workflow can hold:

* the workflow input (the request inline when it fits, the route's chains, static answer, keys):
  :data:`INPUT_BUDGET_BYTES`;
* an answer, which can be in the state up to three times at once on the cached-answer branch: the
  answer itself (``$.attempt.result`` or ``$.cache_hit.answer``) and the cache item read back as a
  JSON *string* (``$.cached.Item.answer.S``), whose escaping at most doubles it. So an answer travels
  inline only up to :data:`ANSWER_INLINE_LIMIT_BYTES` = a third of its share;
* the workflow's bookkeeping (cursor, candidate, circuit item, probe lease, error records, capped at
  :data:`ERROR_MESSAGE_LIMIT_CHARS`): :data:`BOOKKEEPING_RESERVE_BYTES`.

Anything over its share travels by claim check (an S3 object) and is never truncated. Sizes are
measured as compact JSON with non-ASCII escaped (``\\uXXXX``), which is never smaller than the UTF-8
that Step Functions counts.
"""

from __future__ import annotations

import json
from typing import Any, Final

STATE_LIMIT_BYTES: Final = 256 * 1024
BOOKKEEPING_RESERVE_BYTES: Final = 16 * 1024
ANSWER_COPIES_IN_STATE: Final = 3
ANSWER_INLINE_LIMIT_BYTES: Final = 48 * 1024
INPUT_BUDGET_BYTES: Final = (
    STATE_LIMIT_BYTES - BOOKKEEPING_RESERVE_BYTES - ANSWER_COPIES_IN_STATE * ANSWER_INLINE_LIMIT_BYTES
)
ERROR_MESSAGE_LIMIT_CHARS: Final = 1024
"""A provider's error message is kept to this many characters in the workflow state (and in the
circuit's last error): an HTML error page must not eat the state's budget."""


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (an upper bound of what Step Functions counts)."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def clip_message(message: str) -> str:
    """A provider error message cut to :data:`ERROR_MESSAGE_LIMIT_CHARS`, saying that it was cut."""
    if len(message) <= ERROR_MESSAGE_LIMIT_CHARS:
        return message
    return message[: ERROR_MESSAGE_LIMIT_CHARS - 14] + " …(truncated)"
