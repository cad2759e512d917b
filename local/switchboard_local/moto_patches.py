"""Every change the local stack and the tests make to moto's internals, declared here and only here.

moto 5.2 lacks a few things the project runs against (``StartSyncExecution``, SageMaker's
``UpdateEndpoint`` and inference components), re-parses each ASL definition on every execution, and
runs Lambda code in containers. The project fills those gaps by replacing or adding attributes on
moto's classes. Each such attribute is one :class:`Target` in :data:`TARGETS` (where it is, and the
parameters moto's own version takes, or ``None`` when moto lacks it and the patch adds it); the
replacements live next to the behaviour they emulate (:mod:`~switchboard_local.sfn_ext`,
:mod:`~switchboard_local.sagemaker_ext`, :mod:`~switchboard_local.emulated_lambda`), and the
:class:`PatchSet` objects below put them together.

Nothing is patched by importing a module or provisioning resources: a patch set is applied with
``install()`` / ``uninstall()`` (idempotent, exact undo: moto's own attributes come back, added ones
go) or ``with patch_set.applied():``. Installing refuses, with :class:`MotoPatchError`, on a moto
other than :data:`TESTED_MOTO_VERSION` (the pin in ``requirements-dev.txt``) and on a target whose
attribute moved or changed its parameters; ``tests/unit/test_moto_patches.py`` checks every target
against the installed moto by name, so an upgrade that renames one fails a named test.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from switchboard_local import dynamodb_ext, moto_server_ext, sagemaker_ext, sfn_ext
from switchboard_local.emulated_lambda import Handler, in_process_invoke

TESTED_MOTO_VERSION: Final = "5.2.5"
"""The moto every target below was read against (``tests/unit`` ties it to requirements-dev.txt)."""


class MotoPatchError(RuntimeError):
    """moto is not the one the patches were written for: patching it would fail in obscure ways."""


@cache
def installed_moto_version() -> str:
    try:
        return version("moto")
    except PackageNotFoundError:
        return "(not installed)"


def check_moto_version(found: str | None = None) -> None:
    """Refuse any moto but the tested one (``found`` defaults to the installed distribution's)."""
    found = installed_moto_version() if found is None else found
    if found != TESTED_MOTO_VERSION:
        raise MotoPatchError(
            f"switchboard_local patches moto's internals as moto {TESTED_MOTO_VERSION} has them, "
            f"but this interpreter has moto {found}. Install the pinned moto "
            f"(requirements-dev.txt: moto[...]=={TESTED_MOTO_VERSION}); to move to another version, "
            "run tests/unit/test_moto_patches.py against it, fix the targets it names in "
            "switchboard_local/moto_patches.py, then change TESTED_MOTO_VERSION and the pin together."
        )


_MISSING: Final = object()


@dataclass(frozen=True)
class Target:
    """One attribute of one moto class that a patch replaces or adds."""

    module: str
    owner: str
    attribute: str
    parameters: tuple[str, ...] | None
    """The parameter names of moto's own attribute, which the replacement takes and may call with;
    ``None``: moto has no such attribute and the patch adds it."""

    @property
    def name(self) -> str:
        return f"{self.module}.{self.owner}.{self.attribute}"

    def owner_class(self) -> Any:
        return getattr(importlib.import_module(self.module), self.owner)

    def original(self) -> Any:
        """moto's own attribute, whatever is patched over it now (AttributeError if moto lacks it)."""
        raw = _pristine(self.owner_class(), self.attribute)
        if raw is _MISSING:
            raise AttributeError(f"moto has no {self.name}")
        return raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw

    def problem(self) -> str | None:
        """What makes moto's own attribute unfit for the patch (checked unpatched), or None."""
        try:
            owner = self.owner_class()
        except (ImportError, AttributeError) as exc:
            return f"{self.name}: {self.module}.{self.owner} is gone ({exc})"
        raw = _pristine(owner, self.attribute)
        if self.parameters is None:
            if raw is not _MISSING:
                return f"{self.name}: moto now has this attribute itself; the patch would hide it"
            return None
        if raw is _MISSING:
            return f"{self.name}: moto no longer has this attribute"
        function = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
        try:
            found = tuple(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            return f"{self.name}: not a function any more ({type(raw).__name__})"
        if found != self.parameters:
            return f"{self.name}: takes {found}, the patch was written for {self.parameters}"
        return None


_SFN_RESPONSES = "moto.stepfunctions.responses"
_DYNAMODB_BACKEND = "moto.dynamodb.models"
_SAGEMAKER_RESPONSES = "moto.sagemaker.responses"

TARGETS: Final[Mapping[str, Target]] = {
    # Lambda tasks run the project's handlers in-process (emulated_lambda.in_process_invoke).
    "lambda.invoke": Target("moto.awslambda.models", "LambdaFunction", "_invoke_lambda", ("self", "event")),
    # One ANTLR parse per definition, not per execution (sfn_ext.cached_asl_parse).
    "stepfunctions.parse": Target(
        "moto.stepfunctions.parser.asl.parse.asl_parser",
        "AmazonStateLanguageParser",
        "parse",
        ("definition",),
    ),
    # StartSyncExecution against the local stack's server (sfn_ext.start_sync_execution).
    "stepfunctions.start_sync_execution": Target(
        _SFN_RESPONSES, "StepFunctionResponse", "start_sync_execution", None
    ),
    # The model-deployment workflow's SageMaker (sagemaker_ext).
    "sagemaker.update_endpoint": Target(_SAGEMAKER_RESPONSES, "SageMakerResponse", "update_endpoint", None),
    "sagemaker.describe_endpoint": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "describe_endpoint", ("self",)
    ),
    "sagemaker.create_inference_component": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "create_inference_component", None
    ),
    "sagemaker.describe_inference_component": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "describe_inference_component", None
    ),
    "sagemaker.delete_inference_component": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "delete_inference_component", None
    ),
    "sagemaker.list_inference_components": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "list_inference_components", None
    ),
    "sagemaker.update_model_package": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "update_model_package", ("self",)
    ),
    "sagemaker.describe_model_package": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "describe_model_package", ("self",)
    ),
    "sagemaker.list_model_packages": Target(
        _SAGEMAKER_RESPONSES, "SageMakerResponse", "list_model_packages", ("self",)
    ),
    # Number arithmetic of ADD/SET as DynamoDB does it (dynamodb_ext.exact_number_arithmetic).
    "dynamodb.number_add": Target(
        "moto.dynamodb.models.dynamo_type", "DynamoType", "__add__", ("self", "other")
    ),
    "dynamodb.number_sub": Target(
        "moto.dynamodb.models.dynamo_type", "DynamoType", "__sub__", ("self", "other")
    ),
    # Writes applied atomically, as DynamoDB applies them (dynamodb_ext.serialized).
    "dynamodb.update_item": Target(
        _DYNAMODB_BACKEND,
        "DynamoDBBackend",
        "update_item",
        (
            "self",
            "table_name",
            "key",
            "update_expression",
            "expression_attribute_names",
            "expression_attribute_values",
            "attribute_updates",
            "expected",
            "condition_expression",
            "return_values_on_condition_check_failure",
        ),
    ),
    "dynamodb.put_item": Target(
        _DYNAMODB_BACKEND,
        "DynamoDBBackend",
        "put_item",
        (
            "self",
            "table_name",
            "item_attrs",
            "expected",
            "condition_expression",
            "expression_attribute_names",
            "expression_attribute_values",
            "overwrite",
            "return_values_on_condition_check_failure",
        ),
    ),
    "dynamodb.delete_item": Target(
        _DYNAMODB_BACKEND,
        "DynamoDBBackend",
        "delete_item",
        (
            "self",
            "table_name",
            "key",
            "expression_attribute_names",
            "expression_attribute_values",
            "condition_expression",
            "return_values_on_condition_check_failure",
        ),
    ),
    "dynamodb.transact_write_items": Target(
        _DYNAMODB_BACKEND, "DynamoDBBackend", "transact_write_items", ("self", "transact_items")
    ),
    # Item reads answered as the JSON they already are (dynamodb_ext.json_item_reads).
    # (on moto's base class: DynamoDB's result class inherits it; the wrapper acts on DynamoDB only).
    "dynamodb.result": Target("moto.core.responses", "ActionResult", "execute_result", ("self", "context")),
    # Each host's backend looked up once (moto_server_ext.remembered_backend_for_host).
    "server.backend_for_host": Target(
        "moto.moto_server.werkzeug_app",
        "DomainDispatcherApplication",
        "get_backend_for_host",
        ("self", "host"),
    ),
    "sagemaker_runtime.invoke_endpoint": Target(
        "moto.sagemakerruntime.responses", "SageMakerRuntimeResponse", "invoke_endpoint", ("self",)
    ),
}


