"""After-answer writes after the response has gone out, in AWS: a Lambda internal extension.

Why: a whole request's after-answer writes (usage ``ADD``, reconcile, spend:
:mod:`switchboard.accounting`) cost one DynamoDB round trip. Run inline, the client waits for them.
A thread started by the handler does not help: Lambda freezes the execution environment once the
invocation is over, so the thread stalls until the next invocation thaws it. What Lambda does wait
for is its *extensions* (the Lambda Extensions API guide, "Invoke phase": the phase "ends after
the runtime and all extensions signal that they are done by sending a ``Next`` API request"; the
AWS Compute Blog, "Running code after returning a response from an AWS Lambda function", uses an
internal extension for exactly this). An *internal* extension is a thread of the runtime process.

The protocol (Extensions API ``2020-01-01`` at ``http://${AWS_LAMBDA_RUNTIME_API}``):

- **register** during init, before the runtime's first ``/runtime/invocation/next`` (then it is too
  late: the init phase ends when the runtime and every registered extension have called ``Next``):
  ``POST /2020-01-01/extension/register`` with ``Lambda-Extension-Name`` and the body
  ``{"events": ["INVOKE"]}`` (an internal extension may not register for ``SHUTDOWN``: the runtime
  process starts and stops it); the response header ``Lambda-Extension-Identifier`` is sent back on
  every later call.
- **next**: ``GET /2020-01-01/extension/event/next`` blocks (no timeout: the environment may stay
  frozen in it) until the next event; an ``INVOKE`` event carries the invocation's ``requestId`` and
  ``deadlineMs`` (epoch milliseconds). Calling it again says "done with this invocation".
- **errors**: ``POST /2020-01-01/extension/init/error`` (failed after registering, during init) and
  ``/extension/exit/error`` (about to stop), with ``Lambda-Extension-Function-Error-Type``.

What this module does with it: on each ``INVOKE`` event the extension thread waits until the code
serving that invocation says it is finished (:func:`invocation`, whose exit runs in a ``finally``,
so a handler that raises releases it too), runs the writes queued for it (:class:`DeferredWrites`)
concurrently (:class:`switchboard.accounting.ConcurrentWrites`), then calls ``Next``. Bounded: it
never waits past the invocation's ``deadlineMs`` minus :data:`DEADLINE_MARGIN_S` (a write still
running then is abandoned: it resumes, or times out, when the environment next thaws), and an
invocation that nothing in this process has begun serving :data:`BEGIN_WITHIN_S` after its event
arrived is not ours to wait for. A write that fails is logged (metering emits ``MeteringFailed``).

Where it runs:

- In AWS the gateway function runs ``handlers.gateway_http`` under AWS Lambda Web Adapter: LWA is
  the runtime (it calls ``/runtime/invocation/next`` once our HTTP server answers its readiness
  check), so the server registers the extension before it listens (:func:`start_from_env` in its
  ``main``) and opens an :func:`invocation` around every request LWA forwards (request id from
  ``x-amzn-lambda-context``). Whole requests (``handlers.gateway.handler``) defer their writes;
  a stream keeps writing after ``data: [DONE]``, before its connection closes (not deferred), and
  only releases the extension when it ends.
- Under the Python runtime with ``handlers.gateway.handler`` as the function's handler, the gateway
  module registers at import (init), when ``_HANDLER`` names it. (The runtime client releases the
  GIL while it waits in ``/runtime/invocation/next``: aws-lambda-python-runtime-interface-client
  PR #33, 2021; the extension's thread runs meanwhile.)
- Locally (``make local``, tests) and with ``SWITCHBOARD_AFTER_RESPONSE=inline``: nothing registers
  (no ``AWS_LAMBDA_RUNTIME_API``), and the writes run inline, before the response, as before. If
  registering fails, the writes run inline too (logged once).

Stdlib only (``http.client``), imported on the gateway's cold path: the accounting module is loaded
on the first write, not here.
"""

from __future__ import annotations

import contextlib
import contextvars
import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from switchboard.contract import env as names

__all__ = [
    "AFTER_RESPONSE",
    "BEGIN_WITHIN_S",
    "DEADLINE_MARGIN_S",
    "EXTENSION_NAME",
    "AfterResponseExtension",
    "Claimed",
    "DeferredWrites",
    "ExtensionsApi",
    "ExtensionsApiError",
    "Handoff",
    "active_extension",
    "invocation",
    "mode_from_env",
    "start_from_env",
]

logger = logging.getLogger(__name__)

Write = Callable[[], None]

