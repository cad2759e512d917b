"""The after-response hand-off without any HTTP: invocations begun, writes queued, claims bounded."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from switchboard import after_response
from switchboard.accounting import ConcurrentWrites
from switchboard.after_response import AfterResponseExtension, DeferredWrites, ExtensionsApi, Handoff


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[AfterResponseExtension]:
    """An extension registered in name only: the test claims in its place."""
    extension = AfterResponseExtension(ExtensionsApi("127.0.0.1:9"))
    extension.active = True
    monkeypatch.setattr(after_response, "_extension", extension)
    yield extension


def test_a_finished_invocation_is_claimed_at_once_with_its_writes() -> None:
    handoff = Handoff()
    ran: list[str] = []
    handoff.begin("r1")
    assert handoff.add("r1", [lambda: ran.append("a"), lambda: ran.append("b")])
    handoff.finish("r1")
    writes = handoff.claim("r1", until=time.time() + 5)
    assert [w() for w in writes] == [None, None] and ran == ["a", "b"]
    assert handoff.claim("r1", until=time.time() + 0.05, begin_within_s=0.01) == []  # claimed once


def test_claim_waits_for_the_finish_from_another_thread() -> None:
    handoff = Handoff()
    handoff.begin("r1")
    handoff.add("r1", [lambda: None])
    threading.Timer(0.1, handoff.finish, args=("r1",)).start()
    started = time.monotonic()
    assert len(handoff.claim("r1", until=time.time() + 5)) == 1
    assert 0.05 < time.monotonic() - started < 2


def test_claim_gives_up_at_until_and_the_late_writes_go_with_the_next_claim() -> None:
    handoff = Handoff()
    handoff.begin("slow")
    handoff.add("slow", [lambda: None])
    started = time.monotonic()
    assert handoff.claim("slow", until=time.time() + 0.1) == []
    assert time.monotonic() - started < 1
    handoff.finish("slow")
    handoff.begin("next")
    handoff.finish("next")
    assert len(handoff.claim("next", until=time.time() + 5)) == 1  # late, not lost


def test_an_invocation_never_begun_is_not_waited_for_beyond_begin_within() -> None:
    handoff = Handoff()
    started = time.monotonic()
    assert handoff.claim("elsewhere", until=time.time() + 30, begin_within_s=0.1) == []
    assert time.monotonic() - started < 1


def test_writes_for_an_invocation_not_open_are_refused() -> None:
    handoff = Handoff()
    assert not handoff.add("r1", [lambda: None])
    handoff.begin("r1")
    handoff.finish("r1")
    assert not handoff.add("r1", [lambda: None])


def test_deferred_writes_run_inline_outside_a_deferring_invocation(
    registered: AfterResponseExtension,
) -> None:
    seen: list[Sequence[object]] = []
    runner = DeferredWrites(inline=lambda writes: seen.append(writes))
    write = [lambda: None]
    runner(write)  # no invocation
    with after_response.invocation("r1"):  # an invocation that does not defer (a stream)
        runner(write)
    assert len(seen) == 2
    with after_response.invocation("r2", defer=True):
        runner(write)
    assert len(seen) == 2
    assert len(registered.handoff.claim("r2", until=time.time() + 1)) == 1


def test_only_the_outermost_invocation_begins_and_finishes(registered: AfterResponseExtension) -> None:
    runner = DeferredWrites(inline=lambda writes: pytest.fail("ran inline"))
    with after_response.invocation("r1"):  # the HTTP entrypoint
        with after_response.invocation("r1", defer=True):  # the gateway handler inside it
            runner([lambda: None])
        # The handler returned; the response is still being written: not finished yet.
        assert registered.handoff.claim("r1", until=time.time() + 0.05) == []
    assert len(registered.handoff.claim("r1", until=time.time() + 1)) == 1


def test_an_invocation_block_that_raises_still_finishes(registered: AfterResponseExtension) -> None:
    with pytest.raises(RuntimeError), after_response.invocation("r1", defer=True):
        DeferredWrites()([lambda: None])
        raise RuntimeError("boom")
    assert len(registered.handoff.claim("r1", until=time.time() + 1)) == 1


def test_nothing_is_deferred_without_a_registered_extension_or_a_request_id(
    registered: AfterResponseExtension,
) -> None:
    ran: list[int] = []
    with after_response.invocation(None, defer=True):
        DeferredWrites()([lambda: ran.append(1)])
    assert ran == [1]
    registered.active = False  # the extension thread stopped
    with after_response.invocation("r1", defer=True):
        DeferredWrites()([lambda: ran.append(2)])
    assert ran == [1, 2]


def test_run_within_reports_a_write_still_running_at_the_timeout() -> None:
    gate = threading.Event()
    started = time.monotonic()

    def hangs() -> None:
        gate.wait(5)

    assert not ConcurrentWrites().run_within([lambda: None, hangs], 0.1)
    assert time.monotonic() - started < 1
    gate.set()
    assert ConcurrentWrites().run_within([lambda: None], 1)


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "inline"), ("", "inline"), ("extension", "extension"), (" Inline ", "inline")]
)
def test_mode_from_env(value: str | None, mode: str) -> None:
    environ = {} if value is None else {after_response.AFTER_RESPONSE: value}
    assert after_response.mode_from_env(environ) == mode


def test_an_unknown_mode_is_a_clear_error_and_start_stays_inline() -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_AFTER_RESPONSE='thread'"):
        after_response.mode_from_env({after_response.AFTER_RESPONSE: "thread"})
    environ = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", after_response.AFTER_RESPONSE: "thread"}
    assert after_response.start_from_env(environ) is None


def test_nothing_registers_outside_lambda_or_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(after_response, "_extension", None)

    def factory(_: str) -> AfterResponseExtension:
        raise AssertionError("must not register")

    assert (
        after_response.start_from_env({after_response.AFTER_RESPONSE: "extension"}, factory=factory) is None
    )
    inline = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", after_response.AFTER_RESPONSE: "inline"}
    assert after_response.start_from_env(inline, factory=factory) is None


def test_a_deferred_write_runs_in_the_context_it_was_queued_from(registered: AfterResponseExtension) -> None:
    """The request's log keys (context variables) follow its writes into the extension's thread."""
    key: contextvars.ContextVar[str] = contextvars.ContextVar("request_key", default="none")
    seen: list[str] = []
    token = key.set("request-1")
    with after_response.invocation("r1", defer=True):
        DeferredWrites()([lambda: seen.append(key.get()), lambda: seen.append(key.get())])
    key.reset(token)
    claimed = registered.handoff.claim("r1", until=time.time() + 1)
    assert ConcurrentWrites().run_within(claimed, 2)  # pool threads: another context each
    assert seen == ["request-1", "request-1"]


def test_the_after_deferred_hook_is_handed_over_once_per_invocation(
    registered: AfterResponseExtension,
) -> None:
    def hook() -> None:
        pass

    runner = DeferredWrites(after_deferred=hook)
    with after_response.invocation("r1", defer=True):
        runner([lambda: None])
        runner([lambda: None])
    claimed = registered.handoff.claim("r1", until=time.time() + 1)
    assert len(claimed) == 2 and claimed.then == [hook]
