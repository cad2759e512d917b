"""The model-deployment machine's naming rule and its one polling-loop shape (statemachines/README.md).

Given `statemachines/model_deployment.asl.json`, when we read its states, then every Choice (and
nothing else) is named as a question ending in `?`, every transition names a state that exists, and
the endpoint and adapter polling loops are the same loop state by state, differing only in what
they describe and in their subject's own outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "model_deployment.asl.json"
STATES: dict[str, dict[str, Any]] = json.loads(ASL.read_text())["States"]
SUBJECTS = ("Endpoint", "Adapter")


def _targets(state: dict[str, Any]) -> Iterator[str]:
    for key in ("Next", "Default"):
        if key in state:
            yield state[key]
    for branch in (*state.get("Choices", []), *state.get("Catch", [])):
        yield branch["Next"]


def _loop(subject: str) -> dict[str, str]:
    """Role in the loop → state name, for one subject."""
    return {
        "start": f"StartPolling{subject}",
        "wait": f"WaitFor{subject}",
        "describe": f"Describe{subject}",
        "count": f"Count{subject}Poll",
        "settled": f"{subject}Settled?",
        "above_max": f"{subject}PollWaitAboveMax?",
        "use_max": f"UseMax{subject}PollWait",
        "gave_up": f"{subject}DidNotSettle",
    }


def test_every_choice_and_only_a_choice_ends_in_a_question_mark() -> None:
    wrong = [
        f"{name} ({state['Type']})"
        for name, state in STATES.items()
        if (state["Type"] == "Choice") != name.endswith("?")
    ]
    assert wrong == [], "Choice states end in '?', no other state does (statemachines/README.md)"


def test_every_transition_names_a_state() -> None:
    dangling = [(name, target) for name, state in STATES.items() for target in _targets(state)]
    assert [pair for pair in dangling if pair[1] not in STATES] == []


@pytest.mark.parametrize("subject", SUBJECTS)
def test_polling_loop_follows_the_shared_shape(subject: str) -> None:
    loop = _loop(subject)
    state = {role: STATES[name] for role, name in loop.items()}

    assert state["start"]["Type"] == "Pass"
    assert state["start"]["Parameters"] == {"count": 0, "wait_seconds.$": "$.settings.poll_seconds"}
    assert (state["start"]["ResultPath"], state["start"]["Next"]) == ("$.poll", loop["wait"])

    assert state["wait"] == {"Type": "Wait", "SecondsPath": "$.poll.wait_seconds", "Next": loop["describe"]}

    assert state["describe"]["Type"] == "Task"
    assert state["describe"]["Next"] == loop["count"]
    assert "ResultSelector" in state["describe"], "raw Describe* results carry datetimes (FACTS 7)"
    assert [c["ErrorEquals"] for c in state["describe"]["Catch"]] == [["States.ALL"]]

    assert state["count"]["Parameters"] == {
        "count.$": "States.MathAdd($.poll.count, 1)",
        "wait_seconds.$": "States.MathAdd($.poll.wait_seconds, $.poll.wait_seconds)",
    }
    assert (state["count"]["ResultPath"], state["count"]["Next"]) == ("$.poll", loop["settled"])

    # the subject's own outcomes first, then "too many polls", else wait again
    settled = state["settled"]
    assert settled["Choices"][-1] == {
        "Variable": "$.poll.count",
        "NumericGreaterThanEqualsPath": "$.settings.max_polls",
        "Next": loop["gave_up"],
    }
    assert settled["Default"] == loop["above_max"]
    assert state["gave_up"]["Type"] == "Pass"
    assert state["gave_up"]["Parameters"]["error"] == f"{subject}DidNotSettle"

    assert state["above_max"]["Choices"] == [
        {
            "Variable": "$.poll.wait_seconds",
            "NumericGreaterThanPath": "$.settings.max_poll_seconds",
            "Next": loop["use_max"],
        }
    ]
    assert state["above_max"]["Default"] == loop["wait"]
    assert state["use_max"]["Parameters"] == {
        "count.$": "$.poll.count",
        "wait_seconds.$": "$.settings.max_poll_seconds",
    }
    assert (state["use_max"]["ResultPath"], state["use_max"]["Next"]) == ("$.poll", loop["wait"])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_polling_loop_is_entered_only_through_its_start(subject: str) -> None:
    loop = _loop(subject)
    inside = set(loop.values())
    entering = {
        name
        for name, state in STATES.items()
        if name not in inside and any(target in inside for target in _targets(state))
    }
    assert entering, f"nothing starts the {subject} loop"
    for name in entering:
        assert set(_targets(STATES[name])) & inside == {loop["start"]}, name
