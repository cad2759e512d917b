"""Tools, structured outputs, images and embeddings over HTTP on the local stack, driven by the
official `openai` client the way applications and agent frameworks call it (issue 13).

Every option of the local stack is answered by the mock provider, whose behaviour is the contract
these tests hold the gateway to: a tool call with arguments generated from the tool's JSON Schema
while the last message is the user's, then a text answer that quotes every tool result; JSON that
validates against the requested schema; a text answer that counts the images and names their
media types; deterministic unit-length embeddings of `params.dimensions` (default 256) or fewer.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel, Field

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MOCK_DEFAULT_DIMENSIONS = 256

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 2, "maximum": 7},
                "hourly": {"type": "boolean"},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The local time in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}


def forecast(city: str, unit: str, days: int, hourly: bool = False) -> str:
    """The application's side of `get_weather`: a result the final answer must quote."""
    return f"{days}-day forecast for {city}: 18 degrees {unit}, sunny{' (hourly)' if hourly else ''}"


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    detail: dict[str, Any] = exc.response.json()["error"]
    return detail


# --- tools ------------------------------------------------------------------------------------------


def test_tool_round_trip_call_then_result_then_text(client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris this week?"}]

    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    first = raw.parse()

    assert raw.headers["x-switchboard-option"] == "claude-haiku-us"
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"  # `auto` after a user message: the first tool
    arguments = json.loads(call.function.arguments)
    assert arguments["city"] == "mock" and arguments["unit"] == "celsius"
    assert isinstance(arguments["days"], int) and 2 <= arguments["days"] <= 7
    assert set(arguments) <= {"city", "unit", "days", "hourly"}

    result = forecast(**arguments)
    messages.append(choice.message)  # the SDK's own message object, as the OpenAI cookbook does
    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    second = client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])

    answer = second.choices[0]
    assert answer.finish_reason == "stop"
    assert not answer.message.tool_calls
    assert answer.message.content is not None and result in answer.message.content


def test_parallel_tool_results_are_all_in_the_answer(client: openai.OpenAI) -> None:
    calls = [
        {"id": "call_paris", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        {"id": "call_tokyo", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    messages: Any = [
        {"role": "user", "content": "Weather in Paris and the time in Tokyo?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_paris", "content": "Paris: 18 degrees and sunny"},
        {"role": "tool", "tool_call_id": "call_tokyo", "content": "Tokyo: 21:04 JST"},
    ]

    completion = client.chat.completions.create(
        model="chat", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], parallel_tool_calls=True
    )

    text = completion.choices[0].message.content or ""
    assert "Paris: 18 degrees and sunny" in text and "Tokyo: 21:04 JST" in text
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("tool_choice", "called"),
    [
        ("required", "get_weather"),
        ({"type": "function", "function": {"name": "get_time"}}, "get_time"),
        ("none", None),
    ],
    ids=["required", "named", "none"],
)
def test_tool_choice_is_honoured(client: openai.OpenAI, tool_choice: Any, called: str | None) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Plan my day in Tokyo"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=tool_choice,
    )

    choice = completion.choices[0]
    if called is None:
        assert choice.finish_reason == "stop" and not choice.message.tool_calls
        assert choice.message.content
    else:
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls is not None
        assert [c.function.name for c in choice.message.tool_calls] == [called]


# --- structured outputs -----------------------------------------------------------------------------


class Forecast(BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=3, le=5)
    sunny: bool
    highs: list[float]


class Stop(BaseModel):
    name: str
    nights: int = Field(ge=1, le=14)


class Trip(BaseModel):
    """Nested models: the SDK's strict schema refers to them through `$defs` / `$ref`."""

    title: str
    weather: Forecast
    stops: list[Stop]


def test_json_schema_answer_parses_into_the_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="chat",
        messages=[{"role": "user", "content": "Forecast for Lisbon as JSON"}],
        response_format=Forecast,
    )

    message = completion.choices[0].message
    assert message.parsed is not None  # the SDK validated the content against Forecast
    forecast_ = message.parsed
    assert forecast_.city == "mock" and forecast_.unit == "celsius" and forecast_.sunny is True
    assert 3 <= forecast_.days <= 5 and len(forecast_.highs) == 1
    assert json.loads(message.content or "") == forecast_.model_dump()
    assert completion.choices[0].finish_reason == "stop"


def test_json_schema_with_nested_models_parses(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="chat",
        messages=[{"role": "user", "content": "Plan a trip as JSON"}],
        response_format=Trip,
    )

    trip = completion.choices[0].message.parsed
    assert trip is not None
    assert trip.weather.unit == "celsius" and len(trip.stops) == 1 and 1 <= trip.stops[0].nights <= 14


