"""The after-response extension against a fake Runtime + Extensions API with Lambda's ordering.

The fake (tests/fakes/lambda_runtime_api.py) ends an invocation only when the runtime and every
registered extension have called ``next``; the runtime loop here posts the handler's response and
then calls ``next``, as the managed Python runtime does. What is shown: the response goes out while
a deferred write is still running; the extension's ``next`` (the end of the invocation) comes only
after the write finished; a handler that raises still releases it; a write that hangs is cut off at
the deadline margin; a failed registration leaves the writes inline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from switchboard import after_response
from switchboard.after_response import AfterResponseExtension, DeferredWrites, ExtensionsApi
from tests.fakes.lambda_runtime_api import FakeLambdaApi, run_python_runtime

WAIT_S = 5.0


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    after_response._forget_extension()
    yield
    after_response._forget_extension()


@pytest.fixture
def lambda_api() -> Iterator[FakeLambdaApi]:
    api = FakeLambdaApi().start()
    yield api
    api.stop()


def _start(
    api: FakeLambdaApi, *, margin_s: float = 0.5, begin_within_s: float = 0.5
) -> AfterResponseExtension:
    extension = after_response.start_from_env(
        {"AWS_LAMBDA_RUNTIME_API": api.runtime_api, "SWITCHBOARD_AFTER_RESPONSE": "extension"},
        factory=lambda host: AfterResponseExtension(
            ExtensionsApi(host), margin_s=margin_s, begin_within_s=begin_within_s
        ),
    )
    assert extension is not None
    return extension


class Recorder:
    """Writes that note when they start and finish; ``gate`` holds them until the test opens it."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started: list[float] = []
        self.finished: list[float] = []

    def write(self) -> None:
        self.started.append(time.monotonic())
        if not self.gate.wait(WAIT_S):
            return  # the test never opened it: a "hanging" write
        self.finished.append(time.monotonic())


def _gateway_like_handler(runner: DeferredWrites, writes: list[Any], *, fail: bool = False) -> Any:
    """What handlers.gateway.handler does around the service: a deferring invocation block."""

    def handler(event: Any, context: Any) -> Any:
        with after_response.invocation(context.aws_request_id, defer=True):
            runner(writes)
            if fail:
                raise RuntimeError("the request failed after settling")
            return {"statusCode": 200, "body": event["body"]}

    return handler


def test_registration_is_internal_invoke_only_and_named(lambda_api: FakeLambdaApi) -> None:
    _start(lambda_api)
    (registered,) = lambda_api.extensions.values()
    assert registered.events == ["INVOKE"]  # an internal extension may not ask for SHUTDOWN
    assert registered.name == after_response.EXTENSION_NAME


def test_the_response_goes_out_before_the_deferred_write_ends_and_next_waits_for_it(
    lambda_api: FakeLambdaApi,
) -> None:
    _start(lambda_api)
    recorder = Recorder()
    run_python_runtime(lambda_api, _gateway_like_handler(DeferredWrites(), [recorder.write]), invocations=1)
    invocation = lambda_api.invoke({"body": "hi"})

    # The write is held: inline, the response could not be posted until it finished.
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and not any(w == "runtime-response" for _, w, _ in lambda_api.log):
        time.sleep(0.01)
    posted = lambda_api.when("runtime-response", invocation.request_id)
    assert recorder.finished == []
    assert not invocation.ended.is_set()  # the extension holds the invocation open

    recorder.gate.set()
    assert invocation.ended.wait(WAIT_S)
    assert invocation.response == {"statusCode": 200, "body": "hi"}
    assert posted < recorder.finished[0] <= lambda_api.when("invocation-ended", invocation.request_id)
    extension_next = [at for at, what, rid in lambda_api.log if what == "extension-next" and rid]
    assert extension_next and extension_next[0] >= recorder.finished[0]


def test_without_the_extension_the_same_handler_writes_before_the_response(lambda_api: FakeLambdaApi) -> None:
    """The control: nothing registered, the write runs inline and the response waits for it."""
    recorder = Recorder()
    recorder.gate.set()
    run_python_runtime(lambda_api, _gateway_like_handler(DeferredWrites(), [recorder.write]), invocations=1)
    invocation = lambda_api.invoke({"body": "hi"})
    assert invocation.ended.wait(WAIT_S)
    assert recorder.finished[0] < lambda_api.when("runtime-response", invocation.request_id)


def test_a_handler_that_raises_still_releases_the_extension_and_its_writes_run(
    lambda_api: FakeLambdaApi,
) -> None:
    _start(lambda_api, begin_within_s=3.0)
    recorder = Recorder()
    recorder.gate.set()
    handler = _gateway_like_handler(DeferredWrites(), [recorder.write], fail=True)
    run_python_runtime(lambda_api, handler, invocations=1)
    started = time.monotonic()
    invocation = lambda_api.invoke({"body": "hi"}, timeout_s=10)
    assert invocation.ended.wait(WAIT_S)
    assert invocation.error["errorType"] == "RuntimeError"
    assert len(recorder.finished) == 1
    assert time.monotonic() - started < 2.5  # released by the handler, not after begin_within_s


