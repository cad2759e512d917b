"""Tenant prompt profiles: the document's checks, and applying a profile to a request.

Given hostile documents (any JSON, any bytes), checking never raises anything but the refusal and
never accepts what the model cannot hold; given any request, applying a profile never changes a
field the client set.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard import profiles
from switchboard.profiles import (
    MAX_PREFIX_CHARS,
    PERMISSIVE,
    ParameterDefaults,
    ProfileDocumentError,
    PromptProfile,
    TenantProfiles,
    apply_profile,
    document_problems,
    parse_document,
    parse_document_bytes,
)
from switchboard.providers.base import ChatMessage, ChatRequest, ImagePart, TextPart
from tests.hostile_json import hostile_values

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "config" / "profiles.json").read_text())


def doc(**tenants: Any) -> dict[str, Any]:
    return {"version": "1", "default": {}, "tenants": tenants}


def refused(document: Any, *fragments: str) -> list[str]:
    problems = document_problems(document)
    assert problems, f"accepted: {document!r}"
    text = "; ".join(problems)
    for fragment in fragments:
        assert fragment in text, text
    with pytest.raises(ProfileDocumentError):
        parse_document(document)
    return problems


# --- the sample and the model ---------------------------------------------------------------------


def test_the_sample_document_is_accepted_and_gives_acme_its_own_profile() -> None:
    parsed = parse_document_bytes((ROOT / "config" / "profiles.json").read_bytes())
    acme = parsed.for_tenant("acme")
    assert acme.system_prompt_prefix
    assert acme.defaults.temperature == 0.2
    assert parsed.for_tenant("someone-else") == parsed.default == PromptProfile()


def test_may_use_every_route_without_a_list_and_only_the_listed_ones_with_one() -> None:
    parsed = parse_document(doc(a={"routes": ["chat"]}, b={"routes": []}, c={}))
    assert parsed.for_tenant("a").may_use("chat")
    assert not parsed.for_tenant("a").may_use("summarize")
    assert not parsed.for_tenant("b").may_use("chat")
    assert parsed.for_tenant("c").may_use("anything")


def test_a_tenant_profile_replaces_the_default_whole() -> None:
    document = doc(a={"defaults": {"top_p": 0.5}})
    document["default"] = {"system_prompt_prefix": "Be kind.", "defaults": {"temperature": 1.0}}
    parsed = parse_document(document)
    assert parsed.for_tenant("a") == PromptProfile(defaults=ParameterDefaults(top_p=0.5))
    assert parsed.for_tenant("b").system_prompt_prefix == "Be kind."


def test_the_numeric_ranges_are_the_ones_the_api_accepts_from_a_client() -> None:
    from annotated_types import Ge, Le

    from switchboard.api_models import ROUTE_PATTERN, ChatCompletionRequest

    for name, (_, low, high) in profiles.PARAMETER_RANGES.items():
        metadata = ChatCompletionRequest.model_fields[name].metadata
        assert [m.ge for m in metadata if isinstance(m, Ge)] == [low], name
        assert [m.le for m in metadata if isinstance(m, Le)] == [high], name
    assert profiles.ROUTE_NAME.pattern == ROUTE_PATTERN


# --- refusals, each with a message that says where and why ----------------------------------------


@pytest.mark.parametrize(
    ("document", "fragments"),
    [
        ([], ["must be a JSON object"]),
        ({"version": "1"}, ["default: missing"]),
        ({**doc(), "version": 1}, ['version: must be "1"']),
        ({**doc(), "extra": 1}, ["extra: unknown key"]),
        (doc(acme={"prefix": "x"}), ["tenants.acme.prefix: unknown key"]),
        (doc(**{"Acme": {}}), ["tenants.'Acme': not a tenant id"]),
        (doc(**{"-x": {}}), ["not a tenant id"]),
        (doc(**{"a" * 65: {}}), ["not a tenant id"]),
        (doc(**{"a b": {}}), ["not a tenant id"]),
        (doc(acme=[]), ["tenants.acme: a profile must be an object"]),
        (doc(acme={"system_prompt_prefix": "x" * (MAX_PREFIX_CHARS + 1)}), ["at most 4000"]),
        (doc(acme={"system_prompt_prefix": 3}), ["must be a string"]),
        (doc(acme={"system_prompt_prefix": "a\x00b"}), ["control character U+0000"]),
        (doc(acme={"system_prompt_prefix": "a\ud800"}), ["lone surrogate"]),
        (doc(acme={"defaults": {"seed": 1}}), ["tenants.acme.defaults.seed: not a parameter"]),
        (doc(acme={"defaults": {"temperature": 2.5}}), ["temperature: 2.5 is outside 0..2"]),
        (doc(acme={"defaults": {"temperature": float("nan")}}), ["is outside"]),
        (doc(acme={"defaults": {"top_p": -0.1}}), ["top_p"]),
        (doc(acme={"defaults": {"temperature": True}}), ["must be a number, not a boolean"]),
        (doc(acme={"defaults": {"max_tokens": 10.5}}), ["must be a whole number"]),
        (doc(acme={"defaults": {"max_tokens": 0}}), ["outside 1..200000"]),
        (doc(acme={"defaults": {"max_tokens": "100"}}), ["must be a number, not a string"]),
        (doc(acme={"defaults": {"stop": "END"}}), ["list of 1 to 4 strings"]),
        (doc(acme={"defaults": {"stop": ["a", ""]}}), ["stop[1]"]),
        (doc(acme={"defaults": []}), ["must be an object of parameter"]),
        (doc(acme={"routes": "chat"}), ["must be a list of route names"]),
        (doc(acme={"routes": ["Chat"]}), ["routes[0]", "not a route name"]),
        (doc(acme={"routes": ["chat", "chat"]}), ["listed twice"]),
        ({**doc(), "tenants": []}, ["tenants: must be an object"]),
    ],
)
def test_a_bad_document_is_refused_naming_the_place(document: Any, fragments: list[str]) -> None:
    refused(document, *fragments)


def test_every_problem_is_listed_not_only_the_first() -> None:
    problems = refused(doc(a={"x": 1}, b={"defaults": {"temperature": 9}}, C={}))
    assert len(problems) == 3


def test_bytes_that_are_not_a_document_are_refused() -> None:
    for raw, fragment in [
        (b"\xff", "not UTF-8"),
        (b"{", "not JSON"),
        (b'{"version": "1", "default": {}, "default": {}}', "appears twice"),
        (b'{"version": "1", "default": {}, "tenants": {"a": {}, "a": {}}}', "'a' appears twice"),
        (b" " * (profiles.MAX_DOCUMENT_BYTES + 1), "at most"),
    ]:
        with pytest.raises(ProfileDocumentError, match=fragment):
            parse_document_bytes(raw)


def assert_within_the_model(parsed: TenantProfiles) -> None:
    """What an accepted document may hold: values a client could have sent, text that is text."""
    for profile in [parsed.default, *parsed.tenants.values()]:
        assert len(profile.system_prompt_prefix) <= MAX_PREFIX_CHARS
        profile.system_prompt_prefix.encode("utf-8")
        assert not any(c < " " and c not in "\t\n\r" for c in profile.system_prompt_prefix)
        for name, (kind, low, high) in profiles.PARAMETER_RANGES.items():
            value = getattr(profile.defaults, name)
            assert value is None or (isinstance(value, kind) and low <= value <= high)
        for route in profile.routes or ():
            assert profiles.ROUTE_NAME.match(route)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
profile_like = st.fixed_dictionaries(
    {},
    optional={
        "system_prompt_prefix": st.text(max_size=50) | json_values,
        "defaults": st.dictionaries(
            st.sampled_from(["temperature", "top_p", "max_tokens", "stop", "seed"]), json_values, max_size=4
        )
        | json_values,
        "routes": st.lists(st.text(max_size=8) | json_values, max_size=4) | json_values,
    },
)
documents = st.fixed_dictionaries(
    {"version": st.just("1") | json_values, "default": profile_like | json_values},
    optional={
        "tenants": st.dictionaries(st.text(max_size=10), profile_like | json_values, max_size=4) | json_values
    },
)


@settings(max_examples=300, deadline=None)
@given(document=documents | json_values)
def test_any_document_is_either_refused_or_parsed_into_values_the_api_accepts(document: Any) -> None:
    problems = document_problems(document)
    if problems:
        assert all(isinstance(p, str) and len(p) < 1000 for p in problems)
        with pytest.raises(ProfileDocumentError):
            parse_document(document)
        return
    parsed = parse_document(document)
    assert_within_the_model(parsed)
    # The same document as bytes, as AppConfig hands it over, parses alike.
    assert parse_document_bytes(json.dumps(document).encode()) == parsed


@settings(max_examples=150, deadline=None)
@given(raw=hostile_values)
def test_hostile_bytes_are_refused_with_the_documents_error_only(raw: str) -> None:
    with pytest.raises(ProfileDocumentError):
        parse_document_bytes(raw.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(raw=hostile_values)
def test_hostile_values_in_every_place_are_refused(raw: str) -> None:
    for template in (
        '{"version": "1", "default": {"system_prompt_prefix": %s}}',
        '{"version": "1", "default": {"defaults": {"temperature": %s}}}',
        '{"version": "1", "default": {"routes": [%s]}}',
        '{"version": "1", "default": {}, "tenants": {"acme": %s}}',
    ):
        try:
            parse_document_bytes((template % raw).encode("utf-8", "surrogatepass"))
        except ProfileDocumentError:
            continue
        # Only a value the model can hold may pass (e.g. a short string as a prefix, 0.333… as a
        # temperature, an empty object as a profile).
        assert_within_the_model(parse_document_bytes((template % raw).encode("utf-8", "surrogatepass")))


# --- applying a profile ---------------------------------------------------------------------------

ACME = PromptProfile(
    system_prompt_prefix="You are Acme's assistant.",
    defaults=ParameterDefaults(temperature=0.2, top_p=0.9, max_tokens=512, stop=("END",)),
)


def request(*messages: ChatMessage, **fields: Any) -> ChatRequest:
    return ChatRequest(messages=list(messages or [ChatMessage(role="user", content="hi")]), **fields)


def test_the_prefix_becomes_a_system_message_in_front_when_there_is_none() -> None:
    applied = apply_profile(ACME, request(ChatMessage(role="user", content="hi")))
    assert applied.messages == [
        ChatMessage(role="system", content="You are Acme's assistant."),
        ChatMessage(role="user", content="hi"),
    ]


def test_the_prefix_goes_into_the_clients_system_message_text() -> None:
    system = ChatMessage(role="system", content="Answer in French.", name="policy")
    applied = apply_profile(ACME, request(system, ChatMessage(role="user", content="hi")))
    assert applied.messages[0] == replace(system, content="You are Acme's assistant.\n\nAnswer in French.")
    assert applied.messages[1:] == [ChatMessage(role="user", content="hi")]


def test_the_prefix_goes_in_front_of_the_clients_system_parts_keeping_their_cache_hints() -> None:
    parts = (TextPart("Long shared context", cache=True),)
    system = ChatMessage(role="system", content=parts)
    applied = apply_profile(ACME, request(system, ChatMessage(role="user", content="hi")))
    assert applied.messages[0].content == (TextPart("You are Acme's assistant.\n\n"), *parts)


def test_a_system_message_that_is_not_first_gets_a_new_one_in_front() -> None:
    user, system = ChatMessage(role="user", content="hi"), ChatMessage(role="system", content="late")
    applied = apply_profile(ACME, request(user, system))
    assert applied.messages == [ChatMessage(role="system", content=ACME.system_prompt_prefix), user, system]


def test_defaults_fill_only_the_unset_fields() -> None:
    applied = apply_profile(ACME, request(temperature=0.0, stop=["STOP"]))
    assert (applied.temperature, applied.stop) == (0.0, ["STOP"])  # the client's, even when falsy
    assert (applied.top_p, applied.max_tokens) == (0.9, 512)


def test_the_permissive_profile_returns_the_request_itself() -> None:
    original = request(temperature=0.7)
    assert apply_profile(PERMISSIVE.default, original) is original


messages = st.lists(
    st.builds(
        ChatMessage,
        role=st.sampled_from(["system", "user", "assistant"]),
        content=st.text(max_size=20)
        | st.lists(
            st.builds(TextPart, st.text(max_size=10), st.booleans())
            | st.just(ImagePart(media_type="image/png", data_base64="iVBORw0KGgo=")),
            max_size=3,
        ).map(tuple),
    ),
    min_size=1,
    max_size=4,
)
profiles_strategy = st.builds(
    PromptProfile,
    system_prompt_prefix=st.text(max_size=30),
    defaults=st.builds(
        ParameterDefaults,
        temperature=st.none() | st.floats(0, 2),
        top_p=st.none() | st.floats(0, 1),
        max_tokens=st.none() | st.integers(1, 200_000),
        stop=st.none() | st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4).map(tuple),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    profile=profiles_strategy,
    sent=messages,
    temperature=st.none() | st.floats(0, 2),
    top_p=st.none() | st.floats(0, 1),
    max_tokens=st.none() | st.integers(1, 100),
    stop=st.none() | st.lists(st.text(max_size=3), max_size=2),
)
def test_applying_a_profile_never_overrides_what_the_client_sent(
    profile: PromptProfile,
    sent: list[ChatMessage],
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    stop: list[str] | None,
) -> None:
    original = ChatRequest(
        messages=sent, temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=stop, user="u"
    )
    snapshot = replace(original, messages=list(sent))
    applied = apply_profile(profile, original)
    assert original == snapshot  # pure
    for name in ("temperature", "top_p", "max_tokens", "stop"):
        sent_value, default = getattr(original, name), getattr(profile.defaults, name)
        expected = (
            sent_value
            if sent_value is not None
            else (list(default) if name == "stop" and default else default)
        )
        assert getattr(applied, name) == expected, name
    assert (applied.user, applied.tools, applied.tool_choice) == (
        original.user,
        original.tools,
        original.tool_choice,
    )
    # Every message the client sent is still there, in order, with its text at the end of its own.
    offset = len(applied.messages) - len(sent)
    assert offset in (0, 1)
    for mine, theirs in zip(applied.messages[offset:], sent, strict=True):
        assert (mine.role, mine.name, mine.tool_calls) == (theirs.role, theirs.name, theirs.tool_calls)
        assert mine.text.endswith(theirs.text)
        assert mine.images == theirs.images
    if profile.system_prompt_prefix:
        assert applied.messages[0].role == "system"
        assert applied.messages[0].text.startswith(profile.system_prompt_prefix)
    else:
        assert applied.messages == sent


def test_an_applied_request_survives_the_workflow_state_round_trip() -> None:
    """The seam: ChatService puts ``apply_profile(profile, body.to_chat_request())`` in the workflow
    input, which the invoke step and the streaming path read back with ``ChatRequest.from_dict``."""
    from switchboard.api_models import ChatCompletionRequest

    body = ChatCompletionRequest.model_validate(
        {
            "model": "chat",
            "messages": [
                {
                    "role": "developer",
                    "content": [
                        {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}
                    ],
                },
                {"role": "user", "content": "hi"},
            ],
            "temperature": 1.5,
        }
    )
    applied = apply_profile(ACME, body.to_chat_request())

    carried = ChatRequest.from_dict(json.loads(json.dumps(applied.to_dict())))

    assert carried == applied
    assert carried.messages[0].text == "You are Acme's assistant.\n\nBe terse."
    assert (carried.temperature, carried.top_p, carried.max_tokens, carried.stop) == (1.5, 0.9, 512, ["END"])
