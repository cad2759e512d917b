"""The shares of the workflow state add up to the cap, and error messages cannot eat them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchboard import state_budget as budget
from switchboard.errors import ErrorClass, ProviderError


def test_shares_add_up_to_the_step_functions_state_cap() -> None:
    total = (
        budget.INPUT_BUDGET_BYTES
        + budget.ANSWER_COPIES_IN_STATE * budget.ANSWER_INLINE_LIMIT_BYTES
        + budget.BOOKKEEPING_RESERVE_BYTES
    )
    assert total == budget.STATE_LIMIT_BYTES == 256 * 1024
    assert budget.INPUT_BUDGET_BYTES > 64 * 1024  # ordinary prompts stay inline


@given(st.text(max_size=5000))
def test_provider_error_messages_are_clipped_in_the_state(message: str) -> None:
    carried = ProviderError(ErrorClass.UNAVAILABLE, message).to_dict()["message"]
    assert len(carried) <= budget.ERROR_MESSAGE_LIMIT_CHARS
    if len(message) <= budget.ERROR_MESSAGE_LIMIT_CHARS:
        assert carried == message
    else:
        assert carried.endswith("(truncated)")


@given(st.text())
def test_json_size_never_undercounts_utf8(text: str) -> None:
    import json

    assert budget.json_size({"t": text}) >= len(
        json.dumps({"t": text}, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    )
