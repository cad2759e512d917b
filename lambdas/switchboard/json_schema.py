"""JSON Schema for structured outputs and tool arguments (placeholder until the validator lands)."""

from __future__ import annotations

from typing import Any


def check_schema(schema: Any) -> list[str]:
    """Problems that make `schema` unusable for validating answers (empty: usable)."""
    return [] if isinstance(schema, dict) else ["a schema must be a JSON object"]


def validate(instance: Any, schema: Any) -> list[str]:
    """Where `instance` breaks `schema` (empty: it validates)."""
    return []
