"""Issue 16 on `make local`, with the official OpenAI SDK.

Start-up runs the adapter flow for real: acme's sample adapter is approved, and the model-deployment
workflow (moto's ASL interpreter, the in-process handlers) deploys its inference component, canaries
it on the family's share of acme's requests, bakes, judges and promotes it. So a fresh stack answers
acme's requests on route `tuned` from acme's adapter (`x-switchboard-adapter`), whole and streamed,
while globex, whose adapter waits for approval, is answered by the base component. Then the rollback
half, with the commands the README gives: a new acme version, approved with a bake, fails during its
canary (`models canary-signals`) and rolls acme back to its adapter; globex is untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest

import switchboard_local.cli.target as target_mod
from switchboard_local.lifecycle_local import names_for, prefix_of
from switchboard_local.stack import LocalStack
from tests.e2e.local_cli import switchboard

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MESSAGES: Any = [{"role": "user", "content": "hello adapter"}]
FLOW_TIMEOUT_S = 60


def _client(stack: LocalStack, tenant: str) -> openai.OpenAI:
    key = switchboard("keys", "create", "--tenant", tenant, "--tier", "standard")["key"]
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)


def _whole(client: openai.OpenAI) -> tuple[str | None, str]:
    raw = client.chat.completions.with_raw_response.create(model="tuned", messages=MESSAGES)
    return raw.headers.get("x-switchboard-adapter"), raw.parse().choices[0].message.content or ""


def _streamed(client: openai.OpenAI) -> tuple[str | None, str]:
    raw = client.chat.completions.with_raw_response.create(model="tuned", messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return raw.headers.get("x-switchboard-adapter"), text


def _answered_by(client: openai.OpenAI, label: str) -> tuple[str | None, str]:
    """The whole answer, once the handlers' adapter caches (1 s locally) see ``label``."""
    deadline = time.monotonic() + 10
    while (answer := _whole(client))[0] != label and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


def _tenants(group: str) -> dict[str, dict[str, Any]]:
    return {t["tenant"]: t for t in switchboard("models", "list", "--group", group, "--json")["tenants"]}


def test_start_up_promotes_acmes_adapter_and_leaves_globex_on_the_base(stack: LocalStack) -> None:
    names = names_for(prefix_of(stack.resources))
    group, base = names["sample_adapter_group"], names["sample_base_component"]
    assert stack.adapter_flow is not None
    report = stack.adapter_flow.wait(FLOW_TIMEOUT_S)

    # the flow ran through the workflow: canary on the family's share, bake, judged, promoted
    assert (report.tenant, report.version, report.outcome, report.share_percent) == (
        "acme",
        1,
        "promoted",
        10,
    )
    flow = ["StartTenantCanary", "BakeTenantCanary", "JudgeTenantCanary", "PromoteTenantCanary", "Deployed"]
    assert [state for state in report.states if state in flow] == flow, report.states
    listing = switchboard("models", "list", "--group", group, "--json")
    assert [(v["version"], v["approval"], v["deployment"]) for v in listing["versions"]] == [
        (2, "PendingManualApproval", None),  # globex's adapter: nobody approved it
        (1, "Approved", "deployed"),
    ]
    (acme,) = listing["tenants"]  # globex has no adapter record: the base model serves it
    assert (acme["tenant"], acme["version"], acme["state"], acme["canary_version"]) == (
        "acme",
        1,
        "live",
        None,
    )
    view = switchboard("models", "list", "--group", group, "--tenant", "acme", "--json")
    assert [(h["event"], h["version"], h["canary_version"]) for h in view["history"]] == [
        ("canary_promoted", 1, 1),
        ("canary_started", None, 1),
    ]
    assert "10% of the tenant's requests" in view["history"][1]["reason"]
    assert switchboard("models", "list", "--group", group, "--tenant", "globex", "--json")["adapter"] is None

    acme_client, globex_client = _client(stack, "acme"), _client(stack, "globex")
    label, component = f"{group}:v1", acme["serving"]
    assert _answered_by(acme_client, label) == (label, f"[sample-lora-tuned/{component}] hello adapter")
    assert _streamed(acme_client) == (label, f"[sample-lora-tuned/{component}] hello adapter")
    assert _whole(globex_client) == ("base", f"[sample-lora-tuned/{base}] hello adapter")
    assert _streamed(globex_client) == ("base", f"[sample-lora-tuned/{base}] hello adapter")

    # A route without an adapter family says nothing about adapters.
    raw = acme_client.chat.completions.with_raw_response.create(model="echo", messages=MESSAGES)
    assert "x-switchboard-adapter" not in raw.headers


