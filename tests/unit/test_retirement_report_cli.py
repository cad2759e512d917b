"""`switchboard models retire` shows the retirement report: per version what went in each region,
regions it could not reach, and per tenant what was kept."""

from __future__ import annotations

import pytest

from switchboard_local.cli.models import print_retirement

REPORT = {
    "dry_run": False,
    "families": {
        "support-llm": {
            "live": "arn:aws:sagemaker:us-east-1:1:model-package/support-llm/4",
            "retention": 1,
            "retired": [
                {
                    "version": 2,
                    "tenant": "",
                    "archived": False,
                    "inference_components": [],
                    "endpoint_configs": ["support-llm-v2-a"],
                    "models": ["support-llm-v2-a"],
                    "regions": [
                        {
                            "region": "eu-west-1",
                            "inference_components": [],
                            "endpoint_configs": [],
                            "models": ["support-llm-v2-a"],
                            "error": "",
                        },
                        {"region": "ap-southeast-2", "error": "EndpointConnectionError: Could not connect"},
                    ],
                }
            ],
            "tenants": {},
            "regions": {
                "eu-west-1": {"reachable": True, "error": ""},
                "ap-southeast-2": {"reachable": False, "error": "EndpointConnectionError: Could not connect"},
            },
        },
        "support-lora": {
            "live": "",
            "retention": 1,
            "retired": [],
            "tenants": {
                "acme": {
                    "live": "arn:aws:sagemaker:us-east-1:1:model-package/support-lora/5",
                    "kept": [3],
                    "retired": [2],
                },
                "initech": {"live": "", "kept": [], "retired": []},
            },
            "regions": {},
        },
    },
}


def test_the_report_shows_regions_versions_and_tenants(capsys: pytest.CaptureFixture[str]) -> None:
    print_retirement(REPORT)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "support-llm: retention 1"
    assert "region ap-southeast-2 unreachable: EndpointConnectionError" in out[1]
    header, row = out[2].split(), out[3]
    assert header == ["version", "tenant", "archived", "home", "eu-west-1", "ap-southeast-2"]
    assert row.startswith("2") and " no " in row
    assert "1 config, 1 model" in row and "not done: EndpointConnectionError" in row
    assert "support-lora: retention 1" in out and "  nothing to retire" in out
    acme = next(line for line in out if line.startswith("acme"))
    assert acme.split() == ["acme", "5", "3", "2"]
    assert next(line for line in out if line.startswith("initech")).split() == [
        "initech",
        "base",
        "model",
        "-",
        "-",
    ]


def test_retention_is_refused_outside_what_a_family_takes(capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard_local.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "retire", "--retention", "0", "--local"])
    assert exit_info.value.code == 2
    assert "retention must be between 1 and 50" in capsys.readouterr().err