def test_a_write_that_hangs_is_cut_off_at_the_deadline_margin(lambda_api: FakeLambdaApi) -> None:
    _start(lambda_api, margin_s=0.5)
    recorder = Recorder()  # never opened: the write hangs
    run_python_runtime(lambda_api, _gateway_like_handler(DeferredWrites(), [recorder.write]), invocations=1)
    invoked = time.monotonic()
    invocation = lambda_api.invoke({"body": "hi"}, timeout_s=1.5)
    assert invocation.ended.wait(WAIT_S)
    ended = lambda_api.when("invocation-ended", invocation.request_id)
    assert recorder.started and not recorder.finished
    # Released at the 1.5 s deadline minus the 0.5 s margin: not before, and before the deadline.
    assert 0.95 < ended - invoked < 1.45
    recorder.gate.set()


def test_an_invocation_nobody_here_serves_is_released_promptly(lambda_api: FakeLambdaApi) -> None:
    """E.g. a request the HTTP entrypoint never saw: Next after begin_within_s, not at the deadline."""
    _start(lambda_api, begin_within_s=0.3)
    run_python_runtime(lambda_api, lambda event, context: {"ok": True}, invocations=1)
    invocation = lambda_api.invoke({"body": "hi"}, timeout_s=30)
    assert invocation.ended.wait(WAIT_S)
    ended = lambda_api.when("invocation-ended", invocation.request_id)
    assert ended - lambda_api.when("runtime-response", invocation.request_id) < 5  # not ~30 s


def test_consecutive_invocations_each_run_their_own_writes(lambda_api: FakeLambdaApi) -> None:
    _start(lambda_api)
    done: list[str] = []

    def handler(event: Any, context: Any) -> Any:
        with after_response.invocation(context.aws_request_id, defer=True):
            DeferredWrites()([lambda: done.append(event["body"])])
        return {"ok": True}

    run_python_runtime(lambda_api, handler, invocations=3)
    invocations = [lambda_api.invoke({"body": str(n)}) for n in range(3)]
    for invocation in invocations:
        assert invocation.ended.wait(WAIT_S)
    assert done == ["0", "1", "2"]


def test_a_failed_registration_leaves_the_writes_inline_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeLambdaApi(register_status=500).start()
    try:
        environ = {"AWS_LAMBDA_RUNTIME_API": api.runtime_api, "SWITCHBOARD_AFTER_RESPONSE": "extension"}
        with caplog.at_level(logging.ERROR, logger="switchboard.after_response"):
            assert after_response.start_from_env(environ) is None
        assert [r.message for r in caplog.records if "registering" in r.message] != []
        assert after_response.active_extension() is None
        ran: list[int] = []
        with after_response.invocation("r-1", defer=True):
            DeferredWrites()([lambda: ran.append(1)])
            assert ran == [1]  # inline, before the block (the response) ends
    finally:
        api.stop()


def test_registering_after_the_runtime_asked_for_work_is_refused_and_falls_back(
    lambda_api: FakeLambdaApi,
) -> None:
    """Why registration happens at init: after the runtime's first next, the API refuses it."""
    run_python_runtime(lambda_api, lambda event, context: {}, invocations=0)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and not any(w == "runtime-next" for _, w, _ in lambda_api.log):
        time.sleep(0.01)
    environ = {"AWS_LAMBDA_RUNTIME_API": lambda_api.runtime_api, "SWITCHBOARD_AFTER_RESPONSE": "extension"}
    assert after_response.start_from_env(environ) is None


@pytest.mark.parametrize(
    ("handler_name", "registers"),
    [("handlers.gateway.handler", True), ("handlers/gateway_http.sh", False)],
    ids=["python-runtime-handler", "under-lwa"],
)
def test_the_gateway_module_registers_at_import_only_as_the_runtimes_handler(
    lambda_api: FakeLambdaApi, handler_name: str, registers: bool
) -> None:
    """Under the Python runtime the handler module's import is init; under LWA the HTTP
    entrypoint has registered before it listens (the gateway module is imported later)."""
    from tests.fresh_python import run_fresh

    environ = {
        "_HANDLER": handler_name,
        "AWS_LAMBDA_RUNTIME_API": lambda_api.runtime_api,
        "SWITCHBOARD_AFTER_RESPONSE": "extension",
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
    }
    result = run_fresh(f"import os; os.environ.update({environ!r}); import handlers.gateway")
    assert result.returncode == 0, result.stderr
    assert bool(lambda_api.extensions) == registers


def test_the_http_entrypoint_registers_before_it_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import gateway_http

    order: list[str] = []

    class Server:
        def __init__(self, *args: Any) -> None:
            order.append("listen")

        def warm(self) -> None:
            pass

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr(gateway_http, "GatewayServer", Server)
    monkeypatch.setattr(after_response, "start_from_env", lambda: order.append("register"))
    gateway_http.main()
    assert order == ["register", "listen"]


def test_the_after_deferred_hook_runs_after_the_writes_and_before_next(lambda_api: FakeLambdaApi) -> None:
    """The gateway publishes the metrics its deferred writes emitted (its handler flushed before)."""
    _start(lambda_api)
    order: list[tuple[str, float]] = []
    runner = DeferredWrites(after_deferred=lambda: order.append(("hook", time.monotonic())))

    def handler(event: Any, context: Any) -> Any:
        with after_response.invocation(context.aws_request_id, defer=True):
            runner([lambda: order.append(("write", time.monotonic()))])
        return {"ok": True}

    run_python_runtime(lambda_api, handler, invocations=1)
    invocation = lambda_api.invoke({"body": "hi"})
    assert invocation.ended.wait(WAIT_S)
    assert [name for name, _ in order] == ["write", "hook"]
    assert order[-1][1] <= lambda_api.when("invocation-ended", invocation.request_id)
