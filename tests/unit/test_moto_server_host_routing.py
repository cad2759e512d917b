"""moto's server routes each host as moto does, looking each one up once
(`switchboard_local.moto_patches.MOTO_SERVER_HOST_ROUTING`)."""

from __future__ import annotations

from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from switchboard_local import moto_server_ext
from switchboard_local.moto_patches import MOTO_SERVER_HOST_ROUTING

HOSTS = [
    None,
    "moto_api",
    "dynamodb",
    "dynamodb.us-east-1.amazonaws.com",
    "states.eu-west-1.amazonaws.com",
    "sagemaker.us-west-2.amazonaws.com",
    "runtime.sagemaker.us-east-1.amazonaws.com",
    "bucket.s3.amazonaws.com",
    "127.0.0.1:5000",
    "not-a-service.example.com",
]


def test_every_host_finds_the_backend_moto_finds() -> None:
    app = DomainDispatcherApplication(create_backend_app)
    through_moto = [app.get_backend_for_host(host) for host in HOSTS]
    with MOTO_SERVER_HOST_ROUTING.applied():
        through_patch = [app.get_backend_for_host(host) for host in HOSTS]
        again = [app.get_backend_for_host(host) for host in HOSTS]
    assert through_patch == through_moto == again
    assert "dynamodb" in through_moto and None in through_moto  # both kinds of answer covered


def test_each_host_is_looked_up_once_and_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str | None] = []

    def lookup(_self: Any, host: str | None) -> str | None:
        asked.append(host)
        return None if host is None else host.split(".")[0]

    monkeypatch.setattr(moto_server_ext, "MAX_REMEMBERED_HOSTS", 3)
    routed = moto_server_ext.remembered_backend_for_host(lookup)
    answers = [routed(None, host) for host in ["dynamodb.x", "states.x", None, "dynamodb.x", None]]
    assert answers == ["dynamodb", "states", None, "dynamodb", None]
    assert asked == ["dynamodb.x", "states.x", None]
    for host in ["a.x", "a.x"]:  # past the bound: answered, not remembered
        assert routed(None, host) == "a"
    assert asked[-2:] == ["a.x", "a.x"]
