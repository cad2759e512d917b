"""SageMaker chat with the whole request (Stubber on a real sagemaker-runtime client): the messages
body with tools and images, tool-call answers, and what a container that cannot do them says."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    FunctionTool,
    ImagePart,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
)
from switchboard.providers.sagemaker import SageMakerEndpointProvider

pytestmark = pytest.mark.usefixtures("aws_credentials")

PNG_BASE64 = "iVBORw0KGgo="
LOOKUP = FunctionTool(
    name="lookup_order",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)


@pytest.fixture
def client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


@pytest.fixture
def provider(client: Any) -> SageMakerEndpointProvider:
    return SageMakerEndpointProvider(client_factory=lambda region: client)


@pytest.fixture
def sent(stubber: Stubber) -> list[dict[str, Any]]:
    """The JSON bodies the provider sent, captured before the Stubber checks the parameters."""
    bodies: list[dict[str, Any]] = []
    stubber.client.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: bodies.append(json.loads(params["Body"])),
    )
    return bodies


def _option(**overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "qwen-sm",
        "provider": ProviderKind.SAGEMAKER,
        "endpoint_name": "qwen-endpoint",
        "region": "us-east-1",
        "params": {"max_tokens": 256},
    }
    data.update(overrides)
    return LlmOption(**data)


def _body(payload: Any) -> dict[str, Any]:
    raw = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def _tool_request(**kwargs: Any) -> ChatRequest:
    messages = [
        ChatMessage("system", (TextPart("Long shared instructions.", cache=True),)),
        ChatMessage(
            "user", (TextPart("Where is order 42? Here is the receipt."), ImagePart("image/png", PNG_BASE64))
        ),
    ]
    return ChatRequest(messages=messages, tools=(LOOKUP,), **kwargs)


def _tool_answer(**usage_details: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-sm",
        "object": "chat.completion",
        "model": "Qwen/Qwen2.5-VL-7B-Instruct",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "chatcmpl-tool-1",
                            "type": "function",
                            "function": {"name": "lookup_order", "arguments": '{"order_id": "42"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320, **usage_details},
    }


def test_messages_body_with_tools_and_a_tool_call_answer(
    provider: SageMakerEndpointProvider, stubber: Stubber, sent: list[dict[str, Any]]
) -> None:
    # Given a component option and an agent request with an image, a cache hint and a required tool call
    stubber.add_response(
        "invoke_endpoint",
        _body(_tool_answer(prompt_tokens_details={"cached_tokens": 256})),
        {
            "EndpointName": "qwen-endpoint",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": ANY,
            "InferenceComponentName": "qwen-vl",
        },
    )
    request = _tool_request(tool_choice=ToolChoice("required"), parallel_tool_calls=True)

    # When
    result = provider.complete(_option(inference_component="qwen-vl"), request, timeout_s=10)

    # Then the body is the OpenAI request (no model: the option names none; no cache_control)
    assert sent == [
        {
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Long shared instructions."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Where is order 42? Here is the receipt."},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
                    ],
                },
            ],
            "max_tokens": 256,
            "tools": [
                {"type": "function", "function": {"name": "lookup_order", "parameters": LOOKUP.parameters}}
            ],
            "tool_choice": "required",
            "parallel_tool_calls": True,
        }
    ]
    assert result.tool_calls == (ToolCall("chatcmpl-tool-1", "lookup_order", '{"order_id": "42"}'),)
    assert (result.text, result.finish_reason) == ("", "tool_calls")
    assert (result.prompt_tokens, result.completion_tokens, result.cached_tokens) == (300, 20, 256)
    assert result.model == "Qwen/Qwen2.5-VL-7B-Instruct"


def test_response_format_and_model_go_out(
    provider: SageMakerEndpointProvider, stubber: Stubber, sent: list[dict[str, Any]]
) -> None:
    answer = {"choices": [{"message": {"content": '{"ok": true}'}, "finish_reason": "stop"}]}
    stubber.add_response("invoke_endpoint", _body(answer))
    request = ChatRequest(
        messages=[ChatMessage("user", "Status?")], response_format=ResponseFormat("json_object")
    )
    result = provider.complete(_option(model="lora-b"), request, 10)
    assert sent[0]["model"] == "lora-b"
    assert sent[0]["response_format"] == {"type": "json_object"}
    assert result.text == '{"ok": true}'


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (_tool_request(), ErrorClass.UNSUPPORTED),
        (
            ChatRequest(messages=[ChatMessage("user", "Hi")], response_format=ResponseFormat("json_object")),
            ErrorClass.UNSUPPORTED,
        ),
        (
            ChatRequest(messages=[ChatMessage("user", (ImagePart("image/png", PNG_BASE64),))]),
            ErrorClass.UNSUPPORTED,
        ),
    ],
)
def test_a_generate_shaped_answer_to_a_request_that_needs_more_than_text_is_unsupported(
    provider: SageMakerEndpointProvider, stubber: Stubber, request_: ChatRequest, expected: ErrorClass
) -> None:
    # Given a container that answers in TGI's generate shape: it never saw the tools/format/images
    stubber.add_response("invoke_endpoint", _body([{"generated_text": "Order 42 ships today."}]))
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), request_, 10)
    assert info.value.error_class is expected


VLLM_AUTO = json.dumps(
    {
        "object": "error",
        "message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "type": "BadRequestError",
        "code": 400,
    }
)
TGI_WANTS_INPUTS = (
    "Failed to deserialize the JSON body into the target type: missing field `inputs` at line 1 column 120"
)


@pytest.mark.parametrize(
    ("original_status", "original_message", "request_", "expected"),
    [
        (400, VLLM_AUTO, _tool_request(), ErrorClass.UNSUPPORTED),
        (400, VLLM_AUTO, ChatRequest(messages=[ChatMessage("user", "Hi")]), ErrorClass.BAD_REQUEST),
        (422, TGI_WANTS_INPUTS, _tool_request(), ErrorClass.UNSUPPORTED),
        (422, TGI_WANTS_INPUTS, ChatRequest(messages=[ChatMessage("user", "Hi")]), ErrorClass.UNAVAILABLE),
        (
            400,
            '{"message": "Qwen/Qwen2.5-7B-Instruct is not a multimodal model"}',
            ChatRequest(messages=[ChatMessage("user", (ImagePart("image/png", PNG_BASE64),))]),
            ErrorClass.UNSUPPORTED,
        ),
        (
            400,
            '{"message": "The tool_call_id chatcmpl-tool-9 does not match any tool call"}',
            _tool_request(),
            ErrorClass.BAD_REQUEST,
        ),
        (500, "tools are not supported", _tool_request(), ErrorClass.UNAVAILABLE),
    ],
)
def test_container_errors(
    provider: SageMakerEndpointProvider,
    stubber: Stubber,
    original_status: int,
    original_message: str,
    request_: ChatRequest,
    expected: ErrorClass,
) -> None:
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error ({original_status}) from primary: {original_message}",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": original_status, "OriginalMessage": original_message},
    )
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), request_, 10)
    assert info.value.error_class is expected
