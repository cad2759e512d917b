"""The benchmark's own measuring parts: the first-request split and the staged-asset guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cold_child, run
from tests.fakes import ManualClock


def test_stopwatch_counts_nested_calls_once() -> None:
    clock = ManualClock(100.0)
    watch = cold_child.Stopwatch(clock)

    @watch.wrap
    def inner() -> None:
        clock.sleep(0.02)

    @watch.wrap
    def outer() -> None:
        inner()
        clock.sleep(0.02)

    outer()
    inner()
    # 0.06 s of wrapped time; counting the nested call twice would give 0.08 s.
    assert watch.total == pytest.approx(0.06)


def test_a_call_that_raises_is_counted_and_does_not_hide_later_calls() -> None:
    clock = ManualClock(100.0)
    watch = cold_child.Stopwatch(clock)

    @watch.wrap
    def failing() -> None:
        clock.sleep(0.01)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert watch.total == pytest.approx(0.01)
    # Had the raise left the nesting depth at 1, this call would count as nested and be lost.
    watch.wrap(clock.sleep)(0.01)
    assert watch.total == pytest.approx(0.02)


def _fake_checkout(root: Path, source: str) -> Path:
    lambdas = root / "lambdas" / "handlers"
    lambdas.mkdir(parents=True)
    (lambdas / "gateway.py").write_text(source)
    asset = root / "cdk.out" / "asset.abc" / "handlers"
    asset.mkdir(parents=True)
    (asset / "gateway.py").write_text("handler = 1\n")
    (asset / "__pycache__").mkdir()
    (asset / "__pycache__" / "gateway.cpython-313.pyc").write_bytes(b"the asset's bytecode")
    return root


def test_staged_package_is_the_asset_as_shipped_bytecode_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra import constants

    root = _fake_checkout(tmp_path / "repo", "handler = 1\n")
    monkeypatch.setattr(run, "ROOT", root)
    monkeypatch.setattr(constants, "LAMBDA_ASSET_DIR", root / "lambdas")
    package = run.staged_lambda_package(tmp_path / "work")
    assert (package / "handlers" / "gateway.py").read_text() == "handler = 1\n"
    # What the zip ships, Lambda imports: the asset's bytecode (infra.lambda_asset) comes along.
    pyc = package / "handlers" / "__pycache__" / "gateway.cpython-313.pyc"
    assert pyc.read_bytes() == b"the asset's bytecode"


def test_a_stale_cdk_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from infra import constants

    root = _fake_checkout(tmp_path / "repo", "handler = 2  # edited after the last synth\n")
    monkeypatch.setattr(run, "ROOT", root)
    monkeypatch.setattr(constants, "LAMBDA_ASSET_DIR", root / "lambdas")
    with pytest.raises(RuntimeError, match=r"cdk\.out is older than lambdas/handlers/gateway\.py"):
        run.staged_lambda_package(tmp_path / "work")


def test_routing_times_prepare_through_the_agent_emulator_and_plan_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a tiny benchmark (the real code path: RoutingFlags -> agent emulator over loopback HTTP)
    monkeypatch.setattr(run, "RUNS", 2)
    monkeypatch.setattr(run, "ROUTING_CALLS", 30)
    # When the routing section runs (it asserts the emulator answered and the chain is not empty)
    result = run.routing_overhead()
    # Then both figures come back per run, and the round trip costs more than the pure plan
    assert len(result["runs"]) == len(result["plan_runs"]) == 2
    for figures in (*result["runs"], *result["plan_runs"]):
        assert 0 < figures["p50_us"] <= figures["p99_us"]
    assert run.median_of(result["runs"], "p50_us") > run.median_of(result["plan_runs"], "p50_us")


# --- streams: the judge of answered / clean error / lost, and the streaming server -----------------


def _sse(*events: str) -> list[str]:
    """SSE body lines as a client's `iter_lines` yields them (blank separators included)."""
    lines: list[str] = []
    for event in events:
        lines.extend([f"data: {event}", ""])
    return lines


