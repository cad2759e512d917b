"""An option's `price` (USD per million tokens) and `capacity` (rpm, tpm): issue 15's two knobs.

Given untrusted option data (CLI input, a stored item), `price` and `capacity` are nested models
checked like `breaker`: every problem is named as `price.<field>` / `capacity.<field>`, never a
500 or a silent default; valid ones survive a DynamoDB round trip unchanged.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from switchboard.contract import tables
from switchboard.options.errors import OptionValidationError
from switchboard.options.model import Capacity, LlmOption, Price, ProviderKind
from switchboard.options.store import OptionsStore

BASE = {"id": "m", "provider": "mock"}


def _problems(**fields: Any) -> list[str]:
    with pytest.raises(OptionValidationError) as info:
        LlmOption.from_dict({**BASE, **fields})
    return info.value.problems


def test_price_and_capacity_are_optional_and_unset_by_default() -> None:
    option = LlmOption.from_dict(BASE)
    assert option.price is None and option.capacity is None
    assert "price" not in option.to_item() and "capacity" not in option.to_item()


def test_a_valid_price_and_capacity_are_kept_as_nested_models() -> None:
    option = LlmOption.from_dict(
        {
            **BASE,
            "price": {"input": 3, "output": 15, "cached_input": 0.3},
            "capacity": {"rpm": 100, "tpm": 200000},
        }
    )
    assert option.price == Price(input=3.0, output=15.0, cached_input=0.3)
    assert option.capacity == Capacity(rpm=100, tpm=200000)
    assert option.to_item()["price"] == {"input": 3.0, "output": 15.0, "cached_input": 0.3}
    assert option.to_item()["capacity"] == {"rpm": 100, "tpm": 200000}
    # given as models too (the constructor and dataclasses.replace run the same checks)
    free = Price(input=0, output=0)
    assert LlmOption(id="m", provider=ProviderKind.MOCK, price=free).price == free


def test_price_problems_are_named_field_by_field() -> None:
    assert _problems(price={"input": -1, "output": "1", "extra": 2}) == [
        "price.extra: unknown field",
        "price.input: must be ≥ 0",
        "price.output: must be a number",
    ]
    assert _problems(price={}) == ["price.input: field required", "price.output: field required"]
    assert _problems(price=[1, 2]) == ["price: must be an object"]
    assert _problems(price={"input": True, "output": 1}) == ["price.input: must be a number"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.0001, 1_000_001, 10**400])
def test_a_price_that_is_not_a_finite_non_negative_list_price_is_refused(value: Any) -> None:
    problems = _problems(price={"input": 1, "output": 1, "cached_input": value})
    assert len(problems) == 1 and problems[0].startswith("price.cached_input: must be")


def test_capacity_problems_are_named_field_by_field() -> None:
    assert _problems(capacity={"rpm": 0, "tpm": 1.5}) == [
        "capacity.rpm: must be ≥ 1",
        "capacity.tpm: must be an integer",
    ]
    assert _problems(capacity={"rps": 1}) == ["capacity.rps: unknown field"]
    assert _problems(capacity="100") == ["capacity: must be an object"]
    assert _problems(capacity={"rpm": True}) == ["capacity.rpm: must be an integer"]
    # an integral float (as DynamoDB or JSON may give) is an integer
    assert LlmOption.from_dict({**BASE, "capacity": {"tpm": 5.0}}).capacity == Capacity(tpm=5)


@given(
    price=st.fixed_dictionaries(
        {"input": st.floats(0, 1_000_000), "output": st.floats(0, 1_000_000)},
        optional={"cached_input": st.floats(0, 1_000_000)},
    ),
    capacity=st.fixed_dictionaries(
        {}, optional={"rpm": st.integers(1, 10**9), "tpm": st.integers(1, 10**12)}
    ),
)
def test_any_valid_price_and_capacity_round_trip_through_to_item(
    price: dict[str, float], capacity: dict[str, int]
) -> None:
    option = LlmOption.from_dict({**BASE, "price": price, "capacity": capacity})
    assert LlmOption.from_dict(option.to_item()) == option


def test_price_and_capacity_survive_the_options_table(aws_credentials: None) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="options",
            KeySchema=[{"AttributeName": tables.OPTIONS_PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": tables.OPTIONS_PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        store = OptionsStore("options", client=client, ttl_s=0)
        option = LlmOption.from_dict(
            {**BASE, "price": {"input": 0.06, "output": 0.24, "cached_input": 0.015}, "capacity": {"rpm": 7}}
        )
        store.put(option, expected_version=None, updated_by="t")
        (stored,) = store.all()
        assert (stored.price, stored.capacity) == (option.price, option.capacity)
