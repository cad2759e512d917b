"""Agent frameworks pointed at the local stack, unchanged but for `base_url` and the key (issue 13):
LangChain's `ChatOpenAI(...).bind_tools(...)` and `OpenAIEmbeddings`, and the OpenAI Agents SDK's
`Agent` with a `@function_tool` on `OpenAIChatCompletionsModel`.

The mock provider behind every option calls the first tool while the last message is the user's and
answers text quoting every tool result after one, so each loop must end in one round with the
application's tool output in the final answer.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

MAX_ROUNDS = 4


def lookup_order(order_id: str, include_items: bool = False) -> str:
    """The application's tool: what the final answer must quote, built from the model's arguments."""
    return f"Order {order_id} shipped on 2026-11-28 via DHL{' (3 items)' if include_items else ''}"


# --- LangChain --------------------------------------------------------------------------------------


def test_langchain_chat_openai_runs_a_tool_loop_to_a_final_answer(stack: LocalStack) -> None:
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def order_status(order_id: str) -> str:
        """Look up where an order is."""
        return lookup_order(order_id)

    @tool
    def cancel_order(order_id: str, reason: str) -> str:
        """Cancel an order."""
        return f"cancelled {order_id}: {reason}"

    tools = {t.name: t for t in (order_status, cancel_order)}
    model = ChatOpenAI(
        base_url=f"{stack.url}/v1",
        api_key=DEV_KEY,
        model="chat",
        max_retries=0,
        timeout=30,
    ).bind_tools(list(tools.values()))
    messages: list[BaseMessage] = [
        SystemMessage("You are a support agent. Use the tools."),
        HumanMessage("Where is my order?"),
    ]

    tool_outputs: list[str] = []
    answer = model.invoke(messages)
    for _ in range(MAX_ROUNDS):
        assert isinstance(answer, AIMessage)
        if not answer.tool_calls:
            break
        messages.append(answer)
        for call in answer.tool_calls:
            output = tools[call["name"]].invoke(call["args"])
            tool_outputs.append(output)
            messages.append(ToolMessage(content=output, tool_call_id=call["id"]))
        answer = model.invoke(messages)

    assert tool_outputs == ["Order mock shipped on 2026-11-28 via DHL"]  # order_status("mock"), once
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert isinstance(answer.content, str) and tool_outputs[0] in answer.content
    assert answer.response_metadata.get("finish_reason") == "stop"


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output(stack: LocalStack, method: str) -> None:
    """`with_structured_output`: a `json_schema` response format, or a forced tool call."""
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class Ticket(BaseModel):
        title: str
        priority: Literal["high", "low"]
        estimate_days: int = Field(ge=2, le=9)

    model = ChatOpenAI(
        base_url=f"{stack.url}/v1",
        api_key=DEV_KEY,
        model="chat",
        max_retries=0,
        timeout=30,
    )

    ticket = model.with_structured_output(Ticket, method=method).invoke(
        "File a ticket: the login page is down"
    )

    assert isinstance(ticket, Ticket)
    assert ticket.title == "mock" and ticket.priority == "high" and 2 <= ticket.estimate_days <= 9


def test_langchain_openai_embeddings(stack: LocalStack) -> None:
    """`check_embedding_ctx_length=False`: send texts, not tiktoken token ids (tiktoken would fetch
    its encodings from the internet, and the models behind a route embed text)."""
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        base_url=f"{stack.url}/v1",
        api_key=DEV_KEY,
        model="embed",
        check_embedding_ctx_length=False,
        dimensions=32,
        max_retries=0,
    )

    documents = embeddings.embed_documents(["first document", "second document"])
    query = embeddings.embed_query("first document")

    assert [len(v) for v in documents] == [32, 32] and len(query) == 32
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-3 for v in (*documents, query))
    assert query == pytest.approx(documents[0], abs=1e-6) and documents[0] != documents[1]


# --- OpenAI Agents SDK ------------------------------------------------------------------------------


def test_openai_agents_sdk_agent_calls_a_function_tool_through_the_gateway(stack: LocalStack) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)  # no trace export: nothing leaves the machine
    calls: list[dict[str, Any]] = []

    @function_tool
    def find_order(order_id: str, include_items: bool) -> str:
        """Find an order by its id.

        Args:
            order_id: The order's id.
            include_items: Whether to count the items.
        """
        calls.append({"order_id": order_id, "include_items": include_items})
        return lookup_order(order_id, include_items)

    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)
        try:
            agent = Agent(
                name="support",
                instructions="Answer questions about orders with the find_order tool.",
                tools=[find_order],
                model=OpenAIChatCompletionsModel(model="chat", openai_client=client),
            )
            return await Runner.run(agent, "Where is my order?", max_turns=MAX_ROUNDS)
        finally:
            await client.close()

    result = asyncio.run(run())

    assert calls == [{"order_id": "mock", "include_items": True}]  # strict schema: both required
    assert isinstance(result.final_output, str)
    assert lookup_order("mock", True) in result.final_output
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