@dataclass(frozen=True)
class Patch:
    """A target and how to build its replacement from moto's original (``None`` when added)."""

    target: Target
    build: Callable[[Any], Any]


def _with(key: str, replacement: Any) -> Patch:
    """The target becomes ``replacement`` (added, or replacing moto's without calling it)."""
    return Patch(TARGETS[key], lambda _original: replacement)


def _wraps(key: str, build: Callable[[Any], Any]) -> Patch:
    return Patch(TARGETS[key], build)


# (owner class, attribute) -> the raw class-dict values each applied patch replaced, oldest first.
_replaced: dict[tuple[Any, str], list[Any]] = {}


def _pristine(owner: Any, attribute: str) -> Any:
    """moto's own attribute, as it is in the class dict before any patch (``_MISSING`` if none)."""
    stack = _replaced.get((owner, attribute))
    if stack:
        return stack[0]
    return owner.__dict__.get(attribute, _MISSING)


class PatchSet:
    """Patches applied and undone together, in order; the undo restores exactly what was there."""

    def __init__(
        self, name: str, patches: Sequence[Patch], *, on_uninstall: Callable[[], None] | None = None
    ) -> None:
        self.name = name
        self.patches = tuple(patches)
        self._on_uninstall = on_uninstall
        self._undo: list[tuple[Any, str, Any]] | None = None

    def __repr__(self) -> str:
        return f"PatchSet({self.name!r}, installed={self.is_installed})"

    @property
    def is_installed(self) -> bool:
        return self._undo is not None

    def install(self) -> None:
        """Apply every patch (a no-op when already installed); on any refusal, nothing is applied."""
        if self._undo is not None:
            return
        check_moto_version()
        problems = [p for patch in self.patches if (p := patch.target.problem()) is not None]
        if problems:
            raise MotoPatchError(f"moto patch set {self.name!r} cannot apply:\n  " + "\n  ".join(problems))
        undo: list[tuple[Any, str, Any]] = []
        try:
            for patch in self.patches:
                owner = patch.target.owner_class()
                attribute = patch.target.attribute
                raw = owner.__dict__.get(attribute, _MISSING)
                replacement = patch.build(getattr(owner, attribute, None))
                if isinstance(raw, staticmethod):
                    replacement = staticmethod(replacement)
                _replaced.setdefault((owner, attribute), []).append(raw)
                undo.append((owner, attribute, raw))
                setattr(owner, attribute, replacement)
        except BaseException:
            _restore(undo)
            raise
        self._undo = undo

    def uninstall(self) -> None:
        """Put back what :meth:`install` replaced (a no-op when not installed)."""
        if self._undo is None:
            return
        undo, self._undo = self._undo, None
        _restore(undo)
        if self._on_uninstall is not None:
            self._on_uninstall()

    @contextmanager
    def applied(self) -> Iterator[PatchSet]:
        """The patches for the block; left installed if they already were."""
        was = self.is_installed
        self.install()
        try:
            yield self
        finally:
            if not was:
                self.uninstall()


