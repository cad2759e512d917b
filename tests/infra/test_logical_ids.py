"""Logical ids that survive splitting a construct (infra/constructs/logical_ids.py).

Given resources at paths with the shapes CDK treats specially (`Default`, `Resource`, repeated
ids, non-alphanumerics, a lone top-level id), when we compute their ids ourselves, then we get
CDK's own; and when a construct is made transparent, its resources keep the ids they had without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, CfnResource, Stack
from constructs import Construct

from infra.constructs.logical_ids import cdk_logical_id, keep_logical_ids, logical_id

PATHS = [
    ("Table",),
    ("ModelDeployment", "DeploymentsTable", "Resource"),
    ("ModelDeployment", "Group-switchboard-support-llm"),
    ("ModelDeployment", "Artifacts", "Policy", "Resource"),
    ("Data", "Default", "Resource"),
    ("Functions", "FunctionsInvoke", "Invoke", "Resource"),
    ("A", "A", "A"),
    ("Monitoring", "Resource", "Default"),
]


def _resource_at(stack: Stack, path: tuple[str, ...]) -> CfnResource:
    scope: Construct = stack
    for component in path[:-1]:
        found = scope.node.try_find_child(component)
        scope = found if isinstance(found, Construct) else Construct(scope, component)
    return CfnResource(scope, path[-1], type="AWS::SNS::Topic")


@pytest.mark.parametrize("path", PATHS, ids="/".join)
def test_the_computed_id_is_cdks(path: tuple[str, ...]) -> None:
    stack = Stack(App(), "S")
    resource = _resource_at(stack, path)

    assert cdk_logical_id(path) == stack.get_logical_id(resource)


def test_a_transparent_construct_leaves_its_resources_ids_as_they_were(tmp_path: Path) -> None:
    # Given a resource's id before the split, and the same resource moved under a new construct
    before = Stack(App(), "S")
    flat = _resource_at(before, ("Lifecycle", "Table", "Resource"))
    app = App(outdir=str(tmp_path))
    after = Stack(app, "S")
    concern = Construct(Construct(after, "Lifecycle"), "Workflow")
    moved = _resource_at(after, ("Lifecycle", "Workflow", "Table", "Resource"))

    # When the new construct is made transparent
    keep_logical_ids(concern)

    # Then the moved resource has its old id at once (cdk-nag acknowledgments are computed next) ...
    assert moved.node.path == "S/Lifecycle/Workflow/Table/Resource"
    assert logical_id(concern.node.find_child("Table")) == before.get_logical_id(flat)
    # ... and a resource added to it later has its path's id without the construct at synthesis
    late = _resource_at(after, ("Lifecycle", "Workflow", "Topic", "Resource"))
    template = app.synth().get_stack_by_name("S").template
    assert set(template["Resources"]) == {
        before.get_logical_id(flat),
        cdk_logical_id(["Lifecycle", "Topic", "Resource"]),
    }
    assert after.resolve(late.logical_id) == cdk_logical_id(["Lifecycle", "Topic", "Resource"])
