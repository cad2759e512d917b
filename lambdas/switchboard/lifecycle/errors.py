"""Failure modes of the model lifecycle (one class per mode).

The class names reach the deployment state machine as Lambda ``errorType`` values, so the ASL can
``Catch`` them by name and the console shows them.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base class for model-lifecycle failures."""


class UnknownModelFamily(LifecycleError):
    """A model package group that is not one of the configured model families."""

    def __init__(self, group: str) -> None:
        super().__init__(f"model package group {group!r} is not a configured model family")
        self.group = group


class SmokeTestFailed(LifecycleError):
    """The new version did not answer a smoke invocation."""


class OptionMovedByAnotherDeployment(LifecycleError):
    """The gateway option no longer points at the version this deployment replaces.

    Another deployment (or an operator) changed it in between: this one must not overwrite it.
    """

    def __init__(self, option_id: str, *, expected: str | None, found: str | None) -> None:
        super().__init__(
            f"option {option_id!r} now serves {found or 'no model package'}, "
            f"not {expected or 'no model package'} as when this deployment was planned"
        )
        self.option_id = option_id
        self.expected = expected
        self.found = found


class RegionalDeploymentFailed(LifecycleError):
    """A version's rollout to one of its family's other regions failed (the message names the region);
    the workflow rolls back every region already moved, the home region included."""
