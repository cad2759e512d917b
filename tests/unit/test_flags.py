"""Flag documents: the seed validates, evaluation picks the right variant, bad documents are refused.

Covers the three modules of a flag's life: the document (`switchboard.routing.document`, with the
value rules of `switchboard.routing.schema`), its evaluation by the agent emulator
(`switchboard_local.flag_evaluation`) and the gateway's decision (`switchboard.routing.decision`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.routing.decision import RouteDecision, decide_route
from switchboard.routing.document import (
    FlagDocumentError,
    load_document,
    load_option_catalogue,
    load_option_statuses,
    load_valid_document,
    option_statuses,
    validate_document,
)
from switchboard.routing.schema import validate_evaluated
from switchboard_local.flag_evaluation import UnknownFlagError, evaluate_document, evaluate_route

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ROOT / "config" / "flags.json"
OPTIONS = ROOT / "config" / "options.json"


@pytest.fixture
def doc() -> dict[str, Any]:
    return load_document(FLAGS)


@pytest.fixture
def option_ids() -> dict[str, str]:
    return load_option_statuses(OPTIONS)


# -- the seed ----------------------------------------------------------------------------------------


def test_seed_document_is_valid(doc: dict[str, Any], option_ids: dict[str, str]) -> None:
    assert validate_document(doc) == []
    assert validate_document(doc, option_ids) == []
    assert load_valid_document(FLAGS, option_ids) == doc


def test_option_statuses_default_active() -> None:
    assert option_statuses([{"id": "a"}, {"id": "b", "status": "retired"}, {"nope": 1}]) == {
        "a": "active",
        "b": "retired",
    }


def test_premium_and_standard_get_different_first_model(doc: dict[str, Any]) -> None:
    premium = evaluate_route(doc, "chat", {"tier": "premium", "tenant": "acme"})
    standard = evaluate_route(doc, "chat", {"tier": "standard", "tenant": "acme"})
    assert premium.variant == "premium"
    assert standard.variant == "default"
    assert premium.chain[0] != standard.chain[0]
    assert premium.chain == ("claude-sonnet-us", "claude-sonnet-eu", "claude-haiku-us")
    assert premium.cache_ttl_s == 300
    assert "cache" in premium.degrade


def test_no_match_gives_default_variant(doc: dict[str, Any]) -> None:
    result = evaluate_document(doc, {})
    assert {k: v.get("_variant") for k, v in result.items()} == {
        "chat": "default",
        "summarize": "default",
        "echo": "default",
        "embed": "default",
        "tuned": "default",
        "kill-switch": None,  # plain flags carry no variant
        "force-degraded": None,
    }
    assert result["chat"]["enabled"] is True
    assert result["chat"]["chain"] == ["claude-haiku-us", "nova-lite-us"]


def test_evaluated_shape_matches_agent_output(doc: dict[str, Any]) -> None:
    result = evaluate_document(doc, {"tier": "premium"}, ["chat"])
    assert list(result) == ["chat"]
    chat = result["chat"]
    assert chat["enabled"] is True and chat["_variant"] == "premium"
    assert set(chat) == {
        "enabled",
        "_variant",
        "chain",
        "degrade",
        "smaller_chain",
        "static_answer",
        "context_fallback",
        "cache_ttl_s",
    }
    json.dumps(result)  # serialisable as the agent's body
    # evaluation hands out copies: mutating an answer never changes the document
    chat["chain"].append("x")
    assert "x" not in evaluate_document(doc, {"tier": "premium"}, ["chat"])["chat"]["chain"]


def test_summarize_canary_is_about_ten_percent_and_sticky(doc: dict[str, Any]) -> None:
    variants = [evaluate_route(doc, "summarize", {"userId": f"user-{i}"}).variant for i in range(5000)]
    share = variants.count("nova-canary") / len(variants)
    assert 0.08 <= share <= 0.12
    assert evaluate_route(doc, "summarize", {"userId": "user-7"}) == evaluate_route(
        doc, "summarize", {"userId": "user-7"}
    )


def test_flag_filter_and_unknown_flag(doc: dict[str, Any]) -> None:
    assert list(evaluate_document(doc, {}, ["echo", "chat", "echo"])) == ["echo", "chat"]
    with pytest.raises(UnknownFlagError) as info:
        evaluate_document(doc, {}, ["chat", "nope"])
    assert info.value.keys == ["nope"]
    with pytest.raises(UnknownFlagError):
        evaluate_route(doc, "nope", {})


# -- evaluation semantics ----------------------------------------------------------------------------


def _doc_with(values: dict[str, Any], attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    attrs = attributes if attributes is not None else {"chain": {"constraints": {"type": "array"}}}
    return {"version": "1", "flags": {"r": {"name": "r", "attributes": attrs}}, "values": {"r": values}}


def test_matching_disabled_variant_wins_and_yields_disabled() -> None:
    d = _doc_with(
        {
            "_variants": [
                {"name": "off-for-acme", "enabled": False, "rule": '(eq $tenant "acme")'},
                {"name": "default", "enabled": True, "attributeValues": {"chain": ["m1"]}},
            ]
        }
    )
    assert validate_document(d) == []
    assert evaluate_document(d, {"tenant": "acme"}) == {"r": {"enabled": False, "_variant": "off-for-acme"}}
    assert evaluate_document(d, {"tenant": "other"}) == {
        "r": {"enabled": True, "chain": ["m1"], "_variant": "default"}
    }
    off = decide_route(evaluate_document(d, {"tenant": "acme"})["r"])
    assert off == RouteDecision(variant="off-for-acme", enabled=False, chain=())


def test_disabled_variant_attributes_are_not_returned() -> None:
    d = _doc_with(
        {"_variants": [{"name": "default", "enabled": False, "attributeValues": {"chain": ["m1"]}}]}
    )
    assert evaluate_document(d, {}) == {"r": {"enabled": False, "_variant": "default"}}


def test_plain_flags_have_no_variant_key() -> None:
    d = {
        "version": "1",
        "flags": {
            "on": {"name": "on", "attributes": {"level": {"constraints": {"type": "number"}}}},
            "off": {"name": "off"},
            "unset": {"name": "unset"},
        },
        "values": {"on": {"enabled": True, "level": 3}, "off": {"enabled": False}},
    }
    assert validate_document(d) == []
    assert evaluate_document(d, {}) == {
        "on": {"enabled": True, "level": 3},
        "off": {"enabled": False},
        "unset": {"enabled": False},
    }


def test_split_variants_share_one_seed_cumulatively() -> None:
    d = _doc_with(
        {
            "_variants": [
                {"name": "a", "enabled": True, "rule": '(split pct::10 by::$userId seed::"s")',
                 "attributeValues": {"chain": ["a"]}},
                {"name": "b", "enabled": True, "rule": '(split pct::30 by::$userId seed::"s")',
                 "attributeValues": {"chain": ["b"]}},
                {"name": "default", "enabled": True, "attributeValues": {"chain": ["c"]}},
            ]
        }
    )  # fmt: skip
    names = [evaluate_document(d, {"userId": str(i)})["r"]["_variant"] for i in range(10_000)]
    assert 850 <= names.count("a") <= 1150
    assert 1800 <= names.count("b") <= 2200


def test_decide_route_fields_and_errors() -> None:
    decision = decide_route(
        {
            "enabled": True,
            "_variant": "v",
            "chain": ["a", "b"],
            "degrade": ["static", "reject"],
            "static_answer": "busy",
            "context_fallback": "big",
            "cache_ttl_s": 60.0,
        }
    )
    assert decision == RouteDecision(
        variant="v",
        enabled=True,
        chain=("a", "b"),
        degrade=("static", "reject"),
        smaller_chain=(),
        static_answer="busy",
        context_fallback="big",
        cache_ttl_s=60,
    )
    assert decision.to_dict()["chain"] == ["a", "b"]
    with pytest.raises(ValueError, match="no chain"):
        decide_route({"enabled": True, "_variant": "v"})
    with pytest.raises(ValueError, match="no chain"):
        decide_route({"enabled": True, "chain": []})
    with pytest.raises(ValueError, match="list of strings"):
        decide_route({"enabled": True, "chain": "a"})


# -- loading -----------------------------------------------------------------------------------------


def test_load_document_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1",\n "flags": {')
    with pytest.raises(FlagDocumentError, match=r"not valid JSON: .*line 2"):
        load_document(bad)
    with pytest.raises(FlagDocumentError, match="cannot read"):
        load_document(tmp_path / "missing.json")
    arr = tmp_path / "arr.json"
    arr.write_text("[]")
    with pytest.raises(FlagDocumentError, match="must be a JSON object"):
        load_document(arr)


def test_load_valid_document_carries_problems(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"version": "2", "flags": {"on": {"name": "on"}}, "values": {}}))
    with pytest.raises(FlagDocumentError) as info:
        load_valid_document(path)
    assert info.value.problems == ['document: "version" must be the string "1" (got \'2\')']
    assert "version" in str(info.value)


# -- bad documents -----------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _variants(d: dict[str, Any], flag: str = "chat") -> list[dict[str, Any]]:
    variants: list[dict[str, Any]] = d["values"][flag]["_variants"]
    return variants


def _set(path: str, value: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = d
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(path: str) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = d
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[int(last) if isinstance(node, list) else last]

    return apply


def _move_default_first(d: dict[str, Any]) -> None:
    _variants(d).reverse()


def _two_defaults(d: dict[str, Any]) -> None:
    del _variants(d)[0]["rule"]


def _too_many_attributes(d: dict[str, Any]) -> None:
    for i in range(25):
        d["flags"]["echo"]["attributes"][f"extra{i}"] = {"constraints": {"type": "string"}}


def _duplicate_variant_name(d: dict[str, Any]) -> None:
    _variants(d)[0]["name"] = "default"


def _undeclared_value_flag(d: dict[str, Any]) -> None:
    d["values"]["ghost"] = {"enabled": True}


def _unknown_degrade_word(d: dict[str, Any]) -> None:
    # loosen the attribute's own enum so that only Switchboard's degrade check can catch it
    d["flags"]["echo"]["attributes"]["degrade"]["constraints"] = {"type": "array"}
    _variants(d, "echo")[0]["attributeValues"]["degrade"] = ["retry"]


CHAT0 = "values/chat/_variants/0/attributeValues"
CHAT1 = "values/chat/_variants/1/attributeValues"
ECHO0 = "values/echo/_variants/0/attributeValues"

BAD_DOCUMENTS: list[tuple[str, Mutation, str]] = [
    ("version", _set("version", 1), '"version" must be the string "1"'),
    ("top-level key", _set("extra", {}), "unknown key(s) 'extra'"),
    ("flag key", _set("flags/Bad Key", {"name": "x"}), "flag key 'Bad Key' is invalid"),
    ("attribute key", _set("flags/echo/attributes/9lives", {}), "attribute key '9lives' is invalid"),
    ("attribute count", _too_many_attributes, "29 attributes, at most 25"),
    (
        "constraint type",
        _set("flags/echo/attributes/degrade/constraints/type", "list"),
        "'type' must be one of",
    ),
    (
        "pattern+enum",
        _set(
            "flags/chat/attributes/static_answer/constraints",
            {"type": "string", "pattern": "x", "enum": ["a"]},
        ),
        "not both",
    ),
    (
        "bad pattern",
        _set("flags/chat/attributes/static_answer/constraints/pattern", "("),
        "not a valid regex",
    ),
    (
        "min > max",
        _set("flags/chat/attributes/cache_ttl_s/constraints/minimum", 100000),
        "greater than maximum",
    ),
    ("number max", _set(CHAT0 + "/cache_ttl_s", 90000), "above the maximum 86400"),
    ("number type", _set(CHAT0 + "/cache_ttl_s", "300"), "must be a number"),
    ("element pattern", _set(CHAT1 + "/chain", ["Bad Id"]), "does not match the pattern"),
    ("element enum", _set(ECHO0 + "/degrade", ["retry"]), "'retry' is not one of"),
    ("array type", _set(ECHO0 + "/chain", "mock-echo"), "must be an array"),
    ("required", _delete(ECHO0 + "/chain"), "required attribute 'chain' is missing"),
    (
        "disabled route, empty chain",
        _set(
            "values/echo/_variants/0", {"name": "default", "enabled": False, "attributeValues": {"chain": []}}
        ),
        "non-empty 'chain'",
    ),
    ("undeclared attr", _set(ECHO0 + "/colour", "red"), "'colour' is not declared"),
    ("mixed array", _set(ECHO0 + "/chain", ["a", 1]), "only strings or only numbers"),
    ("empty chain", _set(ECHO0 + "/chain", []), "non-empty 'chain'"),
    ("variants empty", _set("values/echo/_variants", []), "non-empty list of variants"),
    ("variant name", _set("values/chat/_variants/0/name", ""), "'name' must be a non-empty string"),
    ("duplicate name", _duplicate_variant_name, "variant name 'default' is used more than once"),
    ("enabled type", _set("values/chat/_variants/0/enabled", "yes"), "'enabled' must be true or false"),
    ("rule syntax", _set("values/chat/_variants/0/rule", "(eq $tier"), "rule does not parse: missing ')'"),
    ("rule empty", _set("values/chat/_variants/0/rule", " "), "'rule' must be a non-empty string"),
    ("no default", _set("values/chat/_variants/1/rule", "(eq 1 1)"), "needs a default variant"),
    ("default first", _move_default_first, "default variant (no rule) must be the last"),
    ("two defaults", _two_defaults, "exactly one default variant"),
    ("variant key", _set("values/chat/_variants/0/weight", 3), "unknown key(s) 'weight'"),
    ("enabled+variants", _set("values/chat/enabled", True), "carries its values in the variants"),
    ("undefined flag value", _undeclared_value_flag, "there is no flag 'ghost'"),
    ("route without value", _delete("values/echo"), "route flag 'echo' has no value"),
    (
        "degrade word",
        _unknown_degrade_word,
        "unknown step(s) 'retry'",
    ),
    (
        "reject not last",
        _set("values/summarize/_variants/0/attributeValues/degrade", ["reject", "static"]),
        "'reject' must be the last",
    ),
    (
        "smaller without chain",
        _delete(CHAT0 + "/smaller_chain"),
        "'smaller_model' needs a non-empty 'smaller_chain'",
    ),
    (
        "static without answer",
        _delete(CHAT1 + "/static_answer"),
        "'static' needs a non-empty 'static_answer'",
    ),
    ("plain enabled", _set("values/echo", {"chain": ["mock-echo"]}), "'enabled' must be true or false"),
    ("flag name", _set("flags/echo/name", "x" * 65), "'name' must be 1 to 64 characters"),
    ("not an object", _set("values/echo", []), "must be an object, not array"),
]


@pytest.mark.parametrize(("label", "mutate", "expected"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS])
def test_bad_documents_are_rejected(doc: dict[str, Any], label: str, mutate: Mutation, expected: str) -> None:
    bad = copy.deepcopy(doc)
    mutate(bad)
    problems = validate_document(bad)
    assert problems, label
    assert any(expected in p for p in problems), problems


def test_all_problems_are_reported_at_once(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    bad["version"] = "2"
    _variants(bad)[0]["rule"] = "(bogus)"
    _variants(bad, "echo")[0]["attributeValues"]["chain"] = []
    problems = validate_document(bad)
    assert len(problems) >= 3
    assert any("values.chat._variants[0] (premium): rule does not parse" in p for p in problems)


def test_not_a_document() -> None:
    assert validate_document([]) == ["the document must be a JSON object, not array"]
    assert validate_document({"version": "1", "flags": {"on": {"name": "on"}}}) == []  # values are optional
    # The agent would answer {} for a profile without flags, and the gateway refuses that answer.
    assert validate_document({"version": "1"}) == [
        "document: 'flags' is empty: a routing profile needs at least one flag"
    ]


def test_unknown_and_retired_options_are_reported(doc: dict[str, Any], option_ids: dict[str, str]) -> None:
    statuses = dict(option_ids)
    statuses["claude-sonnet-eu"] = "retired"
    del statuses["nova-micro-us"]
    statuses["claude-haiku-us"] = "draining"  # draining is still allowed
    problems = validate_document(doc, statuses)
    assert (
        "values.chat._variants[0] (premium).attributeValues: chain names retired option 'claude-sonnet-eu'"
        in (problems)
    )
    assert any("smaller_chain names unknown option 'nova-micro-us'" in p for p in problems)
    assert not any("claude-haiku-us" in p for p in problems)


def test_context_fallback_option_is_checked(doc: dict[str, Any], option_ids: dict[str, str]) -> None:
    bad = copy.deepcopy(doc)
    _variants(bad)[1]["attributeValues"]["context_fallback"] = "gone-model"
    problems = validate_document(bad, option_ids)
    where = "values.chat._variants[1] (default).attributeValues"
    assert problems == [f"{where}: context_fallback names unknown option 'gone-model'"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


JUNK_PLACES = [
    "flags",
    "values",
    "flags/chat",
    "flags/chat/attributes/chain",
    "flags/chat/attributes/chain/constraints",
    "values/chat",
    "values/chat/_variants",
    "values/chat/_variants/0",
    CHAT0,
    CHAT0 + "/chain",
    CHAT0 + "/degrade",
    CHAT0 + "/kind",
    CHAT0 + "/skip_unsupported",
    "values/embed/_variants/0/attributeValues/kind",
    "values/embed/_variants/0/attributeValues/degrade",
    "values/embed/_variants/0/attributeValues/chain",
    "flags/embed/attributes/kind",
]


@settings(max_examples=200, deadline=None)
@given(junk=_json, where=st.sampled_from(JUNK_PLACES))
def test_validator_never_crashes_on_junk(junk: Any, where: str) -> None:
    bad = load_document(FLAGS)
    _set(where, junk)(bad)
    problems = validate_document(bad, load_option_catalogue(OPTIONS))
    assert all(isinstance(p, str) for p in problems)
    if not problems:  # whatever validates must evaluate, to an answer the gateway accepts
        answer = evaluate_document(bad, {"tier": "premium", "userId": "u"})
        assert validate_evaluated(answer, routes=ROUTES) == []


ROUTES = ("chat", "summarize", "echo", "embed", "tuned")
_context = st.dictionaries(
    st.sampled_from(["tier", "tenant", "userId", "route", "other"]), st.text(max_size=20), max_size=5
)


@settings(max_examples=200, deadline=None)
@given(context=_context)
def test_the_seed_evaluates_to_a_valid_answer_for_any_context(context: dict[str, str]) -> None:
    answer = evaluate_document(load_document(FLAGS), context)
    assert validate_evaluated(answer, routes=ROUTES) == []
    assert validate_evaluated(json.loads(json.dumps(answer)), routes=ROUTES) == []


@settings(max_examples=300, deadline=None)
@given(
    junk=_json,
    flag=st.sampled_from(["chat", "kill-switch", "force-degraded", "echo", "embed"]),
    attribute=st.sampled_from(
        ["", "enabled", "chain", "degrade", "options", "routes", "_variant", "kind", "skip_unsupported"]
    ),
)
def test_answer_validator_never_crashes_on_junk(junk: Any, flag: str, attribute: str) -> None:
    answer = evaluate_document(load_document(FLAGS), {"tier": "premium"})
    if attribute:
        answer[flag][attribute] = junk
    else:
        answer[flag] = junk
    problems = validate_evaluated(answer, routes=ROUTES)
    assert all(isinstance(p, str) for p in problems)
    if not problems and flag in ROUTES:  # whatever validates decides without raising
        decide_route(answer[flag])


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("kill-switch", {"enabled": True, "options": "claude-haiku-us"}, "options: must be an array"),
        ("kill-switch", {"enabled": True, "providers": "bedrock"}, "providers: must be an array"),
        ("force-degraded", {"enabled": True, "routes": "chat"}, "routes: must be an array"),
        (
            "kill-switch",
            {"enabled": True, "options": ["no-such-option"]},
            "names unknown option 'no-such-option'",
        ),
    ],
)
def test_operator_flags_are_checked_even_without_declared_constraints(
    doc: dict[str, Any], option_ids: dict[str, str], flag: str, value: dict[str, Any], expected: str
) -> None:
    """A string read as a list would be a kill switch that silently does nothing."""
    bad = copy.deepcopy(doc)
    for attribute in bad["flags"][flag]["attributes"].values():
        attribute.pop("constraints", None)
    bad["values"][flag] = value
    problems = validate_document(bad, option_ids)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith(f"values.{flag}")


def test_route_attributes_are_typed_even_without_declared_constraints(doc: dict[str, Any]) -> None:
    bad = copy.deepcopy(doc)
    bad["flags"]["echo"]["attributes"]["chain"].pop("constraints")
    _echo = bad["values"]["echo"]["_variants"][0]["attributeValues"]
    _echo["chain"] = "mock-echo"
    problems = validate_document(bad)
    assert problems == [
        "values.echo._variants[0] (default).attributeValues.chain: must be an array (got string 'mock-echo')"
    ]


def test_a_fault_found_by_a_declared_constraint_and_a_gateway_rule_is_reported_once(
    doc: dict[str, Any],
) -> None:
    bad = copy.deepcopy(doc)
    bad["values"]["echo"]["_variants"][0]["attributeValues"]["chain"] = "mock-echo"
    problems = validate_document(bad)
    assert problems == [
        "values.echo._variants[0] (default).attributeValues.chain: must be an array (got string 'mock-echo')"
    ]


def test_a_kill_switch_may_name_a_retired_option(doc: dict[str, Any], option_ids: dict[str, str]) -> None:
    good = copy.deepcopy(doc)
    good["values"]["kill-switch"] = {"enabled": True, "providers": [], "options": ["old-model"]}
    assert validate_document(good, {**option_ids, "old-model": "retired"}) == []
