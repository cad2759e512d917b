"""DynamoDB calls on a request's path (issue 15): whole and streamed, a tenant with limits and one without.

The local stack runs in this process as `make local` runs it (mock provider). Every DynamoDB call
the process makes is recorded (botocore's `_make_api_call` and the project's light JSON client,
`switchboard.awsjson`, which the stack's handlers use) with the table it named and whether it ran
inside `RequestAccounting.settle`, the after-answer writes (a context variable: the writes' pool
runs each write in a copy of the caller's context). Requests go through the front door with
urllib, one at a time, each window closed before the next request:

- **before the response**: calls that started before the client had the response (a whole
  answer) or the first byte of the stream (its status and headers leave with the first token);
- **after**: calls that started later: a stream's after-answer writes run after `data: [DONE]`
  was sent, before the connection closes.

Locally a whole request's after-answer writes run inline, before the response
(`SWITCHBOARD_AFTER_RESPONSE=inline`); in AWS the after-response extension runs them after it
(`switchboard.after_response`). Both are reported: `settle` counts the calls that in AWS leave
the path. Prints one JSON line.

    python bench/dynamo_calls.py --requests 20
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMITED_TENANT, LIMITED_KEY = "bench-limited", "sk-switchboard-bench-limited"
# Limits far above what the bench sends: every request is admitted, each takes from the window.
LIMITS = {"rpm": 1_000_000, "tpm": 1_000_000_000}
MESSAGES = [{"role": "user", "content": "ping"}]

_IN_SETTLE: contextvars.ContextVar[bool] = contextvars.ContextVar("in_settle", default=False)


@dataclass(frozen=True)
class Call:
    operation: str
    table: str
    started: float
    settle: bool


class DynamoRecorder:
    """Every DynamoDB call of this process, by both clients; `settle` marks the after-answer writes."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answered: list[float] = []
        """When the gateway handed the front door a response to send: a whole answer, or a
        stream's status and headers (they leave with its first token). Stamped in the server, as
        the client's own clock would see the response late when its thread is scheduled late."""
        self._lock = threading.Lock()

    def record(self, operation: str, params: dict[str, Any]) -> None:
        table = str(params.get("TableName") or ",".join(sorted(params.get("RequestItems") or {})) or "?")
        if not table or table == "?":
            items = params.get("TransactItems") or []
            names = {next(iter(item.values())).get("TableName", "?") for item in items if item}
            table = ",".join(sorted(names)) or "?"
        call = Call(operation, table, time.perf_counter(), _IN_SETTLE.get())
        with self._lock:
            self.calls.append(call)

    def between(self, start: float, end: float) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if start <= call.started < end]

    def answered_between(self, start: float, end: float) -> float:
        with self._lock:
            stamps = [stamp for stamp in self.answered if start <= stamp < end]
        if len(stamps) != 1:
            raise RuntimeError(f"expected one response between the stamps, saw {len(stamps)}")
        return stamps[0]

    @contextmanager
    def installed(self) -> Iterator[None]:
        import botocore.client

        from handlers import gateway
        from switchboard.accounting import RequestAccounting
        from switchboard.awsjson import AwsJsonClient

        recorder = self
        open_stream, handler = gateway.open_stream, gateway.handler

        def open_stream_stamped(event: Any) -> Any:
            answer = open_stream(event)
            if answer is not None:
                with recorder._lock:
                    recorder.answered.append(time.perf_counter())
            return answer

        def handler_stamped(event: Any, context: Any) -> Any:
            response = handler(event, context)
            with recorder._lock:
                recorder.answered.append(time.perf_counter())
            return response

        botocore_call = botocore.client.BaseClient._make_api_call
        light_call = AwsJsonClient._call
        settle = RequestAccounting.settle

        def botocore_recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name == "dynamodb":
                recorder.record(operation, params)
            return botocore_call(client, operation, params)

        def light_recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if client._service.signing_name == "dynamodb":
                recorder.record(operation, params)
            return light_call(client, operation, params)

        def settle_marked(accounting: Any, *args: Any, **kwargs: Any) -> Any:
            token = _IN_SETTLE.set(True)
            try:
                return settle(accounting, *args, **kwargs)
            finally:
                _IN_SETTLE.reset(token)

        patches: list[tuple[Any, str, Any]] = [
            (botocore.client.BaseClient, "_make_api_call", botocore_recorded),
            (AwsJsonClient, "_call", light_recorded),
            (RequestAccounting, "settle", settle_marked),
            (gateway, "open_stream", open_stream_stamped),
            (gateway, "handler", handler_stamped),
        ]
        originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        try:
            yield
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)


