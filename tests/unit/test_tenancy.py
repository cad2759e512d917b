"""Keys of tenant data: the tenant is part of every key, and no naming trick merges two tenants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.tenancy import tenant_content_key

names = st.text(min_size=1, max_size=30)
contents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def test_the_key_names_tenant_and_scope_then_a_digest() -> None:
    key = tenant_content_key(tenant="acme", scope="chat", content={"messages": [["user", "hi"]]})
    tenant, scope, digest = key.split("#")
    assert (tenant, scope) == ("acme", "chat")
    assert len(digest) == 64 and int(digest, 16) >= 0


@pytest.mark.parametrize("tenant", ["", None])
def test_no_tenant_no_key(tenant: str | None) -> None:
    with pytest.raises(ValueError, match="tenant"):
        tenant_content_key(tenant=tenant, scope="chat", content="x")  # type: ignore[arg-type]


def test_a_separator_in_a_name_does_not_merge_two_tenants() -> None:
    """`a#b` + `c` and `a` + `b#c` print the same prefix; the digest still tells them apart."""
    one = tenant_content_key(tenant="a#b", scope="c", content="x")
    two = tenant_content_key(tenant="a", scope="b#c", content="x")
    assert one.rsplit("#", 1)[0] == two.rsplit("#", 1)[0]
    assert one != two


@given(tenants=st.lists(names, min_size=2, max_size=2, unique=True), scope=names, content=contents)
@settings(max_examples=300, deadline=None)
def test_the_same_content_under_two_tenants_gets_two_keys(
    tenants: list[str], scope: str, content: object
) -> None:
    first, second = (tenant_content_key(tenant=t, scope=scope, content=content) for t in tenants)
    assert first != second


def test_equal_content_gets_the_same_key_whatever_the_order_of_its_object_keys() -> None:
    one = tenant_content_key(tenant="acme", scope="chat", content={"a": 1, "b": [1, 2]})
    two = tenant_content_key(tenant="acme", scope="chat", content={"b": [1, 2], "a": 1})
    assert one == two != tenant_content_key(tenant="acme", scope="chat", content={"a": 1, "b": [2, 1]})
