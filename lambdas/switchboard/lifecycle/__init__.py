"""Model lifecycle: SageMaker Model Registry versions → deployment → gateway option → retirement.

``model`` holds the typed configuration and value objects, ``logic`` the pure decisions (what an
event asks for, which version to roll back to, what to retire, resource names), ``registry`` the
SageMaker adapter (injected client), ``service`` the steps the deployment and retirement Lambdas
run. No module imports boto3 at import time.
"""

from switchboard.lifecycle.errors import (
    LifecycleError,
    OptionMovedByAnotherDeployment,
    SmokeTestFailed,
    UnknownModelFamily,
)

__all__ = [
    "LifecycleError",
    "OptionMovedByAnotherDeployment",
    "SmokeTestFailed",
    "UnknownModelFamily",
]
