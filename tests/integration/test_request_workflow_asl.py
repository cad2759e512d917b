"""Every branch of statemachines/request_workflow.asl.json, executed by moto's Step Functions
interpreter with the Lambda tasks bound to the in-process handlers.

Each scenario records the states its executions entered; the last test checks that together they
reach every state of the definition.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from switchboard.circuits.store import CircuitStore
from switchboard.keys import ApiKeyStore
from switchboard.options.model import BreakerPolicy

ROOT = Path(__file__).resolve().parents[2]
ALL_STATES = set(json.loads((ROOT / "statemachines" / "request_workflow.asl.json").read_text())["States"])
VISITED: dict[str, set[str]] = {}
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
FAST_BREAKER = {
    "failure_threshold": 2,
    "window_s": 60,
    "cooldown_s": 1,
    "max_cooldown_s": 4,
    "half_open_probes": 1,
}


@pytest.fixture
def run(gateway, request):
    """Send one chat request; remember which states its execution went through."""
    seen = VISITED.setdefault(request.node.name, set())

    def _run(body=CHAT, key="sk-switchboard-local-dev"):
        status, headers, payload = gateway.call("POST", "/v1/chat/completions", body, key=key)
        states = gateway.last_states()
        seen.update(states)
        return status, headers, payload, states

    return _run


def _premium_key(gateway, tenant: str = "acme") -> str:
    keys = ApiKeyStore(gateway.resources.keys_table, client=boto3.client("dynamodb"))
    return keys.create(tenant, "premium", apigateway=None, usage_plan_id=None)[0]


def _cache_item(tenant: str | None, *, text: str, expires_at: int, key_tenant: str) -> dict:
    """A cache row for CHAT's messages under `key_tenant`'s key, naming `tenant` (None: no tenant)."""
    from switchboard.chat import cache_key
    from switchboard.providers.base import ChatMessage, ChatRequest

    key = cache_key(
        tenant=key_tenant, route="chat", request=ChatRequest(messages=[ChatMessage("user", "hello")])
    )
    answer = {"text": text, "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1}
    item = {
        "cache_key": {"S": key},
        "answer": {"S": json.dumps(answer)},
        "option_id": {"S": "claude-sonnet-us"},
        "route": {"S": "chat"},
        "expires_at": {"N": str(expires_at)},
    }
    if tenant is not None:
        item["tenant"] = {"S": tenant}
    return item


def _break(gateway, *option_ids: str, kind: str = "unavailable") -> None:
    for option_id in option_ids:
        gateway.set_option_params(option_id, error_rate=1.0, error_kind=kind)


def _circuits(gateway) -> CircuitStore:
    return CircuitStore(gateway.resources.circuit_table, client=boto3.client("dynamodb"), cache_ttl_s=0)


def test_healthy_primary_answers(run) -> None:
    status, headers, _, states = run()
    assert status == 200 and headers["x-switchboard-option"] == "claude-haiku-us"
    assert states[-1] == "Answered"
    assert "CheckCircuit" in states and "CircuitOpen_Skip" not in states


def test_premium_answers_are_cached(gateway, run) -> None:
    status, _, _, states = run(key=_premium_key(gateway))
    assert status == 200
    assert "RememberAnswer" in states


def test_failures_open_the_circuit_and_later_requests_skip_it(gateway, run) -> None:
    gateway.set_option("claude-haiku-us", breaker=FAST_BREAKER)
    _break(gateway, "claude-haiku-us")

    first = run()
    second = run()
    third = run()

    assert [r[1]["x-switchboard-option"] for r in (first, second, third)] == ["nova-lite-us"] * 3
    assert "OpenCircuit" not in first[3] and "OpenCircuit" in second[3]
    assert "CircuitOpen_Skip" in third[3] and third[3].count("InvokeCandidate") == 1
    circuit = _circuits(gateway).get("claude-haiku-us")
    assert circuit.state.value == "OPEN"


def test_after_cooldown_one_probe_closes_a_healed_circuit(gateway, run) -> None:
    gateway.set_option("claude-haiku-us", breaker=FAST_BREAKER)
    _break(gateway, "claude-haiku-us")
    run()
    run()
    gateway.set_option_params("claude-haiku-us", error_rate=0.0)
    time.sleep(2.1)  # cooldown_s=1, and `now` in the workflow has whole-second resolution

    status, headers, _, states = run()

    assert status == 200 and headers["x-switchboard-option"] == "claude-haiku-us"
    assert [s for s in states if s in {"AcquireProbeLease", "ProbeGranted?", "HalfOpen_Probe"}] == [
        "AcquireProbeLease",
        "ProbeGranted?",
        "HalfOpen_Probe",
    ]
    assert "CloseCircuit" in states
    assert _circuits(gateway).get("claude-haiku-us").state.value == "CLOSED"


def test_a_second_request_during_half_open_does_not_probe(gateway, run) -> None:
    gateway.set_option("claude-haiku-us", breaker=FAST_BREAKER)
    _break(gateway, "claude-haiku-us")
    run()
    run()
    time.sleep(2.1)
    decision = _circuits(gateway).acquire_probe(
        "claude-haiku-us", BreakerPolicy.from_dict(FAST_BREAKER), owner="someone-else", actor="test"
    )
    assert decision.granted

    status, headers, _, states = run()

    assert status == 200 and headers["x-switchboard-option"] == "nova-lite-us"
    assert "HalfOpen_ProbeBusy_Skip" in states and "HalfOpen_Probe" not in states


def test_throttling_is_retried_then_recorded_as_a_failure(gateway, run) -> None:
    _break(gateway, "claude-haiku-us", kind="throttled")
    status, headers, _, states = run()
    assert status == 200 and headers["x-switchboard-option"] == "nova-lite-us"
    assert "RecordThrottledFailure" in states


def test_a_crashing_invoke_step_is_recorded_and_skipped(gateway, run, monkeypatch) -> None:
    from handlers import invoke

    original = invoke.invoke_candidate

    def crash_on_primary(event, now_ms=None):
        if event["option_id"] == "claude-haiku-us":
            raise RuntimeError("boom")
        return original(event, now_ms)

    monkeypatch.setattr(invoke, "invoke_candidate", crash_on_primary)
    status, headers, _, states = run()
    assert status == 200 and headers["x-switchboard-option"] == "nova-lite-us"
    assert "RecordInvokeStepFailure" in states


def test_bad_request_goes_back_to_the_caller(gateway, run) -> None:
    _break(gateway, "claude-haiku-us", kind="bad_request")
    status, _, body, states = run()
    assert status == 400 and body["error"]["code"] == "provider_rejected_request"
    assert states[-1] == "ClientError_ReturnToCaller"


TOOLS_CHAT = {
    **CHAT,
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
}


def _variant_skips_unsupported(gateway, skip: bool) -> None:
    document = json.loads(gateway.flags_file.read_text())
    document["flags"]["chat"]["attributes"].setdefault(
        "skip_unsupported", {"constraints": {"type": "boolean"}}
    )
    for variant in document["values"]["chat"]["_variants"]:
        variant["attributeValues"]["skip_unsupported"] = skip
    gateway.flags_file.write_text(json.dumps(document))
    gateway.agent.reload()


def test_a_candidate_without_tools_is_skipped_when_the_variant_says_so(gateway, run) -> None:
    gateway.set_option("claude-haiku-us", capabilities=["images"])
    _variant_skips_unsupported(gateway, True)
    status, headers, _, states = run(TOOLS_CHAT)
    assert status == 200 and headers["x-switchboard-option"] == "nova-lite-us"
    assert "CandidateLacksFeature_Skip" in states
    snapshot = _circuits(gateway).get("claude-haiku-us")
    assert snapshot.version == 0 and snapshot.last_error is None  # nothing counted against it


def test_a_candidate_without_tools_is_a_400_when_the_variant_does_not_skip(gateway, run) -> None:
    gateway.set_option("claude-haiku-us", capabilities=["images"])
    _variant_skips_unsupported(gateway, False)
    status, _, body, states = run(TOOLS_CHAT)
    assert status == 400 and body["error"]["code"] == "unsupported_feature"
    assert "tools" in body["error"]["message"]
    assert states[-1] == "ClientError_ReturnToCaller"


def test_context_too_long_moves_to_the_variants_context_fallback(gateway, run) -> None:
    _break(gateway, "claude-sonnet-us", kind="context_too_long")
    status, headers, _, states = run(key=_premium_key(gateway))
    assert status == 200
    assert headers["x-switchboard-option"] == "nova-lite-us"
    assert headers["x-switchboard-fallback"] == "context"
    assert "UseContextFallback" in states


def test_chain_down_then_smaller_model_then_static(gateway, run) -> None:
    _break(gateway, "claude-haiku-us", "nova-lite-us")
    status, headers, _, states = run()
    assert status == 200 and headers["x-switchboard-degraded"] == "smaller_model"
    assert "Degrade_SmallerModel" in states

    _break(gateway, "nova-micro-us")
    status, headers, body, states = run()
    assert status == 200 and headers["x-switchboard-degraded"] == "static"
    assert states[-1] == "Degrade_StaticAnswer"
    assert body["object"] == "chat.completion"


def test_cached_answer_when_everything_is_down(gateway, run) -> None:
    premium = _premium_key(gateway)
    status, first_headers, first, _ = run(key=premium)
    assert status == 200
    _break(gateway, "claude-sonnet-us", "claude-sonnet-eu", "claude-haiku-us", "nova-micro-us")

    status, headers, body, states = run(key=premium)

    assert status == 200 and headers["x-switchboard-degraded"] == "cache"
    assert body["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    assert headers["x-switchboard-option"] == first_headers["x-switchboard-option"]
    assert states[-1] == "Answered_FromCache"


def test_expired_or_missing_cache_entries_fall_through_to_static(gateway, run) -> None:
    # A tenant without a prompt profile (config/profiles.json): the key below is the request's own.
    premium = _premium_key(gateway, "initech")
    _break(gateway, "claude-sonnet-us", "claude-sonnet-eu", "claude-haiku-us", "nova-micro-us")
    status, headers, _, states = run(key=premium)  # nothing cached yet
    assert status == 200 and headers["x-switchboard-degraded"] == "static"
    assert "CachedAnswerFound?" in states and "ReadCachedAnswer" not in states

    expired = _cache_item("initech", text="old", expires_at=int(time.time()) - 5, key_tenant="initech")
    boto3.client("dynamodb").put_item(TableName=gateway.resources.cache_table, Item=expired)
    status, headers, _, states = run(key=premium)
    assert headers["x-switchboard-degraded"] == "static"
    assert "ReadCachedAnswer" in states and "Answered_FromCache" not in states


def test_a_cached_answer_is_served_only_to_its_own_tenant(gateway, run) -> None:
    """Tenant B sending tenant A's messages while the route degrades to the cache never gets A's answer."""
    tenant_a, tenant_b = _premium_key(gateway, "acme"), _premium_key(gateway, "globex")
    status, _, first, states = run(key=tenant_a)
    assert status == 200 and "RememberAnswer" in states
    items = boto3.client("dynamodb").scan(TableName=gateway.resources.cache_table)["Items"]
    assert [(i["tenant"]["S"], i["cache_key"]["S"].split("#")[0]) for i in items] == [("acme", "acme")]
    _break(gateway, "claude-sonnet-us", "claude-sonnet-eu", "claude-haiku-us", "nova-micro-us")

    status, headers, body, states = run(key=tenant_b)

    assert status == 200 and headers["x-switchboard-degraded"] == "static", headers
    assert "Degrade_CachedAnswer" in states and "ReadCachedAnswer" not in states
    assert body["choices"][0]["message"]["content"] != first["choices"][0]["message"]["content"]

    status, headers, body, states = run(key=tenant_a)  # A's own answer is still there for A

    assert headers["x-switchboard-degraded"] == "cache" and states[-1] == "Answered_FromCache"
    assert body["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]


@pytest.mark.parametrize("stored_tenant", ["acme", None], ids=["another-tenant", "no-tenant"])
def test_an_item_that_does_not_name_the_requests_tenant_is_never_served(
    gateway, run, stored_tenant: str | None
) -> None:
    """Even under B's own key (a bug, or a row from before tenants were stored), only B's rows serve B."""
    tenant_b = _premium_key(gateway, "globex")
    planted = _cache_item(
        stored_tenant, text="acme's secret", expires_at=int(time.time()) + 300, key_tenant="globex"
    )
    boto3.client("dynamodb").put_item(TableName=gateway.resources.cache_table, Item=planted)
    _break(gateway, "claude-sonnet-us", "claude-sonnet-eu", "claude-haiku-us", "nova-micro-us")

    status, headers, body, states = run(key=tenant_b)

    assert status == 200 and headers["x-switchboard-degraded"] == "static"
    assert "CachedAnswerOfAnotherTenant_Ignore" in states and "ReadCachedAnswer" not in states
    assert "secret" not in body["choices"][0]["message"]["content"]


def test_a_workflow_input_without_a_tenant_neither_writes_nor_reads_the_cache(gateway, request) -> None:
    """The ASL itself refuses to cache for a request that names no tenant (`tenant` null). The key
    itself is always in the input: the invoke step is passed it (tenant adapters, issue 16)."""
    from switchboard.chat import iso_seconds

    sfn = boto3.client("stepfunctions")
    now = time.time()
    base = {
        "request_id": "no-tenant",
        "tenant": None,
        "route": "chat",
        "variant": "premium",
        "chain": ["claude-sonnet-us"],
        "smaller_chain": [],
        "degrade": ["cache", "static"],
        "static_answer": "busy",
        "context_fallback": None,
        "force_degraded": False,
        "cache_key": "chat#legacy",
        "cache_ttl_s": 300,
        "cache_expires_at": str(int(now) + 300),
        "request": {"messages": [{"role": "user", "content": "hello"}]},
        "now": iso_seconds(now),
        "now_epoch_s": int(now),
        "deadline_ms": int(now * 1000) + 20000,
    }

    def execute(name: str, **overrides: object) -> tuple[dict, list[str]]:
        arn = sfn.start_execution(
            stateMachineArn=gateway.resources.state_machine_arn,
            name=name,
            input=json.dumps({**base, **overrides}),
        )["executionArn"]
        deadline = time.monotonic() + 20
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert described["status"] == "SUCCEEDED", described
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
        VISITED.setdefault(request.node.name, set()).update(states)
        return json.loads(described["output"]), states

    output, states = execute("answered-without-tenant")
    assert output["outcome"] == "answered"
    assert "ShouldCacheAnswer?" in states and "RememberAnswer" not in states
    assert boto3.client("dynamodb").scan(TableName=gateway.resources.cache_table)["Count"] == 0

    legacy = _cache_item(None, text="old", expires_at=int(now) + 300, key_tenant="acme")
    legacy["cache_key"] = {"S": "chat#legacy"}
    boto3.client("dynamodb").put_item(TableName=gateway.resources.cache_table, Item=legacy)
    output, states = execute("degraded-without-tenant", force_degraded=True)
    assert output == {"outcome": "degraded", "kind": "static", "text": "busy"}
    assert "CachedAnswerOfAnotherTenant_Ignore" in states


def test_reject_policy_is_503_with_retry_after(gateway, run) -> None:
    gateway.set_option("mock-echo", breaker={**FAST_BREAKER, "failure_threshold": 1, "cooldown_s": 30})
    _break(gateway, "mock-echo")
    status, headers, body, states = run({**CHAT, "model": "echo"})
    assert status == 503
    assert states[-1] == "Reject_RetryAfter"
    assert 1 <= int(headers["retry-after"]) <= 30  # from the circuit that just opened
    assert body["error"]["code"] == "no_healthy_option"


def test_operator_can_force_degraded_mode(gateway, run) -> None:
    document = json.loads(gateway.flags_file.read_text())
    document["values"]["force-degraded"] = {"enabled": True, "routes": ["chat"]}
    gateway.flags_file.write_text(json.dumps(document))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, headers, _, states = run()
        if "DegradedModeForcedByOperator" in states:
            break
        time.sleep(0.1)
    assert "DegradedModeForcedByOperator" in states
    # The primary chain is never called: the first candidate invoked is the smaller model's.
    assert states.index("Degrade_SmallerModel") < states.index("InvokeCandidate")
    assert headers["x-switchboard-degraded"] == "smaller_model"


def test_kill_switch_takes_an_option_out_of_every_chain(gateway, run) -> None:
    document = json.loads(gateway.flags_file.read_text())
    document["values"]["kill-switch"] = {"enabled": True, "providers": [], "options": ["claude-haiku-us"]}
    gateway.flags_file.write_text(json.dumps(document))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, headers, _, _ = run()
        if headers.get("x-switchboard-option") == "nova-lite-us":
            break
        time.sleep(0.1)
    assert headers["x-switchboard-option"] == "nova-lite-us"


def test_circuit_table_down_is_treated_as_closed(gateway, run) -> None:
    boto3.client("dynamodb").delete_table(TableName=gateway.resources.circuit_table)
    status, headers, _, states = run()
    assert status == 200 and headers["x-switchboard-option"] == "claude-haiku-us"
    assert "CircuitTableUnavailable_AssumeClosed" in states


@pytest.fixture
def capacity_minute(gateway, monkeypatch) -> datetime:
    """Pin the invoke step's capacity clock to one instant: the scenario's requests all fall in one
    minute window, however the wall clock runs (no sleeping on, or racing, a minute boundary)."""
    from handlers import invoke

    moment = datetime.now(UTC)
    counters = invoke.dependencies().capacity
    assert counters is not None  # USAGE_TABLE is in the invoke step's environment
    monkeypatch.setattr(counters, "clock", lambda: moment)
    return moment


def _capacity_used(gateway, option_id: str, moment: datetime) -> dict[str, int]:
    from switchboard.quotas.service import capacity_sk, option_pk

    item = (
        boto3.client("dynamodb")
        .get_item(
            TableName=gateway.resources.usage_table,
            Key={"pk": {"S": option_pk(option_id)}, "sk": {"S": capacity_sk(option_id, moment)}},
        )
        .get("Item", {})
    )
    return {name: int(item[name]["N"]) if name in item else 0 for name in ("rpm", "tpm")}


def _nothing_recorded(gateway, option_id: str) -> None:
    snapshot = _circuits(gateway).get(option_id)
    assert snapshot.state.value == "CLOSED" and snapshot.version == 0 and snapshot.last_error is None


def test_an_option_at_its_capacity_sends_the_overflow_to_the_next_candidate(
    gateway, run, capacity_minute
) -> None:
    # Given the primary may take one request a minute
    gateway.set_option("claude-haiku-us", capacity={"rpm": 1})
    # When two requests arrive in the same minute
    first, second = run(), run()
    # Then the first goes to the primary, the overflow to the next candidate through Saturated_Skip
    assert [r[1]["x-switchboard-option"] for r in (first, second)] == ["claude-haiku-us", "nova-lite-us"]
    assert "Saturated_Skip" not in first[3]
    states = second[3]
    assert states.index("Saturated_Skip") < states.index("TryNextCandidate")
    assert {"OpenCircuit", "CloseCircuit", "RecordInvokeStepFailure"}.isdisjoint(states)
    # And the primary's circuit recorded nothing; its minute counted one request and its tokens
    _nothing_recorded(gateway, "claude-haiku-us")
    used = _capacity_used(gateway, "claude-haiku-us", capacity_minute)
    assert used["rpm"] == 1 and used["tpm"] > 0


def test_a_whole_chain_at_capacity_runs_the_degrade_policy(gateway, run, capacity_minute) -> None:
    for option_id in ("claude-haiku-us", "nova-lite-us", "nova-micro-us"):
        gateway.set_option(option_id, capacity={"rpm": 1})
    answered = [run()[1]["x-switchboard-option"] for _ in range(2)]
    assert answered == ["claude-haiku-us", "nova-lite-us"]

    status, headers, _, states = run()  # the primary chain is used up: the smaller model answers
    assert status == 200 and headers["x-switchboard-degraded"] == "smaller_model"
    assert states.count("Saturated_Skip") == 2 and "ChainExhausted" in states

    status, headers, body, states = run()  # everything used up: the static answer
    assert status == 200 and headers["x-switchboard-degraded"] == "static"
    assert states.count("Saturated_Skip") == 3 and states[-1] == "Degrade_StaticAnswer"
    assert body["object"] == "chat.completion"
    for option_id in ("claude-haiku-us", "nova-lite-us", "nova-micro-us"):
        _nothing_recorded(gateway, option_id)


def test_a_saturated_probe_hands_its_lease_back(gateway, run, capacity_minute) -> None:
    from switchboard.quotas.dynamo import DynamoUsageCounters
    from switchboard.quotas.service import CapacityCounters

    # Given the primary's circuit opened, cooled down, and the primary is healthy again
    gateway.set_option("claude-haiku-us", breaker=FAST_BREAKER)
    _break(gateway, "claude-haiku-us")
    run()
    run()
    gateway.set_option_params("claude-haiku-us", error_rate=0.0)
    # And another instance has just used the primary's one request of this minute
    gateway.set_option("claude-haiku-us", capacity={"rpm": 1})
    counters = DynamoUsageCounters(gateway.resources.usage_table, client=boto3.client("dynamodb"))
    other = CapacityCounters(counters, clock=lambda: capacity_minute)
    assert other.take("claude-haiku-us", 10, rpm=1, tpm=None) is not None
    time.sleep(2.1)  # cooldown_s=1, and `now` in the workflow has whole-second resolution

    # When a request takes the probe lease and finds the primary saturated
    status, headers, _, states = run()

    # Then it moves on without a call and without a transition, and gives the lease back
    assert status == 200 and headers["x-switchboard-option"] == "nova-lite-us"
    assert states.index("HalfOpen_Probe") < states.index("Saturated_Skip")
    assert {"OpenCircuit", "CloseCircuit"}.isdisjoint(states)
    circuit = _circuits(gateway).get("claude-haiku-us")
    assert circuit.state.value == "HALF_OPEN" and circuit.leases == ()
    policy = BreakerPolicy.from_dict(FAST_BREAKER)
    assert _circuits(gateway).acquire_probe("claude-haiku-us", policy, owner="next", actor="test").granted


def test_every_state_is_reached_by_some_scenario() -> None:
    scenarios = [name for name in globals() if name.startswith("test_") and name != __name__.split(".")[-1]]
    ran = {name.split("[")[0] for name in VISITED}
    expected = {name for name in scenarios if name != "test_every_state_is_reached_by_some_scenario"}
    if ran != expected:
        pytest.skip("coverage of the ASL is only meaningful when every scenario in this module ran")
    reached = set().union(*VISITED.values())
    assert ALL_STATES - reached == set(), f"states no test reaches: {sorted(ALL_STATES - reached)}"
