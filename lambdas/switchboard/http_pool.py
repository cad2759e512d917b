"""Keep-alive HTTP(S) connections for provider streams, reused per (scheme, host, port).

A stream used to open a new connection every time: a TCP handshake (and, over HTTPS, a TLS one)
before each request's first byte. A warm Lambda environment serves many requests to the same few
providers, so the connection of a stream that ended cleanly is kept for the next one.

Rules that keep reuse safe:

- A connection goes back to the pool only after its response was read to its end (the chunked
  terminator or the whole `Content-Length`) and the server did not ask to close it. A stream that
  failed, timed out, was abandoned by its reader or is still unread is closed, never reused.
- An idle connection the server has closed (readable while idle: its FIN, or bytes nobody asked
  for) or idle longer than `max_idle_s` is dropped when taken. A server may still close one in the
  instant between the check and the request: the caller retries once, on a fresh connection, when a
  *reused* connection fails before any byte of a response arrived (`is_stale_failure`). Such a
  request never reached the server's application (the server closed the connection instead of
  reading it), so sending it again does not run it twice.
- Bounded: at most `max_idle_per_host` idle connections per key and `max_idle_total` in all (the
  oldest idle ones are closed first). Thread-safe: one lock around the idle lists, never held
  during I/O.

Every socket gets `TCP_NODELAY`: http.client sends a request's headers and body in two writes, and
with Nagle's algorithm the body waits for the server's delayed ACK of the headers (up to 40 ms on
Linux) as soon as the connection leaves TCP's quick-ACK start; on a reused connection that is the
common case.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import select
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

PoolKey = tuple[str, str, int]
"""(scheme, host, port)."""

MAX_IDLE_PER_HOST = 8
MAX_IDLE_TOTAL = 32
MAX_IDLE_S = 20.0
"""Below the idle timeouts servers and load balancers commonly use (nginx 75 s, ALB 60 s); a frozen
Lambda environment's connections are older than this when it thaws, and are dropped unused."""

_STALE_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.BadStatusLine)
"""Failures of a request on a connection the server had already closed (`RemoteDisconnected` is a
`ConnectionResetError` and a `BadStatusLine`). Not timeouts: a timed-out request may be running."""


def is_stale_failure(exc: BaseException) -> bool:
    """A failure that says the connection was dead before the request, not that the request failed."""
    return isinstance(exc, _STALE_ERRORS)


def no_delay(connection: http.client.HTTPConnection) -> None:
    """`TCP_NODELAY` on a connected connection's socket (see the module docstring)."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def idle_connection_is_dead(connection: http.client.HTTPConnection) -> bool:
    """True when an idle connection's socket is closed or readable (EOF or unexpected bytes)."""
    sock = connection.sock
    if sock is None or sock.fileno() == -1:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


@dataclass
class _Idle:
    connection: http.client.HTTPConnection
    since: float


class ConnectionPool:
    """Idle keep-alive connections by (scheme, host, port); see the module docstring."""

    def __init__(
        self,
        *,
        max_idle_per_host: int = MAX_IDLE_PER_HOST,
        max_idle_total: int = MAX_IDLE_TOTAL,
        max_idle_s: float = MAX_IDLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_per_host = max_idle_per_host
        self._max_total = max_idle_total
        self._max_idle_s = max_idle_s
        self._clock = clock
        self._idle: OrderedDict[PoolKey, deque[_Idle]] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()

    def idle_count(self, key: PoolKey | None = None) -> int:
        with self._lock:
            if key is None:
                return self._count
            return len(self._idle.get(key, ()))

    def take(self, key: PoolKey) -> http.client.HTTPConnection | None:
        """The most recently used live idle connection for `key`, or None (then open a new one)."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                entry = idle.pop()  # the newest: the least likely to have been closed by the server
                self._count -= 1
                if not idle:
                    del self._idle[key]
            fresh = self._clock() - entry.since <= self._max_idle_s
            if fresh and not idle_connection_is_dead(entry.connection):
                return entry.connection
            entry.connection.close()

    def give_back(self, key: PoolKey, connection: http.client.HTTPConnection) -> None:
        """Keep a connection whose response was read to its end, for the next request to `key`."""
        evicted: list[http.client.HTTPConnection] = []
        with self._lock:
            idle = self._idle.setdefault(key, deque())
            self._idle.move_to_end(key)
            idle.append(_Idle(connection, self._clock()))
            self._count += 1
            while len(idle) > self._max_per_host:
                evicted.append(idle.popleft().connection)
                self._count -= 1
            while self._count > self._max_total:
                oldest_key = next(iter(self._idle))
                oldest = self._idle[oldest_key]
                evicted.append(oldest.popleft().connection)
                self._count -= 1
                if not oldest:
                    del self._idle[oldest_key]
        for stale in evicted:
            stale.close()

    def clear(self) -> None:
        """Close every idle connection."""
        with self._lock:
            entries = [entry for idle in self._idle.values() for entry in idle]
            self._idle.clear()
            self._count = 0
        for entry in entries:
            entry.connection.close()


class KeepAliveOpener:
    """`urllib.request.urlopen` for GETs to a local agent (the AppConfig extension), kept alive.

    The gateway asks the AppConfig agent on localhost for its routing flags and its prompt
    profiles on every request; urllib opens (and closes) a connection each time. This opener keeps
    the connections in a `ConnectionPool` instead. It takes what the readers pass to `urlopen` (a
    GET `Request` and a `timeout`) and answers as it does: the response (a context manager with
    `read()` and `headers`), `HTTPError` for a 4xx/5xx, `URLError` when the agent cannot be
    reached. A GET changes nothing, so a failure on a reused connection of any kind except a
    timeout is retried once on a fresh one.
    """

    def __init__(self, pool: ConnectionPool | None = None) -> None:
        self._pool = pool if pool is not None else ConnectionPool(max_idle_per_host=4, max_idle_total=8)

    def __call__(self, request: urllib.request.Request, timeout: float) -> _PooledResponse:
        parts = urllib.parse.urlsplit(request.full_url)
        if parts.scheme != "http" or not parts.hostname or request.get_method() != "GET":
            raise urllib.error.URLError("KeepAliveOpener serves plain-HTTP GETs only")
        key: PoolKey = ("http", parts.hostname, parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = dict(request.header_items())
        connection = self._pool.take(key)
        reused = connection is not None
        while True:
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, key[2], timeout=timeout)
            try:
                if connection.sock is None:
                    connection.connect()
                    no_delay(connection)
                else:
                    connection.sock.settimeout(timeout)
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except TimeoutError as exc:
                connection.close()
                raise urllib.error.URLError(exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if reused:
                    connection, reused = None, False
                    continue
                raise urllib.error.URLError(exc) from exc
            break
        if response.will_close:
            connection.close()
        else:
            self._pool.give_back(key, connection)
        if response.status >= 400:
            raise urllib.error.HTTPError(
                request.full_url, response.status, response.reason, response.headers, io.BytesIO(body)
            )
        return _PooledResponse(body, response.status, response.headers)


class _PooledResponse:
    """What the readers use of urlopen's answer: `read()`, `headers`, `status`, `with`."""

    def __init__(self, body: bytes, status: int, headers: http.client.HTTPMessage) -> None:
        self._body, self.status, self.headers = body, status, headers

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _PooledResponse:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None
