"""Route kinds in the flag document: a route answers chat or embeddings, on one endpoint, from options
of its kind, and an embeddings route degrades only to what is still an embedding of its model.

Both validators are covered: the whole-document one (the Lambda validator, `switchboard flags
validate`, the agent emulator) and the one for the agent's answer (the gateway's cold start).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.flags_validator import InvalidFlagDocument, validate
from switchboard.options.store import load_seed_file
from switchboard.routing.decision import decide_route
from switchboard.routing.document import (
    embedding_space,
    load_document,
    load_option_catalogue,
    option_catalogue,
    route_kinds,
    validate_document,
)
from switchboard.routing.schema import OptionFacts, validate_evaluated
from switchboard_local.flag_evaluation import evaluate_document, evaluate_route

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ROOT / "config" / "flags.json"
OPTIONS = ROOT / "config" / "options.json"
EMBED0 = "values.embed._variants[0] (default).attributeValues"


@pytest.fixture
def doc() -> dict[str, Any]:
    return load_document(FLAGS)


@pytest.fixture
def catalogue() -> dict[str, OptionFacts]:
    return load_option_catalogue(OPTIONS)


def _embed(d: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = d["values"]["embed"]["_variants"][0]["attributeValues"]
    return attrs


def _declare(d: dict[str, Any], flag: str, *names: str) -> None:
    for name in names:
        d["flags"][flag]["attributes"].setdefault(name, {})


# -- the seed ----------------------------------------------------------------------------------------


def test_the_seed_has_an_embeddings_route_and_chat_routes(
    doc: dict[str, Any], catalogue: dict[str, OptionFacts]
) -> None:
    assert validate_document(doc, catalogue) == []
    assert route_kinds(doc) == {
        "chat": "chat",
        "echo": "chat",
        "embed": "embeddings",
        "summarize": "chat",
        "tuned": "chat",
    }
    decision = evaluate_route(doc, "embed", {"tier": "premium"})
    assert decision.kind == "embeddings"
    assert decision.chain == ("titan-embed-v2-us",)
    assert decision.degrade == ("cache", "reject")
    assert evaluate_route(doc, "chat", {}).kind == "chat"


def test_the_seed_catalogue_knows_each_options_task_and_vectors(catalogue: dict[str, OptionFacts]) -> None:
    assert catalogue["claude-haiku-us"] == OptionFacts(status="active", task="chat", space=None)
    assert catalogue["mock-embed"].task == "embeddings"
    assert catalogue["titan-embed-v2-us"].space == "bedrock:amazon.titan-embed-text-v2:0:1024"
    # A cross-region profile serves the model itself: the same vectors.
    assert catalogue["cohere-embed-us"].space == "bedrock:cohere.embed-v4:0:1536"
    options = {option.id: option for option in load_seed_file(OPTIONS)}
    assert options["mock-embed"].params["dimensions"] == 256
    assert options["titan-embed-v2-us"].model == "amazon.titan-embed-text-v2:0"
    assert options["mock-echo"].capabilities == ("images", "json_object", "json_schema", "tools")
    assert options["nova-micro-us"].capabilities is not None
    assert "images" not in options["nova-micro-us"].capabilities  # Converse: Nova Micro has no vision


def test_the_seed_default_routes_keep_the_kind_for_the_gateway(doc: dict[str, Any]) -> None:
    from infra.config import default_routes

    routes = default_routes(doc)
    assert routes["embed"]["kind"] == "embeddings"
    assert "kind" not in routes["chat"]  # absent: chat
    assert decide_route({"enabled": True, **routes["embed"]}).kind == "embeddings"


# -- the document's rules ----------------------------------------------------------------------------


def test_kind_is_one_of_chat_and_embeddings_even_without_a_declared_constraint(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    bad["flags"]["embed"]["attributes"]["kind"].pop("constraints")
    _embed(bad)["kind"] = "images"
    assert validate_document(bad) == [f"{EMBED0}.kind: 'images' is not one of: chat, embeddings"]
    _embed(bad)["kind"] = ["embeddings"]
    assert validate_document(bad) == [f"{EMBED0}.kind: must be a string (got array ['embeddings'])"]


def test_skip_unsupported_is_a_boolean(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    bad["flags"]["chat"]["attributes"]["skip_unsupported"].pop("constraints")
    bad["values"]["chat"]["_variants"][1]["attributeValues"]["skip_unsupported"] = "yes"
    assert validate_document(bad) == [
        "values.chat._variants[1] (default).attributeValues.skip_unsupported: must be true or false "
        "(got string 'yes')"
    ]
    bad["values"]["chat"]["_variants"][1]["attributeValues"]["skip_unsupported"] = True
    assert validate_document(bad) == []
    assert evaluate_route(bad, "chat", {}).skip_unsupported is True


def test_every_variant_of_a_route_has_the_same_kind(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    variants = bad["values"]["embed"]["_variants"]
    variants.insert(0, {**copy.deepcopy(variants[0]), "name": "chatty", "rule": '(eq $tier "premium")'})
    variants[0]["attributeValues"]["kind"] = "chat"
    problems = validate_document(bad)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        "values.embed._variants: every variant of route 'embed' must have the same kind, not "
        "chat (variant 'chatty'), embeddings (variant 'default')"
    )
    assert "clients call a route on one endpoint" in problems[0]


def test_an_unstated_kind_is_chat_so_it_conflicts_with_embeddings(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    _declare(bad, "chat", "kind")
    bad["values"]["chat"]["_variants"][0]["attributeValues"]["kind"] = "embeddings"
    problems = validate_document(bad)
    assert any("every variant of route 'chat' must have the same kind" in p for p in problems), problems


def test_a_disabled_variant_without_attributes_does_not_change_the_kind(doc: dict[str, Any]) -> None:
    good = copy.deepcopy(doc)
    variants = good["values"]["embed"]["_variants"]
    variants.insert(0, {"name": "off-for-beta", "enabled": False, "rule": '(eq $tenant "beta")'})
    assert validate_document(good) == []
    assert evaluate_route(good, "embed", {"tenant": "beta"}).enabled is False


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        ("degrade", ["static", "reject"], "cannot degrade to 'static': a static text is not an embedding"),
        ("context_fallback", "titan-embed-v2-us", "takes no 'context_fallback'"),
        ("degrade", ["smaller_model", "reject"], "takes no 'smaller_model' step or 'smaller_chain'"),
        ("smaller_chain", ["mock-embed"], "takes no 'smaller_model' step or 'smaller_chain'"),
    ],
)
def test_an_embeddings_route_degrades_only_to_what_is_still_its_embedding(
    doc: dict[str, Any], attribute: str, value: Any, expected: str
) -> None:
    bad = copy.deepcopy(doc)
    _declare(bad, "embed", attribute, "static_answer", "smaller_chain", "context_fallback")
    bad["flags"]["embed"]["attributes"].pop("degrade")
    bad["flags"]["embed"]["attributes"]["degrade"] = {}
    _embed(bad)[attribute] = value
    _embed(bad)["static_answer"] = "busy"
    problems = validate_document(bad)
    assert len(problems) == 1 and problems[0].startswith(EMBED0) and expected in problems[0], problems


def test_the_same_steps_are_fine_on_a_chat_route(doc: dict[str, Any]) -> None:
    assert "static" in doc["values"]["chat"]["_variants"][1]["attributeValues"]["degrade"]
    assert doc["values"]["chat"]["_variants"][0]["attributeValues"]["context_fallback"]
    assert validate_document(doc) == []


def test_a_chat_route_names_chat_options_and_an_embeddings_route_embeddings_options(
    doc: dict[str, Any], catalogue: dict[str, OptionFacts]
) -> None:
    bad = copy.deepcopy(doc)
    bad["values"]["chat"]["_variants"][1]["attributeValues"]["smaller_chain"] = ["mock-embed"]
    _embed(bad)["chain"] = ["titan-embed-v2-us", "claude-haiku-us"]
    problems = validate_document(bad, catalogue)
    assert problems == [
        "values.chat._variants[1] (default).attributeValues: smaller_chain names option 'mock-embed', which "
        "answers embeddings, but route 'chat' is of kind chat: it calls chat options only",
        f"{EMBED0}: chain names option 'claude-haiku-us', which answers chat, but route 'embed' is of kind "
        "embeddings: it calls embeddings options only",
    ]


def test_a_catalogue_of_bare_statuses_checks_existence_only(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    _embed(bad)["chain"] = ["claude-haiku-us"]
    statuses = {option_id: facts.status for option_id, facts in load_option_catalogue(OPTIONS).items()}
    assert validate_document(bad, statuses) == []  # no task known: that check is skipped
    assert validate_document(bad, {**statuses, "claude-haiku-us": OptionFacts("active", "chat")}) != []


def test_an_embeddings_chain_stays_in_one_vector_space(
    doc: dict[str, Any], catalogue: dict[str, OptionFacts]
) -> None:
    bad = copy.deepcopy(doc)
    _embed(bad)["chain"] = ["titan-embed-v2-us", "cohere-embed-us"]
    problems = validate_document(bad, catalogue)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        f"{EMBED0}: the chain of route 'embed' mixes embedding models or dimensions "
        "('titan-embed-v2-us', 'cohere-embed-us'): vectors of different models do not compare"
    )
    # One model in two regions (or through its cross-region profile) is a fine failover.
    same = {
        **catalogue,
        "titan-embed-v2-usw2": option_catalogue(
            [
                {
                    "id": "titan-embed-v2-usw2",
                    "provider": "bedrock",
                    "task": "embeddings",
                    "model": "amazon.titan-embed-text-v2:0",
                    "region": "us-west-2",
                    "params": {"dimensions": 1024},
                }
            ]
        )["titan-embed-v2-usw2"],
    }
    _embed(bad)["chain"] = ["titan-embed-v2-us", "titan-embed-v2-usw2"]
    assert validate_document(bad, same) == []


def test_embedding_spaces() -> None:
    def space(**item: Any) -> str | None:
        return embedding_space({"task": "embeddings", **item})

    assert embedding_space({"provider": "bedrock", "model": "amazon.nova-lite-v1:0"}) is None  # chat
    assert space(provider="bedrock", model="eu.cohere.embed-v4:0", params={"dimensions": 1536}) == space(
        provider="bedrock", model="cohere.embed-v4:0", params={"dimensions": 1536}
    )
    assert space(provider="bedrock", model="cohere.embed-v4:0", params={"dimensions": 1024}) != space(
        provider="bedrock", model="cohere.embed-v4:0", params={"dimensions": 1536}
    )
    assert space(provider="sagemaker", endpoint_name="e", inference_component="a") != space(
        provider="sagemaker", endpoint_name="e", inference_component="b"
    )
    assert space(provider="openai_compatible", base_url="https://a", model="m") != space(
        provider="openai_compatible", base_url="https://b", model="m"
    )


def test_the_lambda_validator_refuses_options_of_the_wrong_kind(
    doc: dict[str, Any], catalogue: dict[str, OptionFacts]
) -> None:
    validate(json.dumps(doc).encode(), catalogue)
    bad = copy.deepcopy(doc)
    _embed(bad)["chain"] = ["mock-echo"]
    with pytest.raises(InvalidFlagDocument, match="option 'mock-echo', which answers chat"):
        validate(json.dumps(bad).encode(), catalogue)


# -- the agent's answer ------------------------------------------------------------------------------


def test_the_answer_validator_applies_the_kind_rules(doc: dict[str, Any]) -> None:
    answer = evaluate_document(doc, {})
    routes = ("chat", "echo", "embed", "summarize")
    assert validate_evaluated(answer, routes=routes) == []
    answer["embed"]["kind"] = "vectors"
    answer["chat"]["skip_unsupported"] = "true"
    answer["echo"]["kind"] = "embeddings"
    answer["echo"]["degrade"] = ["static", "reject"]
    assert validate_evaluated(answer, routes=routes) == [
        "answer.chat.skip_unsupported: must be true or false (got string 'true')",
        "answer.echo: an embeddings route cannot degrade to 'static': a static text is not an embedding "
        "(use 'cache' and 'reject')",
        "answer.embed.kind: 'vectors' is not one of: chat, embeddings",
    ]


def test_a_disabled_embeddings_route_answers_no_kind(doc: dict[str, Any]) -> None:
    """AppConfig returns no attributes for a disabled flag: the gateway cannot learn its kind there."""
    off = copy.deepcopy(doc)
    off["values"]["embed"]["_variants"][0]["enabled"] = False
    answer = evaluate_document(off, {}, ["embed"])
    assert answer == {"embed": {"enabled": False, "_variant": "default"}}
    assert validate_evaluated(answer, routes=("embed",)) == []
    assert route_kinds(off)["embed"] == "embeddings"  # the document still says it
