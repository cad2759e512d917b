"""A local stand-in for the AWS AppConfig agent / Lambda extension's HTTP API, for feature flags.

It serves one ``AWS.AppConfig.FeatureFlags`` document from a file, evaluated per request by
:func:`switchboard_local.flag_evaluation.evaluate_document`. That is the project's reading of how
the AppConfig extension evaluates multi-variant flags, not code that runs in AWS: there the gateway
sends the same ``Context`` headers to the extension on ``localhost:2772``, the extension evaluates,
and the gateway checks the answer (:func:`switchboard.routing.schema.validate_evaluated`) exactly as
it checks this emulator's. The emulator is the extension's stand-in wherever there is no AWS: the
local stack, the tests and the benchmark.

* ``GET /applications/{app}/environments/{env}/configurations/{profile}`` with optional repeated
  ``?flag=KEY`` and ``Context: key=value`` headers (repeated, or comma-separated in one header).
  Answers ``application/json`` with a ``Configuration-Version`` header. When the emulator was
  given application / environment / profile names, other names get 404; ``None`` accepts any.
  An unknown ``flag`` or a malformed ``Context`` gets 400.
* ``GET /ping`` answers 200 ``healthy``.

The file is polled every ``poll_interval_s``: a changed, valid document is served from then on
with a new ``Configuration-Version`` (a counter, bumped on every change of content). A changed but
invalid document (bad JSON or :func:`validate_document` problems) is logged and ignored: the last
good document keeps being served, as the real agent serves its cached copy when a poll fails.

Freeform profiles (``freeform={profile name: FreeformConfiguration(path, check)}``, e.g. the tenant
prompt profiles from ``config/profiles.json``) are served on the same path with their own profile
name, as the agent serves a freeform profile: the file's bytes unchanged, no evaluation (``Context``
headers are ignored), ``Content-Type: application/json`` and their own ``Configuration-Version``.
They are polled like the flags; ``check`` (the profile's validator, e.g.
:func:`switchboard.profiles.parse_document_bytes`) refuses a changed file the same way, and the
last good bytes keep being served.

Given ``option_ids`` (``{id: status}``, or a callable returning it, read on every load), a document
whose chains name an unknown or retired option is refused the same way: that is what the profile's
Lambda validator does in AWS before a deployment starts (``handlers/flags_validator.py``). The local
stack passes a reader of its options table, as that validator reads the deployed one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from switchboard.routing.document import FlagDocumentError, validate_document
from switchboard.routing.schema import OptionCatalogue
from switchboard_local.flag_evaluation import UnknownFlagError, evaluate_document

__all__ = ["AgentEmulator", "ContextHeaderError", "FreeformConfiguration", "parse_context_headers"]

log = logging.getLogger("switchboard.agent")

DEFAULT_PORT = 2772

OptionIds = OptionCatalogue | Callable[[], OptionCatalogue]


class ContextHeaderError(ValueError):
    """A ``Context`` header that is not ``key=value[,key=value...]``."""


def parse_context_headers(values: list[str]) -> dict[str, str]:
    """``Context`` header values → context dict. Later keys override earlier ones."""
    context: dict[str, str] = {}
    for header in values:
        for piece in header.split(","):
            item = piece.strip()
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ContextHeaderError(f"malformed Context entry {item!r}: expected key=value")
            context[key] = value.strip()
    return context


def _parse_document(raw: bytes, source: Path, option_ids: OptionIds | None) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FlagDocumentError(f"flag document {source} is not valid JSON: {exc}") from exc
    if callable(option_ids):
        try:
            option_ids = option_ids()
        except Exception as exc:  # the validator cannot check: AWS would fail the deployment too
            raise FlagDocumentError(f"cannot read the option ids to check {source} against: {exc}") from exc
    problems = validate_document(doc, option_ids)
    if problems:
        raise FlagDocumentError(f"flag document {source} is invalid", problems)
    assert isinstance(doc, dict)
    return doc


@dataclass(frozen=True)
class FreeformConfiguration:
    """A freeform profile served verbatim from ``path``; ``check(raw)`` raising refuses a version."""

    path: Path
    check: Callable[[bytes], object] | None = None
    content_type: str = "application/json"


@dataclass
class _FreeformSource:
    """The served bytes of one freeform profile, reloaded from its file like the flag document."""

    name: str
    config: FreeformConfiguration
    raw: bytes = b""
    version: int = 0
    good_hash: str | None = None
    bad_hash: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _checked(self, raw: bytes) -> None:
        if self.config.check is not None:
            try:
                self.config.check(raw)
            except Exception as exc:  # the check's refusal, whatever its class: AWS refuses the version
                raise FlagDocumentError(
                    f"configuration {self.name!r} from {self.config.path} is invalid: {exc}"
                ) from exc

    def load(self) -> None:
        """The first load: an unreadable or refused file stops the emulator from starting."""
        try:
            raw = Path(self.config.path).read_bytes()
        except OSError as exc:
            raise FlagDocumentError(f"cannot read {self.config.path}: {exc.strerror or exc}") from exc
        self._checked(raw)
        self._install(raw, hashlib.sha256(raw).hexdigest())

    def _install(self, raw: bytes, digest: str) -> None:
        with self.lock:
            self.raw, self.good_hash, self.bad_hash = raw, digest, None
            self.version += 1

    def reload(self) -> bool:
        try:
            raw = Path(self.config.path).read_bytes()
        except OSError as exc:
            if self.bad_hash != "unreadable":
                log.error("cannot read %s (%s); still serving the last good version", self.config.path, exc)
                self.bad_hash = "unreadable"
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest in (self.good_hash, self.bad_hash):
            return False
        try:
            self._checked(raw)
        except FlagDocumentError as exc:
            self.bad_hash = digest
            log.error("%s; still serving version %s", exc, self.version)
            return False
        self._install(raw, digest)
        log.info("reloaded %s as version %s", self.config.path, self.version)
        return True

    def served(self) -> tuple[bytes, str]:
        with self.lock:
            return self.raw, str(self.version)


class _Server(ThreadingHTTPServer):
    """Also tracks its open connections: clients keep connections alive (switchboard.http_pool), and
    a stopped agent must stop answering on those too, as a crashed extension would."""

    daemon_threads = True
    allow_reuse_address = True
    emulator: AgentEmulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                connection.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "SwitchboardAppConfigAgent/1"
    # Headers and body go out in two writes; with Nagle's algorithm the body of an answer on a
    # kept-alive connection waits for the client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _send(
        self, status: int, body: str | bytes, content_type: str = "text/plain", version: str | None = None
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if version is not None:
            self.send_header("Configuration-Version", version)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    def do_HEAD(self) -> None:
        self.server.emulator._handle(self)

    def _method_not_allowed(self) -> None:
        self._send(405, "method not allowed: the agent serves GET\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed


class AgentEmulator:
    """The AppConfig agent's feature-flag HTTP API on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        config_path: Path | str,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        application: str | None = None,
        environment: str | None = None,
        profile: str | None = None,
        poll_interval_s: float = 1.0,
        option_ids: OptionIds | None = None,
        freeform: Mapping[str, FreeformConfiguration] | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self._freeform = {name: _FreeformSource(name, config) for name, config in (freeform or {}).items()}
        self.host = host
        self.port = port
        self.application = application
        self.environment = environment
        self.profile = profile
        self.poll_interval_s = poll_interval_s
        self.option_ids = option_ids
        self._lock = threading.Lock()
        self._doc: dict[str, Any] = {}
        self._version = 0
        self._good_hash: str | None = None
        self._bad_hash: str | None = None
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> AgentEmulator:
        """Load the document (raising :class:`FlagDocumentError` if invalid), then serve in the background."""
        if self._server is not None:
            return self
        try:
            raw = self.config_path.read_bytes()
        except OSError as exc:
            raise FlagDocumentError(
                f"cannot read flag document {self.config_path}: {exc.strerror or exc}"
            ) from exc
        doc = _parse_document(raw, self.config_path, self.option_ids)
        for source in self._freeform.values():
            source.load()
        self._install(doc, hashlib.sha256(raw).hexdigest())
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._server = server
        self._stop.clear()
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True),
            threading.Thread(target=self._poll_loop, daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("AppConfig agent emulator serving %s on %s", self.config_path, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and polling; safe to call twice."""
        server, self._server = self._server, None
        self._stop.set()
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def __enter__(self) -> AgentEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def serving(self) -> bool:
        """Started and not stopped: answering on :attr:`url`."""
        return self._server is not None

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return (what Ctrl-C does); it stops everything on its way out."""
        self._stop.set()

    def serve_forever(self) -> None:
        """Start and block until interrupted (Ctrl-C), then stop."""
        self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:2772`` (the real bound port once started)."""
        port = self._server.server_address[1] if self._server is not None else self.port
        return f"http://{self.host}:{port}"

    def configuration_path(self, application: str, environment: str, profile: str) -> str:
        return f"/applications/{application}/environments/{environment}/configurations/{profile}"

    @property
    def configuration_version(self) -> str:
        with self._lock:
            return str(self._version)

    def freeform_version(self, profile: str) -> str:
        """The ``Configuration-Version`` a freeform profile is served with (bumped on each change)."""
        return self._freeform[profile].served()[1]

    def reload_freeform(self) -> bool:
        """Re-read every freeform file now; True when one of them was installed anew."""
        return any([source.reload() for source in self._freeform.values()])

    @property
    def document(self) -> dict[str, Any]:
        with self._lock:
            return self._doc

    # -- reloading -------------------------------------------------------------------------------

    def _install(self, doc: dict[str, Any], digest: str) -> None:
        with self._lock:
            self._doc = doc
            self._good_hash = digest
            self._bad_hash = None
            self._version += 1

    def reload(self) -> bool:
        """Re-read the file now; True when a new document was installed."""
        try:
            raw = self.config_path.read_bytes()
        except OSError as exc:
            if self._bad_hash != "unreadable":
                log.error("cannot read %s (%s); still serving the last good document", self.config_path, exc)
                self._bad_hash = "unreadable"
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest in (self._good_hash, self._bad_hash):
            return False
        try:
            doc = _parse_document(raw, self.config_path, self.option_ids)
        except FlagDocumentError as exc:
            self._bad_hash = digest
            log.error("%s; still serving version %s", exc, self.configuration_version)
            return False
        self._install(doc, digest)
        log.info("reloaded %s as version %s", self.config_path, self.configuration_version)
        return True

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.reload()
                for source in self._freeform.values():
                    source.reload()
            except Exception:  # never let the poller die
                log.exception("unexpected error while polling %s", self.config_path)

    # -- requests --------------------------------------------------------------------------------

    def _handle(self, req: _Handler) -> None:
        parts = urlsplit(req.path)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        if segments == ["ping"]:
            req._send(200, "healthy")
            return
        if (
            len(segments) != 6
            or segments[0] != "applications"
            or segments[2] != "environments"
            or segments[4] != "configurations"
            or not all(segments[1::2])
        ):
            req._send(404, f"not found: {parts.path} (use /applications/A/environments/E/configurations/P)\n")
            return
        app, env, profile = segments[1], segments[3], segments[5]
        freeform = self._freeform.get(profile)
        for given, expected, what in (
            (app, self.application, "application"),
            (env, self.environment, "environment"),
            (profile, None if freeform is not None else self.profile, "configuration profile"),
        ):
            if expected is not None and given != expected:
                names = [expected, *self._freeform] if what == "configuration profile" else [expected]
                served = ", ".join(repr(name) for name in names)
                req._send(404, f"{what} {given!r} not found (this agent serves {served})\n")
                return
        if freeform is not None:  # served as deployed: no evaluation, no flag or context handling
            raw, version = freeform.served()
            req._send(200, raw, freeform.config.content_type, version=version)
            return
        query = parse_qs(parts.query, keep_blank_values=True)
        flag_keys = query.get("flag")
        if flag_keys is not None and not all(flag_keys):
            req._send(400, "empty flag= parameter\n")
            return
        try:
            context = parse_context_headers(req.headers.get_all("Context") or [])
        except ContextHeaderError as exc:
            req._send(400, f"{exc}\n")
            return
        with self._lock:
            doc, version = self._doc, str(self._version)
        try:
            body = evaluate_document(doc, context, flag_keys)
        except UnknownFlagError as exc:
            req._send(400, f"{exc}\n")
            return
        req._send(200, json.dumps(body), "application/json", version=version)
