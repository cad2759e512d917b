"""AWS clients for the Lambda code, straight from botocore.

`import boto3` costs about 0.13 s of cold start (its package pulls in s3transfer and the resource
layer) and the handlers use none of it: a botocore client is the same client. One session is
shared so each service model is loaded once per execution environment. botocore honours the same
environment as boto3 (`AWS_REGION`/`AWS_DEFAULT_REGION`, credentials, `AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from switchboard.contract import env as names

_session: Any = None
_lock = threading.Lock()


LIGHT_CLIENT_ENV = names.LIGHT_AWS_CLIENT


def client(service: str, **kwargs: Any) -> Any:
    """A client; keyword arguments as for `boto3.client` (region_name, config, endpoint_url).

    With `SWITCHBOARD_LIGHT_AWS_CLIENT=1` (set by CDK on every function), DynamoDB and Step Functions
    calls go through `switchboard.awsjson` when it covers the request: no botocore on the request
    path's cold start. Otherwise, and for every other service, a botocore client.
    """
    if os.environ.get(LIGHT_CLIENT_ENV) == "1":
        from switchboard.awsjson import light_client

        light = light_client(service, **kwargs)
        if light is not None:
            return light
    if _has_operations_that_are_not_idempotent(service) and "config" not in kwargs:
        # botocore retries every operation on 5xx and lost answers, and its retry policy cannot be
        # set per operation: such a service's clients do not retry at all (a retried
        # StartSyncExecution can run a second workflow). `switchboard.awsjson` retries those
        # operations only when the service certainly did not act.
        from botocore.config import Config

        kwargs["config"] = Config(retries={"mode": "standard", "total_max_attempts": 1})
    global _session
    with _lock:
        if _session is None:
            import botocore.session

            _session = botocore.session.get_session()
        session = _session
    return session.create_client(service, **kwargs)


def _has_operations_that_are_not_idempotent(service: str) -> bool:
    """Whether `switchboard.awsjson` declares an operation of ``service`` not idempotent."""
    from switchboard.awsjson import SERVICES

    spec = SERVICES.get(service)
    return bool(spec and spec.not_idempotent)
