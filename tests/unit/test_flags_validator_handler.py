"""The AppConfig Lambda validator refuses bad flag documents before any rollout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.flags_validator import InvalidFlagDocument, validate

ROOT = Path(__file__).resolve().parents[2]
SEED = json.loads((ROOT / "config" / "flags.json").read_text())
STATUSES = {
    o["id"]: o.get("status", "active") for o in json.loads((ROOT / "config" / "options.json").read_text())
}


def test_seed_document_is_accepted() -> None:
    validate(json.dumps(SEED).encode(), STATUSES)


def test_unknown_option_in_a_chain_is_refused() -> None:
    document = json.loads(json.dumps(SEED))
    document["values"]["chat"]["_variants"][-1]["attributeValues"]["chain"] = ["no-such-option"]
    with pytest.raises(InvalidFlagDocument, match="no-such-option"):
        validate(json.dumps(document).encode(), STATUSES)


def test_retired_option_is_refused() -> None:
    with pytest.raises(InvalidFlagDocument, match="retired"):
        validate(json.dumps(SEED).encode(), {**STATUSES, "claude-haiku-us": "retired"})


def test_bad_rule_and_not_json_are_refused() -> None:
    document = json.loads(json.dumps(SEED))
    document["values"]["chat"]["_variants"][0]["rule"] = "(eq $tier"
    with pytest.raises(InvalidFlagDocument):
        validate(json.dumps(document).encode(), STATUSES)
    with pytest.raises(InvalidFlagDocument, match="not JSON"):
        validate(b"{", STATUSES)
