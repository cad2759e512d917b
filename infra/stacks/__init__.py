"""The deployable stacks."""

from infra.stacks.regional_stack import SwitchboardRegionalStack
from infra.stacks.switchboard_stack import SwitchboardStack

__all__ = ["SwitchboardRegionalStack", "SwitchboardStack"]