AFTER_RESPONSE: Final = names.AFTER_RESPONSE
"""``extension`` (register the extension when running in Lambda) or ``inline`` (the writes run
before the response). Unset: ``inline``; the synthesized gateway function sets ``extension``."""
MODES: Final = (names.AFTER_RESPONSE_EXTENSION, names.AFTER_RESPONSE_INLINE)
EXTENSION_NAME: Final = "switchboard-after-response"
"""``Lambda-Extension-Name``. The guide asks an external extension for its file name under
``/opt/extensions`` (Lambda checks it); an internal one has no file, and AWS's examples of internal
extensions use a plain name."""
API_VERSION: Final = "2020-01-01"
DEADLINE_MARGIN_S: Final = 0.5
"""The extension calls ``Next`` at the latest this long before the invocation's deadline."""
BEGIN_WITHIN_S: Final = 2.0
"""An invocation nothing here has begun serving this long after its ``INVOKE`` event is not ours
(whole and streamed requests begin within milliseconds): ``Next`` at once, not at the deadline."""


class ExtensionsApiError(Exception):
    """The Extensions API refused a call or could not be reached."""


class ExtensionsApi:
    """The Lambda Extensions API (``http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension/...``).

    One connection, used by one thread at a time (registration at init, then the extension thread).
    No timeout: ``next`` blocks until there is an event, possibly across a freeze.
    """

    def __init__(self, runtime_api: str) -> None:
        self._runtime_api = runtime_api
        self._connection: http.client.HTTPConnection | None = None

    def _request(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        url = f"/{API_VERSION}/extension/{path}"
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._runtime_api, timeout=None)
            try:
                self._connection.request(method, url, body=body, headers=dict(headers))
                response = self._connection.getresponse()
                return response.status, response.headers, response.read()
            except (http.client.HTTPException, OSError) as exc:
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise ExtensionsApiError(f"{method} {url}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def register(self, name: str, events: Sequence[str]) -> str:
        """Register; the ``Lambda-Extension-Identifier`` every later call sends."""
        status, headers, body = self._request(
            "POST",
            "register",
            headers={"Lambda-Extension-Name": name, "Content-Type": "application/json"},
            body=json.dumps({"events": list(events)}).encode(),
        )
        identifier = headers.get("Lambda-Extension-Identifier")
        if status != 200 or not identifier:
            raise ExtensionsApiError(f"register: HTTP {status}: {body[:200]!r}")
        return str(identifier)

    def next_event(self, identifier: str) -> dict[str, Any]:
        """The next event (blocks); calling it also says this extension is done with the last one."""
        headers = {"Lambda-Extension-Identifier": identifier}
        status, _, body = self._request("GET", "event/next", headers=headers)
        if status != 200:
            raise ExtensionsApiError(f"event/next: HTTP {status}: {body[:200]!r}")
        event = json.loads(body or b"{}")
        if not isinstance(event, dict):
            raise ExtensionsApiError(f"event/next: not an event: {body[:200]!r}")
        return event

    def report_error(self, identifier: str, phase: str, error_type: str, message: str) -> None:
        """``init/error`` or ``exit/error``; never raises (the extension is stopping anyway)."""
        try:
            self._request(
                "POST",
                f"{phase}/error",
                headers={
                    "Lambda-Extension-Identifier": identifier,
                    "Lambda-Extension-Function-Error-Type": error_type,
                    "Content-Type": "application/json",
                },
                body=json.dumps(
                    {"errorMessage": message[:500], "errorType": error_type, "stackTrace": []}
                ).encode(),
            )
        except ExtensionsApiError:
            logger.warning("reporting the after-response extension's error failed", exc_info=True)


@dataclass
class _Invocation:
    writes: list[Write] = field(default_factory=list)
    then: list[Callable[[], None]] = field(default_factory=list)
    finished: bool = False


class Claimed(list[Write]):
    """The writes an extension claimed, and what runs once they are done (``then``: e.g. publishing
    the metrics they emitted, which the handler's own flush has already missed)."""

    def __init__(self) -> None:
        super().__init__()
        self.then: list[Callable[[], None]] = []


class Handoff:
    """Between the code serving invocations (begin, queue writes, finish) and the extension thread
    (claim an invocation's writes once it is finished). Thread-safe; no I/O."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._invocations: dict[str, _Invocation] = {}

    def begin(self, request_id: str) -> None:
        with self._changed:
            self._invocations.setdefault(request_id, _Invocation())
            self._changed.notify_all()

    def add(
        self, request_id: str, writes: Sequence[Write], *, then: Callable[[], None] | None = None
    ) -> bool:
        """Queue writes for an invocation being served (``then`` runs after them, once per
        invocation); False when it is not being served (run them yourself)."""
        with self._changed:
            current = self._invocations.get(request_id)
            if current is None or current.finished:
                return False
            current.writes.extend(writes)
            if then is not None and then not in current.then:
                current.then.append(then)
            return True

    def finish(self, request_id: str) -> None:
        with self._changed:
            self._invocations.setdefault(request_id, _Invocation()).finished = True
            self._changed.notify_all()

    def claim(self, request_id: str, *, until: float, begin_within_s: float = BEGIN_WITHIN_S) -> Claimed:
        """Wait until ``request_id`` is finished (or was never begun ``begin_within_s`` from now, or
        ``until`` passes); return its writes and those of every other finished invocation (one the
        extension stopped waiting for before it finished: late, but not lost)."""
        begin_by = self._clock() + begin_within_s
        with self._changed:
            while True:
                current = self._invocations.get(request_id)
                now = self._clock()
                if current is not None and current.finished:
                    break
                if current is None and now >= begin_by:
                    break
                if now >= until:
                    logger.warning("after-answer writes: invocation still running at the deadline margin")
                    break
                wait_until = until if current is not None else min(until, begin_by)
                self._changed.wait(max(0.0, wait_until - now))
            claimed = Claimed()
            for rid in [rid for rid, inv in self._invocations.items() if inv.finished]:
                done = self._invocations.pop(rid)
                claimed.extend(done.writes)
                claimed.then.extend(hook for hook in done.then if hook not in claimed.then)
            return claimed


class _Runner(Protocol):
    def run_within(self, writes: Sequence[Write], timeout_s: float) -> bool: ...


class AfterResponseExtension:
    """The internal extension: registration, and the thread that holds each invocation open until
    its after-answer writes are done (see the module docstring)."""

    def __init__(
        self,
        api: ExtensionsApi,
        *,
        runner: _Runner | None = None,
        handoff: Handoff | None = None,
        margin_s: float = DEADLINE_MARGIN_S,
        begin_within_s: float = BEGIN_WITHIN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.handoff = handoff or Handoff(clock)
        self._runner = runner
        self._margin_s = margin_s
        self._begin_within_s = begin_within_s
        self._clock = clock
        self._identifier: str | None = None
        self._thread: threading.Thread | None = None
        self.active = False

    def start(self, name: str = EXTENSION_NAME) -> None:
        """Register (raises :class:`ExtensionsApiError`) and start the thread; call during init."""
        self._identifier = self.api.register(name, ["INVOKE"])
        try:
            self._thread = threading.Thread(target=self._loop, name="after-response", daemon=True)
            self.active = True
            self._thread.start()
        except Exception as exc:  # e.g. no thread could be started: Lambda restarts the environment
            self.active = False
            self.api.report_error(self._identifier, "init", "Extension.ThreadFailed", str(exc))
            raise ExtensionsApiError(f"starting the extension thread: {exc}") from exc

    def _runner_or_default(self) -> _Runner:
        if self._runner is None:
            from switchboard.accounting import ConcurrentWrites

            self._runner = ConcurrentWrites()
        return self._runner

    def _loop(self) -> None:
        identifier = self._identifier or ""
        try:
            while True:
                event = self.api.next_event(identifier)  # "done" with the previous invocation
                if event.get("eventType") != "INVOKE":
                    logger.info("after-response extension stops", extra={"event": event.get("eventType")})
                    return
                self._after(event)
        except Exception as exc:
            logger.exception("the after-response extension failed: after-answer writes now run inline")
            self.api.report_error(identifier, "exit", "Extension.Failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.active = False

    def _after(self, event: Mapping[str, Any]) -> None:
        """One INVOKE event: wait for the invocation to finish, run its writes, all before the margin."""
        deadline_ms = event.get("deadlineMs")
        deadline = float(deadline_ms) / 1000 if isinstance(deadline_ms, int | float) else self._clock() + 3.0
        until = deadline - self._margin_s
        request_id = str(event.get("requestId") or "")
        writes = self.handoff.claim(request_id, until=until, begin_within_s=self._begin_within_s)
        if not writes:
            return
        left = until - self._clock()
        if left <= 0 or not self._runner_or_default().run_within(writes, left):
            logger.warning(
                "after-answer writes cut off at the deadline margin",
                extra={"request_id": request_id, "writes": len(writes)},
            )
        for hook in writes.then:
            try:
                hook()
            except Exception:  # e.g. publishing metrics: never stops the extension
                logger.exception("an after-answer hook failed")


# --- This process's extension, and the seams the gateway calls --------------------------------------

_extension: AfterResponseExtension | None = None
_start_lock = threading.Lock()
_current: contextvars.ContextVar[tuple[str, bool] | None] = contextvars.ContextVar(
    "switchboard_after_response", default=None
)


def mode_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """``extension`` or ``inline``; raises ValueError naming the variable for anything else."""
    value = environ.get(AFTER_RESPONSE, "").strip().lower() or names.AFTER_RESPONSE_INLINE
    if value not in MODES:
        given = environ.get(AFTER_RESPONSE)
        raise ValueError(f"{AFTER_RESPONSE}={given!r}: expected one of {', '.join(MODES)}")
    return value


def start_from_env(
    environ: Mapping[str, str] = os.environ, *, factory: Callable[[str], AfterResponseExtension] | None = None
) -> AfterResponseExtension | None:
    """Register this process's extension when running in Lambda with ``extension`` mode (once).

    Call during init only. None (and the writes run inline) when not in Lambda, in ``inline`` mode,
    or when registering failed (logged once, here)."""
    global _extension
    with _start_lock:
        if _extension is not None:
            return _extension
        try:
            mode = mode_from_env(environ)
        except ValueError as exc:
            logger.error("after-answer writes run inline: %s", exc)
            return None
        runtime_api = environ.get("AWS_LAMBDA_RUNTIME_API", "").strip()
        if mode != names.AFTER_RESPONSE_EXTENSION or not runtime_api:
            return None
        extension = (factory or (lambda api: AfterResponseExtension(ExtensionsApi(api))))(runtime_api)
        try:
            extension.start()
        except Exception:
            logger.exception("registering the after-response extension failed: the writes run inline")
            return None
        _extension = extension
        return extension


def active_extension() -> AfterResponseExtension | None:
    """This process's registered extension while its thread runs, else None."""
    extension = _extension
    return extension if extension is not None and extension.active else None


def _forget_extension() -> None:
    """Tests: behave as a process that never registered."""
    global _extension
    _extension = None


@contextlib.contextmanager
def invocation(request_id: str | None, *, defer: bool = False) -> Iterator[None]:
    """Serve one invocation: the extension waits for this block's exit (even by an exception).

    ``defer``: :class:`DeferredWrites` called inside (same thread or a copied context) queues the
    writes for after the response. Nested with the same request id (the HTTP entrypoint around the
    gateway handler), only the outermost block begins and finishes the invocation. No-op without a
    registered extension or a request id.
    """
    extension = active_extension()
    if extension is None or not request_id:
        yield
        return
    outer = _current.get()
    owner = outer is None or outer[0] != request_id
    if owner:
        extension.handoff.begin(request_id)
    token = _current.set((request_id, defer or (not owner and outer is not None and outer[1])))
    try:
        yield
    finally:
        _current.reset(token)
        if owner:
            extension.handoff.finish(request_id)


class DeferredWrites:
    """A :data:`switchboard.accounting.WriteRunner`: inside a deferring :func:`invocation` with the
    extension registered, the writes wait for the response to go out; otherwise they run inline,
    concurrently (:class:`~switchboard.accounting.ConcurrentWrites`), as before.

    A deferred write runs in a copy of the context it was queued from (the request's log keys
    follow it into the extension's thread); ``after_deferred`` runs once the invocation's deferred
    writes are done (the gateway publishes the metrics they emitted: its handler's flush is over).
    """

    def __init__(
        self,
        inline: Callable[[Sequence[Write]], None] | None = None,
        *,
        after_deferred: Callable[[], None] | None = None,
    ) -> None:
        self._inline = inline
        self._after_deferred = after_deferred
        self._lock = threading.Lock()

    def _inline_runner(self) -> Callable[[Sequence[Write]], None]:
        with self._lock:
            if self._inline is None:
                from switchboard.accounting import ConcurrentWrites

                self._inline = ConcurrentWrites()
            return self._inline

    def __call__(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        current = _current.get()
        extension = active_extension()
        if current is not None and current[1] and extension is not None:
            queued = contextvars.copy_context()
            in_context = [_in_context(queued, write) for write in writes]
            if extension.handoff.add(current[0], in_context, then=self._after_deferred):
                return
        self._inline_runner()(writes)


def _in_context(queued: contextvars.Context, write: Write) -> Write:
    def run() -> None:
        queued.copy().run(write)  # a copy each: the writes of one batch run at once

    return run