def one_request(url: str, key: str, *, stream: bool) -> tuple[float, float, int]:
    """(sent, end) perf_counter stamps and the HTTP status."""
    body = json.dumps({"model": "chat", "messages": MESSAGES, "stream": stream}).encode()
    request = urllib.request.Request(  # noqa: S310 - the local stack's front door
        f"{url}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    sent = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        data = response.read()
        status = response.status
    end = time.perf_counter()
    if stream and b"[DONE]" not in data:
        raise RuntimeError(f"a stream ended without [DONE]: {data[-200:]!r}")
    return sent, end, status


def short_table(table: str, names: dict[str, str]) -> str:
    return names.get(table, table)


def measure(
    url: str, key: str, *, stream: bool, requests: int, recorder: DynamoRecorder, names: dict[str, str]
) -> dict[str, Any]:
    """Per request: calls before/after the response, and of them on the usage table and in settle."""
    rows: list[dict[str, Any]] = []
    for _ in range(requests):
        sent, _end, status = one_request(url, key, stream=stream)
        if status != 200:
            raise RuntimeError(f"status {status}")
        time.sleep(0.05)  # anything the request still does lands in its own window
        closed = time.perf_counter()
        calls = recorder.between(sent, closed)
        first = recorder.answered_between(sent, closed)
        before = [c for c in calls if c.started < first]
        after = [c for c in calls if c.started >= first]
        rows.append(
            {
                "before": len(before),
                "after": len(after),
                "usage_before_outside_settle": sum(
                    1 for c in before if names.get(c.table) == "usage" and not c.settle
                ),
                "settle_before": sum(1 for c in before if c.settle),
                "settle_after": sum(1 for c in after if c.settle),
                "calls": [
                    f"{'before' if c.started < first else 'after'}:{short_table(c.table, names)}."
                    f"{c.operation}{' (settle)' if c.settle else ''}"
                    for c in calls
                ],
            }
        )
    typical = Counter(tuple(row["calls"]) for row in rows).most_common(1)[0][0]
    every = Counter(label for row in rows for label in row["calls"])
    summary: dict[str, Any] = {
        "requests": requests,
        "typical_calls": list(typical),
        "calls_per_request": {label: round(count / requests, 2) for label, count in every.most_common()},
    }
    for field in ("before", "after", "usage_before_outside_settle", "settle_before", "settle_after"):
        values = [row[field] for row in rows]
        summary[f"{field}_median"] = statistics.median(values)
        summary[f"{field}_max"] = max(values)
    # In AWS: a whole request's settle writes run after the response (the extension); a stream's
    # already run after [DONE]. What stays before the response there:
    summary["on_path_in_aws_median"] = statistics.median(row["before"] - row["settle_before"] for row in rows)
    summary["usage_on_path_in_aws_median"] = statistics.median(
        row["usage_before_outside_settle"] for row in rows
    )
    summary["usage_on_path_in_aws_max"] = max(row["usage_before_outside_settle"] for row in rows)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    import boto3

    import switchboard_local.cli.target as target
    import switchboard_local.front_door as front_door
    from switchboard.contract import env as env_names
    from switchboard.keys import ApiKeyStore
    from switchboard.quotas.dynamo import DynamoUsageCounters
    from switchboard.quotas.model import TenantLimits
    from switchboard.quotas.service import QuotaSettingsStore
    from switchboard_local.emulation import DEV_KEY, FLAGS_FILE
    from switchboard_local.stack import LocalStack

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-dynamo-"))
    flags = workdir / "flags.json"
    shutil.copy(FLAGS_FILE, flags)
    target.LOCAL_STATE_FILE = workdir / "local.json"
    unthrottled = {"rateLimit": 10_000.0, "burstLimit": 10_000.0}  # as bench/stream_switchboard.py
    front_door.usage_plan_throttles = lambda: {tier: unthrottled for tier in ("standard", "premium")}  # type: ignore[assignment]
    recorder = DynamoRecorder()
    results: dict[str, Any] = {}
    stack = LocalStack(
        port=0, agent_port=0, flags_file=flags, poll_interval_s=1.0, adapter_bake_seconds=None
    )  # no start-up adapter rollout (bench/stream_switchboard.py)
    stack.start()
    os.environ.pop(env_names.OPTIONS_CACHE_TTL_S, None)  # as deployed (10 s), not the local 1 s
    os.environ.pop(env_names.OPTIONS_CACHE_STALE_S, None)  # and its stale-while-revalidate window
    try:
        resources = stack.resources
        assert resources is not None
        client: Callable[[str], Any] = lambda service: boto3.client(  # noqa: E731
            service, region_name="us-east-1", endpoint_url=stack.aws_url
        )
        ApiKeyStore(resources.keys_table, client=client("dynamodb")).create(
            LIMITED_TENANT, "standard", key=LIMITED_KEY
        )
        counters = DynamoUsageCounters(resources.usage_table, client=client("dynamodb"))
        QuotaSettingsStore(counters).set_limits(LIMITED_TENANT, TenantLimits(**LIMITS), actor="bench")
        names = {
            resources.usage_table: "usage",
            resources.circuit_table: "circuits",
            resources.cache_table: "answer_cache",
            resources.options_table: "options",
            resources.keys_table: "keys",
        }
        with recorder.installed():
            for tenant, key in (("no_limits", DEV_KEY), ("limits", LIMITED_KEY)):
                for stream in (False, True):
                    for _ in range(5):  # warm: caches, connections, the tenant's settings read
                        one_request(stack.url, key, stream=stream)
                    kind = "stream" if stream else "whole"
                    results[f"{tenant}_{kind}"] = measure(
                        stack.url, key, stream=stream, requests=args.requests, recorder=recorder, names=names
                    )
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"limits": LIMITS, "rows": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
