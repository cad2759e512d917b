"""One cold start: import a Lambda handler module, then serve its first request (fresh interpreter).

    python bench/cold_child.py gateway '<event json>'
    python bench/cold_child.py seed_options            # import only

The environment (set by bench/run.py) points the handler at emulated AWS (moto's server and the
AppConfig agent emulator, in the parent process), as Lambda's environment points it at AWS. Only
the standard library is imported before the clock starts, so nothing is pre-loaded for the handler.

The first request is split three ways, measured by wrapping (after the import, so the import is
untouched): building AWS clients (`switchboard.aws.client`: botocore's import and service models),
waiting on AWS (HTTP responses from the emulated services and the AppConfig agent, and the whole
workflow run for the gateway, which in AWS is Step Functions running the step Lambdas), and the
rest, which is our own code.

Prints one JSON line: import_s, own_modules and own_source_bytes (the project modules the import
loaded, which a cold start compiles from source), first_request_s, clients_s, aws_wait_s, own_s,
total_s, maxrss_mib, ok, status.

`gateway_http` (the gateway function's entrypoint under Lambda Web Adapter, which serves streams)
is started as its `main()` starts it: the server listens and the gateway module is imported on the
warm-up thread; the first request is a streamed chat request sent at once, as LWA forwards it
(the API Gateway request context and the Lambda context in LWA's headers), read to its end over a
plain socket (not `http.client`, which the AWS-wait stopwatch wraps). `wiring_s` is when the
warm-up thread had the stream seam (`handlers.gateway_wiring`) imported, counted from the server's
start (the whole-request resolver loads after the stream, when the server is idle). The adapter's
own start (an extension process, its readiness poll) is not in the figure. The clock stops when the
response has been read to its end (the server closed the connection), before the test server is
shut down: `socketserver`'s `shutdown()` waits for `serve_forever`'s next poll (every 0.5 s), which
added up to 0.5 s of waiting to the figure (the first request of a quiet server always waited
nearly all of it); a Lambda never shuts its server down.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Context:
    """The attributes Powertools reads from Lambda's context object."""

    function_name = "switchboard-cold"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:switchboard-cold"
    aws_request_id = "cold-start-0001"
    function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class Stopwatch:
    """Wall time spent inside wrapped callables; nested calls are counted once, by the outermost."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.total = 0.0
        self._depth = 0
        self._clock = clock

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = self._clock()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.total += self._clock() - started

        return timed


def peak_rss_mib() -> float:
    """VmHWM: this process's peak RSS since exec (ru_maxrss would carry the forking parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def instrument(clients: Stopwatch, waiting: Stopwatch) -> None:
    """Wrap client construction, HTTP responses and the workflow runners.

    Runs on the first request's clock: the modules it imports would be imported by that request.
    """
    import http.client

    import switchboard.aws as aws
    import switchboard.workflow as workflow

    aws.client = clients.wrap(aws.client)
    connection = http.client.HTTPConnection
    connection.getresponse = waiting.wrap(connection.getresponse)  # type: ignore[method-assign]
    for runner in (workflow.SyncExpressRunner, workflow.PollingRunner):
        runner.run = waiting.wrap(runner.run)  # type: ignore[method-assign]


def read_http(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the raw body (chunk framing left in) of a `Connection: close` response."""
    raw = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def first_stream(module: Any, event: dict[str, Any]) -> tuple[int, bytes, float, float]:
    """Start the LWA entrypoint's server as its `main()` does, then send it `event` as LWA would.

    Returns the status, the streamed body, when the warm-up thread finished wiring the gateway
    (seconds after the server started) and when the response had been read to its end
    (`perf_counter`, taken before the server's shutdown, which waits for its poll interval).
    """
    started = time.perf_counter()
    wired: list[float] = []

    def wiring() -> Any:
        built = module.default_wiring()
        wired.append(time.perf_counter() - started)
        return built

    server = module.GatewayServer(("127.0.0.1", 0), wiring)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.warm()
    lambda_context = {
        "request_id": Context.aws_request_id,
        "deadline": int(time.time() * 1000) + Context().get_remaining_time_in_millis(),
        "invoked_function_arn": Context.invoked_function_arn,
        "env_config": {"function_name": Context.function_name, "memory": Context.memory_limit_in_mb},
    }
    body = str(event["body"]).encode()
    headers = {
        **(event.get("headers") or {}),
        "Host": "localhost",
        "Content-Length": str(len(body)),
        "Connection": "close",
        module.REQUEST_CONTEXT_HEADER: json.dumps(event["requestContext"]),
        module.LAMBDA_CONTEXT_HEADER: json.dumps(lambda_context),
    }
    head = f"{event['httpMethod']} {event['path']} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(server.server_address, timeout=60) as sock:
        sock.sendall(head.encode() + body)
        status, streamed = read_http(sock)
    answered = time.perf_counter()
    server.shutdown()  # not on the clock: up to `serve_forever`'s 0.5 s poll interval
    return status, streamed, wired[0] if wired else float("nan"), answered


def main() -> int:
    name = sys.argv[1]
    event = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
    started = time.perf_counter()
    module = __import__(f"handlers.{name}", fromlist=["handler"])
    imported = time.perf_counter()
    # The project's own modules the import loaded (before any request): the import closure the
    # cold start compiles from source, e.g. the gateway's routing is decision + schema only.
    own = sorted(m for m in sys.modules if m.split(".")[0] in ("handlers", "switchboard"))
    files = [getattr(sys.modules[m], "__file__", None) for m in own]
    source_bytes = sum(os.path.getsize(f) for f in files if f)
    report: dict[str, Any] = {
        "import_s": imported - started,
        "own_modules": own,
        "own_source_bytes": source_bytes,
    }
    if event is not None:
        clients, waiting = Stopwatch(), Stopwatch()
        began = time.perf_counter()
        instrument(clients, waiting)
        if name == "gateway_http":
            status, streamed, wiring_s, answered = first_stream(module, event)
            # A whole stream: `[DONE]` and no error event (the body keeps its chunk framing).
            ok = status == 200 and b"data: [DONE]" in streamed and b'data: {"error"' not in streamed
            result: Any = {"statusCode": status}
            report["wiring_s"] = wiring_s
        else:
            result = module.handler(event, Context())
            answered = time.perf_counter()
            ok = not (isinstance(result, dict) and int(result.get("statusCode", 200)) >= 400)
        first = answered - began
        report.update(
            {
                "first_request_s": first,
                "clients_s": clients.total,
                "aws_wait_s": waiting.total,
                "own_s": max(first - clients.total - waiting.total, 0.0),
                "total_s": imported - started + first,
                "ok": ok,
                "status": result.get("statusCode") if isinstance(result, dict) else None,
            }
        )
    report["maxrss_mib"] = peak_rss_mib()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
