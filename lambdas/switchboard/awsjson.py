"""A small client for AWS's JSON 1.0 protocol (DynamoDB, Step Functions) on the request path.

Why: importing botocore and building a client from its service model cost 0.13-0.2 s of every cold
start, and the request path (authorizer, gateway, invoke and circuit steps) only ever makes a few
DynamoDB and Step Functions calls. Both speak the same wire protocol: `POST /` with
`X-Amz-Target: <prefix>.<Operation>` and a JSON body, signed with Signature Version 4 (the
algorithm in the AWS General Reference; `tests/unit/test_awsjson.py` checks our signatures against
botocore's signer byte for byte).

Deliberately small. Credentials come from the environment (what Lambda gives a function), the
endpoint is the standard regional one or `AWS_ENDPOINT_URL[_<SERVICE>]`, throttling, 5xx and
connection errors are retried a few times with jittered backoff. Failures are botocore's own types
(`ClientError` with the same `response` shape, modelled members such as `CancellationReasons` or
`Item` at its top level; `EndpointConnectionError`), imported only when raised, so callers catch
what they already catch. Differences from a botocore client: timestamps in responses stay epoch
seconds, and no response CRC32 check (TLS already guarantees integrity).

:func:`switchboard.aws.client` hands one out only when `SWITCHBOARD_LIGHT_AWS_CLIENT=1` (CDK sets it
on every function; in-process moto tests leave it unset, as moto's mock patches botocore) and only
where :func:`light_client` says it covers the request; everything else is botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = ["AwsJsonClient", "Credentials", "light_client", "sign"]

CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_ATTEMPTS = 3
TIMEOUT_S = 60.0  # botocore's default connect and read timeouts
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


# Refusals that mean the service did not act on the request: safe to retry even when the
# operation is not idempotent.
_REFUSED_CODES = frozenset(
    {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"}
)
IDLE_REUSE_S = 20.0
"""A non-idempotent call never rides a keep-alive connection idle for longer than this: a server
may have closed it, and a failure after the request was sent cannot be retried safely."""


# Endpoint variants this client does not build: botocore serves those configurations.
_BOTOCORE_ONLY_FLAGS = ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")


@dataclass(frozen=True)
class _Service:
    signing_name: str
    target_prefix: str
    endpoint_prefix: str
    env_suffix: str  # AWS_ENDPOINT_URL_<this>, from the service id as botocore spells it
    host_prefixes: Mapping[str, str]
    not_idempotent: frozenset[str] = frozenset()
    """Operations that act each time they are received: retried only when the service certainly
    did not act (no connection was made, or it answered with a throttling refusal). A retried
    StartSyncExecution after a 5xx or a lost answer would run a second workflow and call a provider
    twice (issue 10 item 7)."""


SERVICES: Mapping[str, _Service] = {
    "dynamodb": _Service("dynamodb", "DynamoDB_20120810", "dynamodb", "DYNAMODB", {}),
    "stepfunctions": _Service(
        "states",
        "AWSStepFunctions",
        "states",
        "SFN",
        {"StartSyncExecution": "sync-"},
        not_idempotent=frozenset({"StartSyncExecution", "StartExecution"}),
    ),
}


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Credentials | None:
        access, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            return None
        return cls(access, secret, environ.get("AWS_SESSION_TOKEN") or None)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    *,
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """SigV4: `headers` plus Host, X-Amz-Date, X-Amz-Security-Token and Authorization (no query)."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    signed = {**headers, "Host": host, "X-Amz-Date": amz_date}
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical = sorted((name.lower(), " ".join(value.strip().split())) for name, value in signed.items())
    names = ";".join(name for name, _ in canonical)
    canonical_request = "\n".join(
        [
            method,
            path or "/",
            "",  # no query string
            "".join(f"{name}:{value}\n" for name, value in canonical),
            names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return signed


def _operation(method_name: str) -> str:
    """`transact_write_items` → `TransactWriteItems` (every operation these services have)."""
    return "".join(part.capitalize() for part in method_name.split("_"))


def _default_endpoint(service: _Service, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service.endpoint_prefix}.{region}.{suffix}"


class AwsJsonClient:
    """`client.get_item(TableName=..., Key=...)`: botocore's call style, for the operations used."""

    def __init__(
        self,
        service: str,
        *,
        region: str,
        credentials: Credentials,
        endpoint_url: str | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        timeout_s: float = TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._service = SERVICES[service]
        self._region = region
        self._credentials = credentials
        self._custom_endpoint = endpoint_url is not None
        self._endpoint = (endpoint_url or _default_endpoint(self._service, region)).rstrip("/")
        self._max_attempts = max(1, max_attempts)
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._clock = clock
        self._local = threading.local()  # one keep-alive connection per thread (http.client is not shared)

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        operation = _operation(name)

        def call(**params: Any) -> dict[str, Any]:
            return self._call(operation, params)

        call.__name__ = name
        return call

    # -- one call ------------------------------------------------------------------------------

    def endpoint_for(self, operation: str) -> str:
        """``scheme://host[:port]`` this client sends ``operation`` to (host prefix included)."""
        scheme, host, port, _ = self._url(operation)
        return f"{scheme}://{host}" + (f":{port}" if port else "")

    def _url(self, operation: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(self._endpoint)
        host = parts.hostname or ""
        prefix = self._service.host_prefixes.get(operation, "")
        if prefix and not self._custom_endpoint:  # e.g. sync-states.<region>.amazonaws.com
            host = prefix + host
        return parts.scheme, host, parts.port, parts.path or "/"

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params, separators=(",", ":")).encode()
        scheme, host, port, path = self._url(operation)
        host_header = host if port is None else f"{host}:{port}"
        idempotent = operation not in self._service.not_idempotent
        for attempt in range(self._max_attempts):
            last = attempt + 1 == self._max_attempts
            headers = sign(
                method="POST",
                host=host_header,
                path=path,
                headers={
                    "Content-Type": CONTENT_TYPE,
                    "X-Amz-Target": f"{self._service.target_prefix}.{operation}",
                },
                body=body,
                credentials=self._credentials,
                region=self._region,
                service=self._service.signing_name,
                now=self._clock(),
            )
            try:
                connection = self._connection(scheme, host, port, fresh=not idempotent)
            except OSError as exc:  # no connection: the request never reached the service
                self._drop_connection()
                if not last:
                    self._backoff(attempt)
                    continue
                raise _connection_error(f"{scheme}://{host_header}", exc) from exc
            try:
                status, response_headers, data = self._exchange(connection, path, headers, body)
            except (OSError, http.client.HTTPException) as exc:
                # Sent, perhaps acted on: only an idempotent operation may go again.
                self._drop_connection()
                if idempotent and not last:
                    self._backoff(attempt)
                    continue
                raise _connection_error(f"{scheme}://{host_header}", exc) from exc
            metadata = {
                "RequestId": response_headers.get("x-amzn-requestid", ""),
                "HTTPStatusCode": status,
                "HTTPHeaders": response_headers,
                "RetryAttempts": attempt,
            }
            if status < 300:
                parsed: dict[str, Any] = json.loads(data) if data.strip() else {}
                parsed["ResponseMetadata"] = metadata
                return parsed
            error = _error_response(status, response_headers, data, metadata)
            code = error["Error"]["Code"]
            retryable = code in _REFUSED_CODES or (idempotent and (status >= 500 or code in _RETRYABLE_CODES))
            if not last and retryable:
                self._backoff(attempt)
                continue
            from botocore.exceptions import ClientError

            raise ClientError(error, operation)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _connection(
        self, scheme: str, host: str, port: int | None, *, fresh: bool
    ) -> http.client.HTTPConnection:
        """This thread's keep-alive connection, connected; a new one when there is none, or when
        ``fresh`` and the kept one has been idle longer than :data:`IDLE_REUSE_S`.

        Connecting happens here, so an error raised here means nothing was sent.
        """
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        idle = time.monotonic() - getattr(self._local, "used_at", 0.0)
        if connection is not None and fresh and idle > IDLE_REUSE_S:
            self._drop_connection()
            connection = None
        if connection is None:
            if scheme == "https":
                import ssl

                connection = http.client.HTTPSConnection(
                    host, port, timeout=self._timeout_s, context=ssl.create_default_context()
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self._timeout_s)
            self._local.connection = connection
            connection.connect()
        return connection

    def _exchange(
        self, connection: http.client.HTTPConnection, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self._local.used_at = time.monotonic()
        if response.will_close:
            self._drop_connection()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))


def _error_response(
    status: int, headers: Mapping[str, str], data: bytes, metadata: dict[str, Any]
) -> dict[str, Any]:
    """botocore's parsed error shape for JSON 1.0: Error.Code/Message, modelled members on top."""
    try:
        body = json.loads(data) if data.strip() else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    raw_code = str(body.pop("__type", "") or headers.get("x-amzn-errortype", "") or status)
    code = raw_code.split("#")[-1].split(":")[0]
    message = str(body.get("message", body.get("Message", "")))
    # The body's other members (the message among them) stay at the top, as botocore puts them.
    return {**body, "Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}


def _connection_error(endpoint: str, exc: BaseException) -> Exception:
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    if isinstance(exc, TimeoutError):
        return ReadTimeoutError(endpoint_url=endpoint, error=str(exc))
    return EndpointConnectionError(endpoint_url=endpoint, error=str(exc))


def light_client(
    service: str, environ: Mapping[str, str] | None = None, **kwargs: Any
) -> AwsJsonClient | None:
    """An `AwsJsonClient` when this request is one it covers, else None (use botocore)."""
    env = os.environ if environ is None else environ
    spec = SERVICES.get(service)
    if spec is None or set(kwargs) - {"region_name", "endpoint_url"}:
        return None
    if any(env.get(flag, "").lower() == "true" for flag in _BOTOCORE_ONLY_FLAGS):
        return None
    region = kwargs.get("region_name") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    credentials = Credentials.from_env(env)
    if not region or credentials is None or region.startswith(("us-iso", "eu-iso")):
        return None
    endpoint = (
        kwargs.get("endpoint_url")
        or env.get(f"AWS_ENDPOINT_URL_{spec.env_suffix}")
        or env.get("AWS_ENDPOINT_URL")
        or None
    )
    return AwsJsonClient(service, region=region, credentials=credentials, endpoint_url=endpoint)