def _chunk(content: str | None = None, finish: str | None = None) -> str:
    import json

    delta = {} if content is None else {"content": content}
    return json.dumps(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


COMPLETE = frozenset({"[primary] a b", "[fallback] a b"})


def test_percentile_is_nearest_rank_on_the_sorted_values() -> None:
    from bench.streams import percentile

    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 50) == 51.0  # index round(0.5 * 99) = 50 (banker's rounding: 49.5 -> 50)
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0 and percentile(values, 0) == 1.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) != percentile([], 50)  # NaN: no samples is not a figure


def test_a_stream_ending_with_done_and_a_whole_answer_is_answered() -> None:
    from bench.streams import classify, read_sse

    seen = read_sse(
        [
            ": keep-alive",
            *_sse(_chunk("[primary] "), _chunk("a "), _chunk("b"), _chunk(finish="stop"), "[DONE]"),
        ]
    )
    assert (seen.done, seen.error, seen.text) == (True, False, "[primary] a b")
    assert classify(seen, COMPLETE) == "answered"


def test_an_error_event_after_content_is_a_clean_error_and_ends_the_read() -> None:
    from bench.streams import classify, read_sse

    error = '{"error": {"message": "the stream failed after it started", "code": "upstream_failed"}}'
    seen = read_sse(_sse(_chunk("[primary] "), error, _chunk("never read"), "[DONE]"))
    assert (seen.done, seen.error, seen.text) == (False, True, "[primary] ")
    assert classify(seen, COMPLETE) == "clean_error"


def test_a_stream_cut_without_done_or_error_event_is_lost() -> None:
    from bench.streams import classify, read_sse

    seen = read_sse(_sse(_chunk("[primary] "), _chunk("a ")))
    assert (seen.done, seen.error) == (False, False)
    assert classify(seen, COMPLETE) == "lost"


def test_a_clean_end_with_a_truncated_answer_is_lost_not_answered() -> None:
    # LiteLLM's Router ends its iterator normally on a cut upstream stream: "done", but a lie.
    from bench.streams import StreamObservation, classify

    assert classify(StreamObservation(done=True, error=False, text="[primary] a "), COMPLETE) == "lost"
    assert classify(StreamObservation(done=True, error=False, text="[fallback] a b"), COMPLETE) == "answered"
    assert classify(StreamObservation(done=False, error=True, text=""), COMPLETE) == "clean_error"


def test_overhead_is_taken_per_pair_then_ranked() -> None:
    from bench.streams import overhead_run

    direct = [20.0, 40.0, 20.0]  # a slow moment hit the second pair on both sides
    through = [25.0, 46.0, 27.0]
    run_figures = overhead_run(through, direct)
    assert run_figures["overhead_p50_ms"] == pytest.approx(6.0)  # pairs added 5, 6, 7
    assert run_figures["overhead_p99_ms"] == pytest.approx(7.0)
    with pytest.raises(ValueError, match="as many direct requests"):
        overhead_run([1.0], [])


def test_stream_chaos_summary_counts_each_phase_and_the_total() -> None:
    from bench.streams import summarize_stream_chaos

    answered = {"done": True, "error": False, "text": "[fallback] a b"}
    told = {"done": False, "error": True, "text": "[primary] "}
    lost = {"done": True, "error": False, "text": "[primary] "}
    result = {
        "phases": [
            {"name": "before_first_token", "observations": [answered, answered], "primary_calls": 2},
            {"name": "mid_stream", "observations": [told, lost, answered], "primary_calls": 2},
        ]
    }
    summary = summarize_stream_chaos(result, COMPLETE)
    assert (summary["answered"], summary["clean_error"], summary["lost"], summary["total"]) == (3, 1, 1, 5)
    mid = summary["phases"][1]
    assert (mid["name"], mid["requests"], mid["answered"], mid["clean_error"], mid["lost"]) == (
        "mid_stream",
        3,
        1,
        1,
        1,
    )


