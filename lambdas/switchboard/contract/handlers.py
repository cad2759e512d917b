"""Handler paths (``module.function`` inside ``lambdas/``) and the settings loaders each one runs.

:data:`SETTINGS_LOADERS` is what ties a deployed function's environment to its code:
:func:`environment_problems` loads every one of the handler's loaders from an environment and
names each variable that is missing, unreadable or set for nobody. The synth-time test
(``tests/infra/test_function_environments.py``) runs it on every function of the template, and
``switchboard doctor`` can run it on a deployed function's configuration.

Stdlib only at import: the loaders are named as ``module:Class`` and imported on use (the
lifecycle loader needs pydantic, which infra and the authorizer do not import).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Final

from switchboard.contract import env

HANDLER_GATEWAY: Final = "handlers.gateway.handler"
HANDLER_AUTHORIZER: Final = "handlers.authorizer.handler"
HANDLER_INVOKE: Final = "handlers.invoke.handler"
HANDLER_CIRCUIT: Final = "handlers.circuit.handler"
HANDLER_FLAGS_VALIDATOR: Final = "handlers.flags_validator.handler"
HANDLER_PROFILES_VALIDATOR: Final = "handlers.profiles_validator.handler"
HANDLER_SEED_OPTIONS: Final = "handlers.seed_options.handler"
HANDLER_MODEL_DEPLOYMENT: Final = "handlers.model_deployment.handler"
HANDLER_MODEL_RETIREMENT: Final = "handlers.model_retirement.handler"

HANDLER_GATEWAY_HTTP: Final = "handlers/gateway_http.sh"
"""The gateway function's handler as deployed: Lambda Web Adapter's wrapper executes this start
script, which serves ``handlers.gateway_http`` (streams) and calls :data:`HANDLER_GATEWAY` for
every whole request and the self-check."""

START_SCRIPTS: Final[Mapping[str, str]] = {HANDLER_GATEWAY_HTTP: HANDLER_GATEWAY}
"""A deployed start script -> the Python handler whose code, settings and self-check it serves."""


def python_handler(configured: str) -> str:
    """The ``handlers.*`` handler a function's configured ``Handler`` runs (a start script maps to
    the handler it serves; anything else is itself)."""
    return START_SCRIPTS.get(configured, configured)


SETTINGS_LOADERS: Final[Mapping[str, tuple[str, ...]]] = {
    HANDLER_GATEWAY: ("switchboard.settings:GatewaySettings",),
    HANDLER_AUTHORIZER: ("switchboard.settings:AuthorizerSettings",),
    # The invoke step records outcomes through the circuit service, with its settings.
    HANDLER_INVOKE: ("switchboard.settings:InvokeSettings", "switchboard.circuits.service:CircuitSettings"),
    HANDLER_CIRCUIT: ("switchboard.circuits.service:CircuitSettings",),
    HANDLER_FLAGS_VALIDATOR: ("switchboard.settings:ValidatorSettings",),
    # The document comes with each AppConfig validation event; the validator reads no variable.
    HANDLER_PROFILES_VALIDATOR: (),
    # The table comes with each CloudFormation event (ResourceProperties), not from the environment.
    HANDLER_SEED_OPTIONS: (),
    HANDLER_MODEL_DEPLOYMENT: ("switchboard.lifecycle.settings:LifecycleSettings",),
    HANDLER_MODEL_RETIREMENT: ("switchboard.lifecycle.settings:LifecycleSettings",),
}
"""Handler path -> the settings classes it loads at cold start (each has ``from_env(environ)``)."""


def load_class(spec: str) -> Any:
    """``"package.module:Class"`` -> the class."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def variables_read(loader: Any) -> dict[str, bool]:
    """The variables a loader reads -> whether it requires them (no default).

    Knows the project's two kinds of loader: ``switchboard.settings.EnvSettings`` dataclasses
    (``env_names()``) and pydantic models whose field aliases are the variable names.
    """
    if hasattr(loader, "env_names"):
        names: dict[str, bool] = loader.env_names()
        return names
    fields = getattr(loader, "model_fields", None)
    if fields is None:
        raise TypeError(f"{loader!r}: not a settings loader this module knows how to read")
    return {str(f.alias or name): bool(f.is_required()) for name, f in fields.items()}


def environment_problems(handler: str, environment: Mapping[str, str]) -> list[str]:
    """What is wrong with ``environment`` for ``handler``; empty when every loader is satisfied.

    A problem is: a loader refusing the environment (a required variable missing or a value
    malformed), a variable a loader reads that the environment lacks and that is not meant to take
    the loader's default (:data:`env.DEFAULTED_IN_DEPLOYMENT`), or a variable set that no loader of
    this handler reads and no one else is known to read (:data:`env.READ_OUTSIDE_SETTINGS`).
    """
    if handler not in SETTINGS_LOADERS:
        return [f"{handler}: no settings loaders declared in switchboard.contract.handlers"]
    problems: list[str] = []
    read: set[str] = set()
    for spec in SETTINGS_LOADERS[handler]:
        loader = load_class(spec)
        names = variables_read(loader)
        read.update(names)
        try:
            loader.from_env(dict(environment))
        except Exception as exc:  # the loader's own error names the variable
            problems.append(f"{handler}: {spec} refuses the environment: {exc}")
        for name, required in sorted(names.items()):
            if name not in environment and not required and name not in env.DEFAULTED_IN_DEPLOYMENT:
                problems.append(f"{handler}: {name} is read by {spec} but not set")
    for name in sorted(set(environment) - read - set(env.READ_OUTSIDE_SETTINGS)):
        problems.append(f"{handler}: {name} is set but no settings loader of this handler reads it")
    return problems