def _restore(undo: list[tuple[Any, str, Any]]) -> None:
    for owner, attribute, raw in reversed(undo):
        if raw is _MISSING:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, raw)
        stack = _replaced[(owner, attribute)]
        stack.pop()
        if not stack:
            del _replaced[(owner, attribute)]


def patched_targets() -> list[str]:
    """The targets some installed patch set currently replaces (for tests that want moto as it is)."""
    return [
        target.name for target in TARGETS.values() if (target.owner_class(), target.attribute) in _replaced
    ]


ASL_PARSE_CACHE: Final = PatchSet(
    "asl-parse-cache", [_wraps("stepfunctions.parse", sfn_ext.cached_asl_parse)]
)
"""moto parses a definition once, not at every execution (~80 ms of a local request)."""

SFN_START_SYNC: Final = PatchSet(
    "sfn-start-sync-execution",
    [_with("stepfunctions.start_sync_execution", sfn_ext.start_sync_execution)],
)
"""``StartSyncExecution`` on moto's server, so the local gateway runs the workflow as deployed."""

SAGEMAKER: Final = PatchSet(
    "sagemaker",
    [
        _with("sagemaker.update_endpoint", sagemaker_ext.update_endpoint),
        _wraps("sagemaker.describe_endpoint", sagemaker_ext.wrap_describe_endpoint),
        _with("sagemaker.create_inference_component", sagemaker_ext.create_inference_component),
        _with("sagemaker.describe_inference_component", sagemaker_ext.describe_inference_component),
        _with("sagemaker.delete_inference_component", sagemaker_ext.delete_inference_component),
        _with("sagemaker.list_inference_components", sagemaker_ext.list_inference_components),
        _with("sagemaker.update_model_package", sagemaker_ext.update_model_package),
        _wraps("sagemaker.describe_model_package", sagemaker_ext.wrap_describe_model_package),
        _wraps("sagemaker.list_model_packages", sagemaker_ext.wrap_list_model_packages),
        _wraps("sagemaker_runtime.invoke_endpoint", sagemaker_ext.wrap_invoke_endpoint),
    ],
    on_uninstall=sagemaker_ext.CONTROL.reset,
)
"""What the model-deployment workflow needs of SageMaker (uninstalling also resets its CONTROL)."""


