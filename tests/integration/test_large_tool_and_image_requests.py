"""Images and long tool results travel by claim check like any large request (issue 13).

A request carrying a 600 KB image, or a 300 KB tool result, is far over the workflow input's share
of the 256 KiB state (`switchboard.state_budget`): the gateway stores it in the payload bucket and
the execution's input names it by reference; the invoke step reads it back whole (the mock says
how many images it got and quotes the tool result verbatim).
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import boto3

from switchboard.state_budget import INPUT_BUDGET_BYTES


def _png(min_bytes: int) -> bytes:
    """A valid PNG of noise-free pixels padded by a large, uncompressible text chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    filler = bytes((i * 7919) % 251 for i in range(min_bytes))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"pad\x00" + filler)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def _last_execution_input(gateway: Any) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    listed = sfn.list_executions(stateMachineArn=gateway.resources.state_machine_arn)["executions"]
    latest = max(listed, key=lambda e: e["startDate"])
    return json.loads(sfn.describe_execution(executionArn=latest["executionArn"])["input"])


def test_a_large_image_travels_by_claim_check_and_reaches_the_model_whole(gateway) -> None:
    image = base64.b64encode(_png(600_000)).decode()
    assert len(image) > INPUT_BUDGET_BYTES
    body = {
        "model": "chat",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
                ],
            }
        ],
    }
    status, _, answer = gateway.call("POST", "/v1/chat/completions", body)
    assert status == 200, answer
    assert "1 image" in answer["choices"][0]["message"]["content"]
    assert "image/png" in answer["choices"][0]["message"]["content"]
    assert _last_execution_input(gateway)["request"].keys() == {"$ref"}


def test_a_long_tool_result_travels_by_claim_check_and_is_answered_verbatim(gateway) -> None:
    result = "row;" * 75_000  # 300 KB of tool output
    tools = [{"type": "function", "function": {"name": "query", "parameters": {"type": "object"}}}]
    call = {"id": "call_1", "type": "function", "function": {"name": "query", "arguments": "{}"}}
    body = {
        "model": "chat",
        "tools": tools,
        "messages": [
            {"role": "user", "content": "Run the query"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": result},
        ],
    }
    status, _, answer = gateway.call("POST", "/v1/chat/completions", body)
    assert status == 200, answer
    message = answer["choices"][0]["message"]
    assert result in message["content"] and answer["choices"][0]["finish_reason"] == "stop"
    assert _last_execution_input(gateway)["request"].keys() == {"$ref"}
