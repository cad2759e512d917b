"""The prompt-profiles Lambda validator: AppConfig's validation event in, a refusal or nothing out.

AppConfig sends the version's content base64-encoded (AppConfig user guide, "Validators": the
Lambda receives ``applicationId``, ``configurationProfileId``, ``configurationVersion``,
``content`` and ``uri``); raising refuses the version and shows the message to the operator.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.profiles_validator import InvalidProfilesDocument, handler, validate
from switchboard.selfcheck import SELFCHECK_EVENT
from switchboard_local.emulation import FakeLambdaContext

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "config" / "profiles.json").read_bytes()


def event(content: bytes | str) -> dict[str, Any]:
    encoded = content if isinstance(content, str) else base64.b64encode(content).decode()
    return {
        "applicationId": "abc1234",
        "configurationProfileId": "def5678",
        "configurationVersion": "3",
        "content": encoded,
        "uri": "hosted",
    }


def test_the_sample_document_is_accepted() -> None:
    assert handler(event(SAMPLE), FakeLambdaContext()) is None


def test_a_bad_document_is_refused_with_every_problem_named() -> None:
    document = json.loads(SAMPLE)
    document["tenants"]["acme"]["defaults"]["temperature"] = 3
    document["tenants"]["acme"]["system_prompt_prefix"] = "x" * 5000
    document["tenants"]["Bad Tenant"] = {}
    document["tenants"]["globex"] = {"defaults": {"frequency_penalty": 1}}

    with pytest.raises(InvalidProfilesDocument) as refused:
        handler(event(json.dumps(document).encode()), FakeLambdaContext())

    message = str(refused.value)
    assert message.startswith("prompt profiles refused: ")
    for fragment in (
        "tenants.acme.defaults.temperature: 3 is outside 0..2",
        "tenants.acme.system_prompt_prefix: 5000 characters; at most 4000",
        "tenants.'Bad Tenant': not a tenant id",
        "tenants.globex.defaults.frequency_penalty: not a parameter a profile may default",
    ):
        assert fragment in message


@pytest.mark.parametrize(
    ("bad_event", "fragment"),
    [
        ({"content": "not base64!"}, "not base64"),
        ({}, "carries no `content`"),
        ({"content": 3}, "carries no `content`"),
        (event(b"{"), "not JSON"),
        (event(b"\xfe\xff"), "not UTF-8"),
    ],
)
def test_an_event_without_a_readable_document_is_refused(bad_event: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidProfilesDocument, match=fragment):
        handler(bad_event, FakeLambdaContext())


def test_validate_is_the_check_the_reader_runs() -> None:
    validate(SAMPLE)
    with pytest.raises(InvalidProfilesDocument, match="default: missing"):
        validate(b'{"version": "1"}')


def test_the_self_check_reports_init_ok_and_needs_no_settings() -> None:
    report = handler(dict(SELFCHECK_EVENT), FakeLambdaContext())
    assert report is not None
    assert (report["handler"], report["settings"], report["init"]) == (
        "profiles_validator",
        "not applicable",
        "ok",
    )