def test_json_object_answer_is_a_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Reply with a JSON object"}],
        response_format={"type": "json_object"},
    )

    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


# --- images -----------------------------------------------------------------------------------------


def _png(width: int = 1, height: int = 1) -> bytes:
    """A real PNG (signature, IHDR, one zlib IDAT of RGB rows, IEND) that image tools can open."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _gif() -> bytes:
    """A real 1x1 GIF89a: header, screen descriptor with a 2-colour table, one image, trailer."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
        + b"\x00\x00\x00\xff\xff\xff"
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00"
        + b"\x02\x02D\x01\x00"
        + b";"
    )


def _data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def test_image_data_url_is_seen_by_the_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": _data_url("image/png", _png(2, 2))}},
                ],
            }
        ],
    )

    text = completion.choices[0].message.content or ""
    assert re.search(r"\b1 image\b", text), text
    assert "image/png" in text


def test_two_images_of_two_types_are_counted_and_named(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image_url",
                        "image_url": {"url": _data_url("image/png", _png()), "detail": "low"},
                    },
                    {"type": "text", "text": "Compare these two."},
                    {"type": "image_url", "image_url": {"url": _data_url("image/gif", _gif())}},
                ],
            }
        ],
    )

    text = completion.choices[0].message.content or ""
    assert re.search(r"\b2 images\b", text), text
    assert "image/png" in text and "image/gif" in text


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://169.254.169.254/latest/meta-data"])
def test_remote_image_url_is_refused_with_a_400_that_says_send_a_data_url(
    client: openai.OpenAI, url: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
        )

    assert caught.value.status_code == 400
    error = _error(caught.value)
    assert error["type"] == "invalid_request_error"
    assert "data URL" in error["message"], error


# --- embeddings -------------------------------------------------------------------------------------


def _configured_dimensions(option_id: str) -> int:
    """What the mock provider answers for this option: its `params.dimensions`, else 256."""
    options = json.loads((ROOT / "config" / "options.json").read_text())
    option = next(o for o in options if o["id"] == option_id)
    return int(option.get("params", {}).get("dimensions", MOCK_DEFAULT_DIMENSIONS))


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_embeddings_default_encoding_is_base64_and_decodes_to_unit_vectors(client: openai.OpenAI) -> None:
    texts = ["The quick brown fox", "jumps over the lazy dog"]

    raw = client.embeddings.with_raw_response.create(model="embed", input=texts)  # SDK asks for base64
    response = raw.parse()

    wire = json.loads(raw.text)
    assert all(isinstance(item["embedding"], str) for item in wire["data"])  # base64 on the wire
    dimensions = _configured_dimensions(raw.headers["x-switchboard-option"])
    assert [item.index for item in response.data] == [0, 1]
    vectors = [item.embedding for item in response.data]
    assert [len(v) for v in vectors] == [dimensions, dimensions]
    assert all(abs(_norm(v) - 1.0) < 1e-3 for v in vectors)
    assert vectors[0] != vectors[1]
    assert response.object == "list" and response.usage.prompt_tokens > 0

    again = client.embeddings.create(model="embed", input=texts[0], encoding_format="float")
    assert again.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)  # float32 little-endian


def test_embeddings_as_floats_with_fewer_dimensions(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="embed", input=["alpha", "beta", "alpha"], encoding_format="float", dimensions=64
    )
    response = raw.parse()

    wire = json.loads(raw.text)
    assert all(isinstance(item["embedding"], list) for item in wire["data"])
    vectors = [item.embedding for item in response.data]
    assert [len(v) for v in vectors] == [64, 64, 64]
    assert all(abs(_norm(v) - 1.0) < 1e-6 for v in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]  # deterministic per text
    assert raw.headers["x-switchboard-route"] == "embed"


# --- route kinds ------------------------------------------------------------------------------------


def test_chat_route_on_embeddings_is_a_400_naming_its_kind(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="summarize", input="hello")

    error = _error(caught.value)
    assert error["code"] == "wrong_route_kind"
    assert "chat" in error["message"], error


def test_embeddings_route_on_chat_completions_is_a_400_naming_its_kind(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="embed", messages=[{"role": "user", "content": "hello"}])

    error = _error(caught.value)
    assert error["code"] == "wrong_route_kind"
    assert "embeddings" in error["message"], error


def test_models_says_which_routes_are_chat_and_which_embeddings(client: openai.OpenAI) -> None:
    kinds = {model.id: getattr(model, "kind", None) for model in client.models.list()}

    assert kinds["embed"] == "embeddings"
    assert {kinds[route] for route in ("chat", "summarize", "echo")} == {"chat"}
    assert set(kinds.values()) == {"chat", "embeddings"}
