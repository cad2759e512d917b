"""moto's server, routing requests as it does, without re-reading its own package on every one.

For each request, moto's ``DomainDispatcherApplication.get_backend_for_host`` asks
``moto.backends.list_of_moto_modules()`` whether the host names a service, and that lists moto's
package directory and stats each of its ~280 entries: about 0.35 ms of a 0.9 ms GetItem, on the
local stack's own CPU, which the gateway's requests share (its server is a thread of their
process). The answer for a host never changes while moto is loaded, so it is remembered per host.
:data:`switchboard_local.moto_patches.MOTO_SERVER_HOST_ROUTING` puts :func:`remembered_backend_for_host`
on moto's dispatcher.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Final

MAX_REMEMBERED_HOSTS: Final = 256
"""Hosts are the few names clients reach the server by; a bound, in case a client makes up many."""

_ABSENT: Final = object()


def remembered_backend_for_host(
    original: Callable[[Any, str | None], Any],
) -> Callable[[Any, str | None], Any]:
    """moto's ``get_backend_for_host``, each host's answer (``None`` included) asked once."""
    answers: dict[str | None, Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        answer = answers.get(host, _ABSENT)
        if answer is _ABSENT:
            answer = original(self, host)
            with lock:
                if len(answers) < MAX_REMEMBERED_HOSTS:
                    answers[host] = answer
        return answer

    return get_backend_for_host
