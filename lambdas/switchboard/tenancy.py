"""Keys for stores that hold tenant data: one function, and it cannot be called without a tenant.

A store keyed by what a request says (the degraded-answer cache today; usage, budgets or prompt
caches later) must never hand one tenant's item to another tenant who sends the same thing. So the
key of every such item is built here, from the tenant first: two tenants sending identical content
get different keys, and there is no way to build a key that leaves the tenant out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["tenant_content_key"]


def tenant_content_key(*, tenant: str, scope: str, content: Any) -> str:
    """`{tenant}#{scope}#{sha256}` for `content` (any JSON value) stored on behalf of `tenant`.

    The digest covers tenant, scope and content together, JSON-encoded: no separator inside a tenant
    or scope name can make two different triples collide, and sorted object keys make equal content
    hash equal. The readable prefix lets an operator see whose item it is. `scope` names what the
    content is keyed under, e.g. the route.
    """
    if not isinstance(tenant, str) or not tenant:
        raise ValueError("a tenant-scoped key needs the tenant: got none")
    if not isinstance(scope, str) or not scope:
        raise ValueError("a tenant-scoped key needs a scope (e.g. the route)")
    material = json.dumps([tenant, scope, content], separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    digest = hashlib.sha256(material.encode("ascii")).hexdigest()
    return f"{tenant}#{scope}#{digest}"
