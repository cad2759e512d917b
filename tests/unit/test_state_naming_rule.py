"""One naming rule for Choice states in both machines (statemachines/README.md).

Given each `statemachines/*.asl.json`, every Choice is named as a question ending in `?`, no
other state is, and every transition names a state that exists: the console reads the same way in
the request workflow and the model-deployment workflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MACHINES = sorted((Path(__file__).resolve().parents[2] / "statemachines").glob("*.asl.json"))


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _states(state[key]["States"])


@pytest.mark.parametrize("machine", MACHINES, ids=lambda p: p.name)
def test_every_choice_and_only_a_choice_is_a_question(machine: Path) -> None:
    for name, state in _states(json.loads(machine.read_text())["States"]):
        assert (state["Type"] == "Choice") == name.endswith("?"), (machine.name, name, state["Type"])


@pytest.mark.parametrize("machine", MACHINES, ids=lambda p: p.name)
def test_every_transition_names_a_state(machine: Path) -> None:
    definition = json.loads(machine.read_text())
    names = {name for name, _ in _states(definition["States"])}
    assert definition["StartAt"] in names
    for name, state in _states(definition["States"]):
        targets = [state.get("Next"), state.get("Default")]
        targets += [b["Next"] for b in (*state.get("Choices", []), *state.get("Catch", []))]
        for target in filter(None, targets):
            assert target in names, (machine.name, name, target)