def _approve_in_background(group: str, version: int, bake_seconds: int) -> subprocess.Popen[str]:
    """`switchboard models approve ... --bake-seconds N --local` in a second terminal: it waits for
    the workflow, so the canary's signals go in from this one meanwhile."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("", "lambdas", "local")),
        "SWITCHBOARD_LOCAL_STATE": str(Path(target_mod.LOCAL_STATE_FILE).resolve()),
    }
    argv = ["models", "approve", "--group", group, "--version", str(version)]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchboard_local.cli.main",
            *argv,
            "--bake-seconds",
            str(bake_seconds),
            "--local",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_failing_canary_rolls_acme_back_by_hand_and_leaves_globex(stack: LocalStack) -> None:
    names = names_for(prefix_of(stack.resources))
    group, base = names["sample_adapter_group"], names["sample_base_component"]
    assert stack.adapter_flow is not None and stack.adapter_flow.wait(FLOW_TIMEOUT_S).outcome == "promoted"
    before = _tenants(group)

    # the README's commands: register a new acme version, approve it with a bake, fail its canary
    registered = switchboard(
        *("models", "register", "--group", group, "--tenant", "acme", "--image", "local/llm:1"),
        *("--model-data", "s3://switchboard-local/adapters/acme-v3.tar.gz"),
    )
    approving = _approve_in_background(group, registered["version"], bake_seconds=3)
    try:
        deadline = time.monotonic() + 30
        while (acme := _tenants(group)["acme"])["state"] != "canary" and time.monotonic() < deadline:
            assert approving.poll() is None, approving.communicate()
            time.sleep(0.1)
        assert (acme["version"], acme["canary_version"], acme["share"]) == (1, 3, "90% v1 / 10% v3")
        put = switchboard(
            *("models", "canary-signals", "--group", group, "--tenant", "acme"),
            *("--invocations", "10", "--errors", "10"),
        )
        assert put["canary_version"] == 3
        out, err = approving.communicate(timeout=60)
    finally:
        if approving.poll() is None:
            approving.kill()

    # the approval's workflow rolled the canary back: exit code 1, acme back on version 1
    assert approving.returncode == 1, err
    result = json.loads(out[out.index("{") :])
    assert (result["tenant"], result["workflow"]["error"]) == ("acme", "CanaryRolledBack")
    assert result["tenant_serving"] == before["acme"]["model_package_arn"]
    after = _tenants(group)
    assert (after["acme"]["version"], after["acme"]["state"], after["acme"]["canary_version"]) == (
        1,
        "rolled_back",
        None,
    )
    assert "globex" not in after  # never touched: still no adapter, the base model serves it
    history = switchboard("models", "list", "--group", group, "--tenant", "acme", "--json")["history"]
    assert (history[0]["event"], history[0]["canary_version"]) == ("canary_rolled_back", 3)
    assert "error rate 100.0%" in history[0]["reason"]

    label = f"{group}:v1"
    assert _answered_by(_client(stack, "acme"), label)[0] == label
    assert _whole(_client(stack, "globex")) == ("base", f"[sample-lora-tuned/{base}] hello adapter")


def test_the_familys_alarm_in_alarm_rolls_globexs_canary_back_and_leaves_acme(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    from switchboard_local.cli.main import main as cli

    names = names_for(prefix_of(stack.resources))
    group, base = names["sample_adapter_group"], names["sample_base_component"]
    assert stack.adapter_flow is not None and stack.adapter_flow.wait(FLOW_TIMEOUT_S).outcome == "promoted"
    acme_before = _tenants(group)["acme"]

    switchboard("models", "alarm", "--group", group, "--state", "ALARM")
    try:
        capsys.readouterr()
        code = cli(["models", "approve", "--group", group, "--version", "2", "--local"])  # globex's
        out = capsys.readouterr().out
    finally:
        switchboard("models", "alarm", "--group", group, "--state", "OK")

    result = json.loads(out[out.index("{") :])
    assert code == 1 and (result["tenant"], result["workflow"]["error"]) == ("globex", "CanaryRolledBack")
    assert result["tenant_serving"] is None  # the base model serves globex, as before
    history = switchboard("models", "list", "--group", group, "--tenant", "globex", "--json")["history"]
    assert history[0]["event"] == "canary_rolled_back" and "in ALARM" in history[0]["reason"]
    assert _tenants(group)["acme"] == acme_before
    assert _whole(_client(stack, "globex")) == ("base", f"[sample-lora-tuned/{base}] hello adapter")
