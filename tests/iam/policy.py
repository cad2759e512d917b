"""An identity-policy evaluator: may this role perform `action` on `resource`?

What it implements, after the IAM User Guide ("Policy evaluation logic", "IAM JSON policy elements:
Action / NotAction / Resource / NotResource / Condition"):

- An explicit ``Deny`` that applies wins; otherwise an ``Allow`` that applies allows; otherwise the
  request is implicitly denied.
- ``Action``/``NotAction``: ``service:Action`` patterns with ``*`` and ``?``, case-insensitive.
- ``Resource``/``NotResource``: ``*`` alone matches everything (and is the only thing that matches a
  request for ``*``, i.e. an action without resource-level permissions). Otherwise ARNs are matched
  the way ``ArnLike`` is documented: the six colon-separated parts one by one, wildcards not crossing
  a colon, except in the last part (the resource, which may itself contain colons and slashes).
  Case-sensitive.
- ``Condition``: evaluated only for keys the caller supplies in `context` (e.g.
  ``iam:PassedToService`` for ``iam:PassRole``), with the String/Arn/Bool operators and their
  ``IfExists`` forms. Anything else is *not evaluable*: an Allow whose conditions cannot be evaluated
  still allows, a Deny likewise does not apply, and the decision says so (``unevaluated``), so the
  report can show it rather than hide it.

Out of scope (and not used by this project's roles): resource-based policies, permission boundaries,
session policies, SCPs/RCPs, managed policies (:mod:`iam.template` refuses roles that have them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

ConditionContext = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sid: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    allowed_by: tuple[Statement, ...] = ()
    denied_by: tuple[Statement, ...] = ()
    unevaluated: tuple[str, ...] = ()
    """Conditions that could not be evaluated (their statements were treated as described above)."""


def _strings(value: Any, element: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{element} must be a string or a list of strings after resolution, got {value!r}")


def parse_statement(raw: Mapping[str, Any]) -> Statement:
    """One statement of a policy document whose values are already resolved to strings."""
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError(f"statement has no valid Effect: {raw!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise ValueError(f"statement needs exactly one of Action and NotAction: {raw!r}")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise ValueError(f"statement needs exactly one of Resource and NotResource: {raw!r}")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise ValueError(f"an identity policy has no Principal: {raw!r}")
    return Statement(
        effect=effect,
        actions=_strings(raw["Action"], "Action") if "Action" in raw else None,
        not_actions=_strings(raw["NotAction"], "NotAction") if "NotAction" in raw else None,
        resources=_strings(raw["Resource"], "Resource") if "Resource" in raw else None,
        not_resources=_strings(raw["NotResource"], "NotResource") if "NotResource" in raw else None,
        conditions=dict(raw.get("Condition") or {}),
        sid=raw.get("Sid"),
    )


def parse_document(document: Mapping[str, Any]) -> list[Statement]:
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    return [parse_statement(s) for s in statements]


@lru_cache(maxsize=4096)
def _glob(pattern: str, *, cross_colon: bool, ignore_case: bool) -> re.Pattern[str]:
    any_run = ".*" if cross_colon else "[^:]*"
    any_one = "." if cross_colon else "[^:]"
    body = "".join(any_run if c == "*" else any_one if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """``s3:Get*`` matches ``s3:GetObject``; case-insensitive, as IAM compares action names."""
    return _glob(pattern, cross_colon=True, ignore_case=True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM's resource matching (see the module docstring)."""
    if pattern == "*":
        return True
    if resource == "*":
        return False  # only a bare "*" grants an action that has no resource-level permissions
    pattern_parts = pattern.split(":", 5)
    resource_parts = resource.split(":", 5)
    if len(pattern_parts) != 6 or len(resource_parts) != 6:
        if pattern.startswith("arn:") or resource.startswith("arn:"):
            return False  # an ARN has six parts; a pattern with fewer matches no ARN
        return _glob(pattern, cross_colon=True, ignore_case=False).fullmatch(resource) is not None
    for index, (p, r) in enumerate(zip(pattern_parts, resource_parts, strict=True)):
        last = index == 5
        if _glob(p, cross_colon=last, ignore_case=False).fullmatch(r) is None:
            return False
    return True


_STRING_OPERATORS = {
    "StringEquals": lambda v, p: v == p,
    "StringNotEquals": lambda v, p: v != p,
    "StringEqualsIgnoreCase": lambda v, p: v.lower() == p.lower(),
    "StringLike": lambda v, p: _glob(p, cross_colon=True, ignore_case=False).fullmatch(v) is not None,
    "ArnEquals": lambda v, p: v == p,
    "ArnLike": lambda v, p: resource_matches(p, v),
    "Bool": lambda v, p: v.lower() == str(p).lower(),
}
_NEGATED = {"StringNotEquals"}