DYNAMODB_ATOMIC_WRITES: Final = PatchSet(
    "dynamodb-atomic-writes",
    [
        _wraps(key, dynamodb_ext.serialized)
        for key in (
            "dynamodb.update_item",
            "dynamodb.put_item",
            "dynamodb.delete_item",
            "dynamodb.transact_write_items",
        )
    ]
    + [
        _wraps(key, dynamodb_ext.exact_number_arithmetic)
        for key in ("dynamodb.number_add", "dynamodb.number_sub")
    ],
)
"""Each DynamoDB write atomic, as in AWS: concurrent ``ADD``s on one item are never lost; numbers
added as DynamoDB adds them (moto fails on a stored ``1E-7``)."""


DYNAMODB_JSON_ITEM_READS: Final = PatchSet(
    "dynamodb-json-item-reads", [_wraps("dynamodb.result", dynamodb_ext.json_item_reads)]
)
"""GetItem, BatchGetItem, Query and Scan answered without moto's shape-walking serializer (a seed
options Scan: about 20 ms of the local stack's CPU down to under 1 ms); the same answers."""


MOTO_SERVER_HOST_ROUTING: Final = PatchSet(
    "moto-server-host-routing",
    [_wraps("server.backend_for_host", moto_server_ext.remembered_backend_for_host)],
)
"""moto's server finds each request's service without listing its own package every time (a
GetItem: about 0.9 ms of the local stack's CPU down to 0.5)."""


def lambda_handlers(handlers: Mapping[str, Handler]) -> PatchSet:
    """moto's Lambda runs the functions named in ``handlers`` in this interpreter (nestable)."""
    return PatchSet("lambda-handlers", [_wraps("lambda.invoke", in_process_invoke(handlers))])
