"""The deployable stacks."""

from infra.stacks.switchboard_stack import SwitchboardStack

__all__ = ["SwitchboardStack"]