def _condition_holds(operator: str, key: str, expected: Any, context: ConditionContext) -> bool | None:
    """True/False when evaluable; None when the operator or the key is unknown here."""
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    compare = _STRING_OPERATORS.get(base)
    if compare is None or key not in context:
        return None  # a key missing from `context` is unknown here, not absent from the request
    values = list(context[key])
    patterns = [expected] if not isinstance(expected, list) else expected
    if not values:
        return True if if_exists else (base in _NEGATED)
    if base in _NEGATED:
        return all(all(compare(v, str(p)) for p in patterns) for v in values)
    return any(any(compare(v, str(p)) for p in patterns) for v in values)


def _conditions(statement: Statement, context: ConditionContext) -> tuple[bool, list[str]]:
    """(all evaluable conditions hold, descriptions of the ones not evaluable)."""
    unevaluated: list[str] = []
    for operator, pairs in statement.conditions.items():
        for key, expected in pairs.items():
            holds = _condition_holds(operator, key, expected, context)
            if holds is None:
                unevaluated.append(f"{operator} {key} {expected!r} ({statement.sid or 'no Sid'})")
            elif not holds:
                return False, []
    return True, unevaluated


def _applies(statement: Statement, action: str, resource: str) -> bool:
    if statement.actions is not None:
        action_ok = any(action_matches(p, action) for p in statement.actions)
    else:
        action_ok = not any(action_matches(p, action) for p in statement.not_actions or ())
    if not action_ok:
        return False
    if statement.resources is not None:
        return any(resource_matches(p, resource) for p in statement.resources)
    return not any(resource_matches(p, resource) for p in statement.not_resources or ())


def evaluate(
    statements: Iterable[Statement],
    action: str,
    resource: str,
    context: ConditionContext | None = None,
) -> Decision:
    """The decision for one request (one action on one resource ARN, or ``*``)."""
    context = context or {}
    allows: list[Statement] = []
    denies: list[Statement] = []
    unevaluated: list[str] = []
    for statement in statements:
        if not _applies(statement, action, resource):
            continue
        holds, pending = _conditions(statement, context)
        if not holds:
            continue
        unevaluated.extend(pending)
        if statement.effect == "Deny":
            if not pending:
                denies.append(statement)
        else:
            allows.append(statement)
    if denies:
        return Decision(False, "explicit Deny", tuple(allows), tuple(denies), tuple(unevaluated))
    if allows:
        return Decision(True, "allowed", tuple(allows), (), tuple(unevaluated))
    return Decision(False, "no statement allows it (implicit deny)", (), (), tuple(unevaluated))


def _globs_intersect(a: str, b: str, *, cross_colon: bool) -> bool:
    """Is there a string both `a` and `b` (with ``*``/``?``) match?"""

    @cache
    def f(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            if f(i + 1, j):
                return True
            return j < len(b) and (cross_colon or b[j] != ":") and f(i, j + 1)
        if j < len(b) and b[j] == "*":
            if f(i, j + 1):
                return True
            return i < len(a) and (cross_colon or a[i] != ":") and f(i + 1, j)
        if i < len(a) and j < len(b) and (a[i] == b[j] or "?" in (a[i], b[j])):
            return f(i + 1, j + 1)
        return False

    return f(0, 0)


def patterns_intersect(policy_pattern: str, request_pattern: str) -> bool:
    """Could a resource matched by `request_pattern` be matched by `policy_pattern`?"""
    if policy_pattern == "*" or request_pattern == "*":
        return policy_pattern == "*"
    p_parts, r_parts = policy_pattern.split(":", 5), request_pattern.split(":", 5)
    if len(p_parts) != 6 or len(r_parts) != 6:
        return _globs_intersect(policy_pattern, request_pattern, cross_colon=True)
    return all(
        _globs_intersect(p, r, cross_colon=index == 5)
        for index, (p, r) in enumerate(zip(p_parts, r_parts, strict=True))
    )


def possibly_allowed(
    statements: Iterable[Statement],
    action: str,
    resource_pattern: str,
    context: ConditionContext | None = None,
) -> Decision:
    """For a request whose resource is only known as a pattern (a state's JSONPath parameter):
    allowed for *some* run-time value. Weaker than :func:`evaluate`; the run-time check is exact."""
    context = context or {}
    allows: list[Statement] = []
    unevaluated: list[str] = []
    for statement in statements:
        if statement.effect != "Allow" or statement.resources is None:
            continue
        if not any(action_matches(p, action) for p in statement.actions or ()):
            continue
        if not any(patterns_intersect(p, resource_pattern) for p in statement.resources):
            continue
        holds, pending = _conditions(statement, context)
        if holds:
            allows.append(statement)
            unevaluated.extend(pending)
    if allows:
        return Decision(True, "allowed for some run-time values", tuple(allows), (), tuple(unevaluated))
    return Decision(False, "no statement allows it for any run-time value", (), (), tuple(unevaluated))
