"""Failure modes of the options catalogue (one class per mode)."""

from __future__ import annotations

from typing import Any


class OptionsError(Exception):
    """Base class for options-catalogue failures."""


class OptionsUnavailable(OptionsError):
    """The options table cannot be read and there is no last-known-good snapshot to serve."""


class OptionNotFound(OptionsError, LookupError):
    """No option with this id."""

    def __init__(self, option_id: str) -> None:
        super().__init__(f"option {option_id!r} not found")
        self.option_id = option_id


class VersionConflict(OptionsError):
    """A conditional write lost: the stored version is not the one the caller expected.

    `current_version` is the stored version (None when the item does not exist or it is unknown).
    """

    def __init__(self, option_id: str, *, expected_version: int | None, current_version: int | None) -> None:
        if expected_version is None:
            message = f"option {option_id!r} already exists (version {current_version})"
        elif current_version is None:
            message = f"option {option_id!r} does not exist (expected version {expected_version})"
        else:
            message = f"option {option_id!r} is at version {current_version}, not {expected_version}"
        super().__init__(message)
        self.option_id = option_id
        self.expected_version = expected_version
        self.current_version = current_version


class InvalidOptions(OptionsError, ValueError):
    """A list of options (seed file, custom-resource property, CLI input) failed validation.

    `problems` holds one line per problem, without the offending input values (they may be secrets).
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
        self.source = source
        self.problems = problems


class OptionValidationError(ValueError):
    """One option (or breaker policy) failed validation.

    `problems` holds one `loc: message` line per problem (`<item>` for rules across fields), never
    the offending input values (they may be secrets).
    """

    def __init__(self, problems: list[str], *, model: str = "LlmOption") -> None:
        super().__init__(f"{model}: {len(problems)} problem(s): " + "; ".join(problems))
        self.model = model
        self.problems = problems


def describe_validation_error(exc: Any) -> list[str]:
    """`loc: message` lines for an `OptionValidationError` or a pydantic ValidationError.

    Never echoes input values.
    """
    if isinstance(exc, OptionValidationError):
        return list(exc.problems)
    lines: list[str] = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err.get("loc", ())) or "<item>"
        lines.append(f"{loc}: {err.get('msg', 'invalid')}")
    return lines