def _serve_fault_server(state: object) -> tuple[object, str]:
    import threading
    from http.server import ThreadingHTTPServer

    from bench import fault_server

    server = ThreadingHTTPServer(("127.0.0.1", 0), fault_server.make_handler(state))  # type: ignore[arg-type]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _stream_from(url: str) -> tuple[int, list[str]]:
    import json
    import urllib.error
    import urllib.request

    body = json.dumps({"model": "m", "stream": True, "messages": []}).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode().splitlines()
    except urllib.error.HTTPError as exc:
        return exc.code, []


def test_the_streaming_server_streams_whole_then_cuts_or_refuses_as_controlled() -> None:
    from bench import fault_server
    from bench.streams import classify, read_sse

    state = fault_server.State("primary", chunks=4)
    server, url = _serve_fault_server(state)
    whole = {fault_server.stream_text("primary", 4)}
    try:
        status, lines = _stream_from(url)
        assert status == 200 and classify(read_sse(lines), whole) == "answered"
        assert "".join(fault_server.stream_words("primary", 4)) == fault_server.stream_text("primary", 4)

        state.control({"error_rate": 1.0, "stream_fault": "mid_stream", "fail_after_chunks": 2})
        status, lines = _stream_from(url)
        seen = read_sse(lines)
        assert status == 200 and seen.text == "[primary] word1 " and classify(seen, whole) == "lost"

        state.control({"stream_fault": "before_first_token"})
        assert _stream_from(url) == (503, [])
        with pytest.raises(ValueError, match="stream_fault"):
            state.control({"stream_fault": "sometimes"})
    finally:
        server.shutdown()  # type: ignore[attr-defined]


def _stream_results(ours_p99: float, anchor_p99: float, ours_lost: int) -> dict[str, object]:
    def chaos(lost: int) -> dict[str, object]:
        phase = {"name": "mid_stream", "requests": 30, "answered": 25 - lost, "clean_error": 5, "lost": lost}
        return {"answered": 25 - lost, "clean_error": 5, "lost": lost, "total": 30, "phases": [phase]}

    return {
        "switchboard_ttft": {"overhead_p50_ms": 5.0, "overhead_p99_ms": ours_p99},
        "litellm_ttft": {"overhead_p50_ms": 3.0, "overhead_p99_ms": anchor_p99},
        "switchboard_chaos": chaos(ours_lost),
        "litellm_best_chaos": chaos(25),
        "litellm_default_chaos": chaos(25),
    }


@pytest.mark.parametrize(
    ("ours_p99", "anchor_p99", "ours_lost", "expected"),
    [
        (20.0, 30.0, 0, [True, True]),
        (20.0, 15.0, 0, [False, True]),  # within 25 ms but not below LiteLLM's
        (26.0, 40.0, 0, [False, True]),  # below LiteLLM's but over 25 ms
        (20.0, 30.0, 1, [True, False]),  # one lost stream fails the run
    ],
)
def test_stream_budgets(ours_p99: float, anchor_p99: float, ours_lost: int, expected: list[bool]) -> None:
    rows, checks = run.stream_rows(_stream_results(ours_p99, anchor_p99, ours_lost))
    assert checks == expected
    verdicts = [row[-1] for row in rows if row[-1]]
    assert verdicts == ["PASS" if ok else "FAIL" for ok in expected]


def _dynamo_row(on_path: float) -> dict[str, float]:
    return {
        "usage_on_path_in_aws_median": on_path,
        "usage_on_path_in_aws_max": 2,
        "before_median": 3,
        "settle_before_median": 2,
        "after_median": 0,
    }


