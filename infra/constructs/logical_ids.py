"""Logical ids that survive splitting a construct: the split-out construct's id is left out of them.

CloudFormation knows a resource by its logical id, and CDK derives that id from the construct path
below the stack (the ids along the path plus a hash of it). Moving a resource under a new construct
changes its path, so the next deployment would create a new resource and delete the old one: an
empty deployments table, a new artifacts bucket, model package groups created again under names
that already exist, a new registry role ARN that ML engineers' profiles do not name, a Standard
state machine deleted under its running deployments. :func:`keep_logical_ids` gives every
resource below a construct the logical id it had before that construct was introduced, so the
split is a no-op for the deployed stack.

Two constructs made transparent this way under one parent must not hold children with the same id:
their resources would then share a logical id, and CDK refuses the template
("section 'Resources' already contains ...").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import jsii
from aws_cdk import Aspects, CfnElement, IAspect, Stack
from constructs import Construct, IConstruct

_HIDDEN_ID = "Default"
_HIDDEN_FROM_HUMAN_ID = "Resource"
_HASH_LEN = 8
_MAX_HUMAN_LEN = 240
_MAX_ID_LEN = 255


def cdk_logical_id(components: Sequence[str]) -> str:
    """The logical id CDK allocates to the element at this path below its stack.

    CDK's ``makeUniqueId`` (aws-cdk-lib ``core/lib/private/uniqueid.ts``, which ``Stack``'s
    ``allocateLogicalId`` calls): ``Default`` ids drop out; a single component is used as is;
    otherwise the alphanumeric ids (``Resource`` left out, a component that the previous one ends
    with dropped) followed by the first 8 hex digits of the MD5 of the ``/``-joined path.
    ``tests/infra/test_logical_ids.py`` checks it against CDK's own result.
    """
    path = [c for c in components if c != _HIDDEN_ID]
    if not path:
        raise ValueError("a logical id needs at least one path component")
    if len(path) == 1 and len(_alphanumeric(path[0])) <= _MAX_ID_LEN:
        return _alphanumeric(path[0])
    digest = hashlib.md5("/".join(path).encode(), usedforsecurity=False).hexdigest()
    human: list[str] = []
    for component in path:
        if not human or not human[-1].endswith(component):
            human.append(component)
    readable = "".join(_alphanumeric(c) for c in human if c != _HIDDEN_FROM_HUMAN_ID)
    return readable[:_MAX_HUMAN_LEN] + digest[:_HASH_LEN].upper()


def logical_id(construct: IConstruct) -> str:
    """The final logical id of a construct's CloudFormation resource (overrides included), as
    cdk-nag prints it in finding ids such as ``Resource::<Id.Arn>/*``."""
    child = construct.node.default_child
    if not isinstance(child, CfnElement):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource")
    resolved = Stack.of(construct).resolve(child.logical_id)
    return str(resolved)


@jsii.implements(IAspect)
class _WithoutScopeId:
    """Overrides each element's logical id with the one its path gives without ``scope``'s id."""

    def __init__(self, scope: Construct) -> None:
        self._scope_path = scope.node.path

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnElement):
            return
        stack = Stack.of(node)
        scopes = node.node.scopes
        below_stack = scopes[[s.node.path for s in scopes].index(stack.node.path) + 1 :]
        components = [s.node.id for s in below_stack if s.node.path != self._scope_path]
        node.override_logical_id(cdk_logical_id(components))


def keep_logical_ids(scope: Construct) -> None:
    """Every CloudFormation element below ``scope`` keeps the logical id it would have without
    ``scope`` in its path (see the module docstring).

    Applied at once, so that cdk-nag acknowledgments computed next (:func:`logical_id`) name the
    final ids, and again at synthesis (an aspect) for elements added later, such as a role's
    default policy created by a grant.
    """
    aspect = _WithoutScopeId(scope)
    for node in scope.node.find_all():
        aspect.visit(node)
    Aspects.of(scope).add(aspect)


def _alphanumeric(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)