def test_dynamo_budget_is_one_usage_table_call_on_the_path() -> None:
    rows = {
        key: _dynamo_row(1 if "limits_" in key and not key.startswith("no_") else 0)
        for key in run.DYNAMO_ROW_NAMES
    }
    table, checks = run.dynamo_rows({"rows": rows})
    assert checks == [True] * 4 and [row[-1] for row in table] == ["PASS"] * 4
    rows["limits_whole"] = _dynamo_row(2)
    _, checks = run.dynamo_rows({"rows": rows})
    assert checks == [True, True, False, True]


class _FakePairs:
    """A side of the TTFT comparison: answers blocks of pairs, records when it was asked."""

    def __init__(self, name: str, asked: list[tuple[str, int]], overhead_ms: float) -> None:
        self.name = name
        self._asked = asked
        self._overhead_ms = overhead_ms

    def pairs(self, count: int) -> dict[str, object]:
        self._asked.append((self.name, count))
        start = len(self._asked)
        direct = [20.0 + i for i in range(count)]
        return {
            "direct_ms": direct,
            "through_ms": [d + self._overhead_ms + start for d in direct],
            "open_stream_ms": direct,
            "authorizer_calls": 0,
        }


def test_ttft_pairs_interleave_in_blocks_the_same_count_for_both_sides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run, "RUNS", 2)
    monkeypatch.setattr(run, "STREAM_REQUESTS", 25)
    monkeypatch.setattr(run, "STREAM_BLOCK", 10)
    asked: list[tuple[str, int]] = []
    ours, anchor = _FakePairs("ours", asked, 1.0), _FakePairs("anchor", asked, 2.0)
    ours_runs, anchor_runs = run.interleaved_ttft(ours, anchor)  # type: ignore[arg-type]
    # Blocks of 10, 10, 5 per run; the side that goes first alternates block to block and run to run.
    assert [name for name, _ in asked[:6]] == ["ours", "anchor", "anchor", "ours", "ours", "anchor"]
    assert [name for name, _ in asked[6:8]] == ["anchor", "ours"]
    assert [count for _, count in asked[:6]] == [10, 10, 10, 10, 5, 5]
    assert (
        [len(r["through_ms"]) for r in ours_runs] == [len(r["through_ms"]) for r in anchor_runs] == [25, 25]
    )
    summary = run.ttft_summary(anchor_runs)
    assert summary["pairs"] == 50
    assert len(summary["run_overhead_p99_ms"]) == 2
    assert summary["pooled_overhead_p99_ms"] >= summary["pooled_overhead_p50_ms"]


def test_the_first_stream_clock_stops_before_the_test_server_shuts_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`socketserver`'s shutdown waits for its 0.5 s poll: no part of a cold start (the clock stops
    once the response has been read)."""
    import time
    from collections.abc import Iterator
    from dataclasses import dataclass, field

    from handlers import gateway_http

    @dataclass
    class Answer:
        status: int = 200
        headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
        chunks: Iterator[bytes] = field(default_factory=lambda: iter([b"data: [DONE]\n\n"]))

    wiring = gateway_http.Wiring(
        gateway_handler=lambda event, context: {}, open_stream=lambda event: Answer()
    )
    monkeypatch.setattr(gateway_http, "default_wiring", lambda: wiring)
    shutdowns: list[float] = []
    original = gateway_http.GatewayServer.shutdown

    def shutdown(self: gateway_http.GatewayServer) -> None:
        shutdowns.append(time.perf_counter())
        original(self)

    monkeypatch.setattr(gateway_http.GatewayServer, "shutdown", shutdown)
    event = {
        "httpMethod": "POST",
        "path": "/v1/chat/completions",
        "headers": {"Content-Type": "application/json"},
        "body": '{"stream": true}',
        "requestContext": {"requestId": "cold-test"},
    }
    status, streamed, wired, answered = cold_child.first_stream(gateway_http, event)
    assert status == 200 and b"data: [DONE]" in streamed
    assert wired >= 0
    assert len(shutdowns) == 1 and answered <= shutdowns[0]
