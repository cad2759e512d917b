"""Record every AWS call a Lambda handler makes, and every Task moto's interpreter executes.

Attribution: each module of ``lambdas/handlers`` gets its ``handler`` (and ``make_handler``, the
bound form the local stack and the lifecycle tests use) wrapped so that a context variable names the
handler (``handlers.invoke.handler``, as the template's ``Handler`` property does) for the duration
of the call, with the environment it ran with. Calls made while it is set are that function's:

- botocore: ``BaseClient._make_api_call`` (every client of every session, paginators included);
- ``switchboard.awsjson.AwsJsonClient._call`` (the request path's own DynamoDB/Step Functions client).

Streams: a module's ``open_stream`` (``handlers.gateway.open_stream``, the seam the HTTP entrypoint
under Lambda Web Adapter calls) is that function's too, and so is every step of the stream it
returns: the circuit records and the answer-cache write happen while the chunks are produced, after
``open_stream`` has returned.

While a recorded call runs, the variable is cleared, so whatever the emulator does inside it (moto's
interpreter calling DynamoDB for a Task, in the same thread) is not attributed to the caller; a
Lambda task it runs sets the variable again for its handler. Calls by test set-up, the CLI and moto
itself are not attributed and not checked.

Tasks: ``StateTaskService._before_eval_execution`` (moto's interpreter, every service integration)
records the state's name, resource and evaluated parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import pkgutil
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from iam.authorization import AwsCall
from iam.template import CUSTOM_RESOURCE_PROPERTY

# The environment a binding can use: resource names (…_TABLE, …_BUCKET, …_ARN), the lifecycle's
# families (they select what the template is synthesized with) and the workflow mode.
_ENV_NAME = re.compile(r"^[A-Z0-9_]+_(TABLE|BUCKET|ARN)$|^(MODEL_FAMILIES|WORKFLOW_MODE)$")
# Parameters that hold data, never a resource: not kept (a claim-checked prompt is 360 KB).
_DATA_PARAMETERS = frozenset(
    {"Payload", "Item", "Key", "Message", "Subject", "ExpressionAttributeValues", "Body", "input"}
)


@dataclass(frozen=True)
class Attribution:
    handler: str
    environ: tuple[tuple[str, str], ...]

    def env(self) -> dict[str, str]:
        return dict(self.environ)


@dataclass(frozen=True)
class RecordedCall:
    attribution: Attribution
    service: str
    operation: str
    params_json: str
    region: str

    def call(self) -> AwsCall:
        return AwsCall(self.service, self.operation, json.loads(self.params_json), self.region)


@dataclass(frozen=True)
class ExecutedTask:
    state: str
    resource: str
    params_json: str
    region: str
    account: str


CURRENT: ContextVar[Attribution | None] = ContextVar("switchboard_iam_attribution", default=None)
CALLS: set[RecordedCall] = set()
TASKS: set[ExecutedTask] = set()
_lock = threading.Lock()
_installed: list[Callable[[], None]] = []


def _json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, bytes | bytearray):
            return f"<{len(obj)} bytes>"
        if hasattr(obj, "read"):
            return "<stream>"
        return str(obj)

    return json.dumps(value, sort_keys=True, default=default)


def _without_data(params: Mapping[str, Any]) -> dict[str, Any]:
    """Drop data members (a string ``Key`` is an S3 object key and stays; a DynamoDB key is data)."""
    return {
        k: v for k, v in params.items() if k not in _DATA_PARAMETERS or (k == "Key" and isinstance(v, str))
    }


def _snapshot(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in environ.items() if _ENV_NAME.match(k)))


def record(service: str, operation: str, params: Mapping[str, Any], region: str) -> None:
    who = CURRENT.get()
    if who is None:
        return
    # Bodies never matter to IAM; drop them before they are serialised (an S3 body can be megabytes).
    kept = _without_data(params)
    recorded = RecordedCall(who, service, operation, _json(kept), region or "")
    with _lock:
        CALLS.add(recorded)


def attributed(
    handler_path: str, function: Callable[..., Any], environ: Callable[[], Mapping[str, str]]
) -> Any:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        snapshot = _snapshot(environ())
        event = args[0] if args else kwargs.get("event")
        if isinstance(event, Mapping) and isinstance(event.get("ResourceProperties"), Mapping):
            # a custom-resource handler learns its resources from the event, not the environment
            snapshot += tuple(
                sorted(
                    (CUSTOM_RESOURCE_PROPERTY + k, v)
                    for k, v in event["ResourceProperties"].items()
                    if isinstance(v, str) and len(v) <= 2048
                )
            )
        token = CURRENT.set(Attribution(handler_path, snapshot))
        try:
            return function(*args, **kwargs)
        finally:
            CURRENT.reset(token)

    run.__switchboard_iam__ = True  # type: ignore[attr-defined]
    return run


def attributed_stream(
    handler_path: str, open_stream: Callable[..., Any], environ: Callable[[], Mapping[str, str]]
) -> Any:
    """``open_stream`` and the production of its chunks, attributed to the function's handler."""

    @functools.wraps(open_stream)
    def run(*args: Any, **kwargs: Any) -> Any:
        who = Attribution(handler_path, _snapshot(environ()))
        token = CURRENT.set(who)
        try:
            answer = open_stream(*args, **kwargs)
        finally:
            CURRENT.reset(token)
        if answer is None:
            return None
        return dataclasses.replace(answer, chunks=_AttributedChunks(who, answer.chunks))

    run.__switchboard_iam__ = True  # type: ignore[attr-defined]
    return run


class _AttributedChunks:
    """Each chunk produced (and the stream closed) with `who` as the caller; never across a
    chunk: between chunks the consumer's own calls are not the function's. An iterator, not a
    generator: closing it before its first chunk must still close `chunks` (a generator that never
    started skips its `finally`)."""

    def __init__(self, who: Attribution, chunks: Iterator[bytes]) -> None:
        self._who = who
        self._chunks = chunks
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        token = CURRENT.set(self._who)
        try:
            return next(self._chunks)
        except StopIteration:
            self._closed = True
            raise
        finally:
            CURRENT.reset(token)

    def close(self) -> None:
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if callable(close):
            token = CURRENT.set(self._who)
            try:
                close()
            finally:
                CURRENT.reset(token)


def _service_environ(service: Any) -> dict[str, str]:
    """What the lifecycle handlers' environment would hold, from the service they were bound to."""
    env = dict(os.environ)
    options = getattr(service, "options", None)
    if getattr(options, "table_name", None):
        env["OPTIONS_TABLE"] = str(options.table_name)
    adapters = getattr(service, "adapters", None)
    if getattr(adapters, "table_name", None):
        env["ADAPTERS_TABLE"] = str(adapters.table_name)
    role = getattr(service, "execution_role_arn", None)
    if role:
        env["SAGEMAKER_EXECUTION_ROLE_ARN"] = str(role)
    replicas = getattr(service, "regional_artifact_buckets", None)
    if replicas:
        env["REGIONAL_ARTIFACT_BUCKETS"] = json.dumps(replicas, sort_keys=True)
    families = getattr(service, "families", None)
    if families:
        env["MODEL_FAMILIES"] = json.dumps(
            [f.model_dump(exclude_none=True) for f in families.values()], sort_keys=True
        )
    return env


def _wrap_handlers() -> None:
    import handlers

    for info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"handlers.{info.name}")
        path = f"handlers.{info.name}.handler"
        original_handler = getattr(module, "handler", None)
        if callable(original_handler) and not hasattr(original_handler, "__switchboard_iam__"):
            module.handler = attributed(path, original_handler, lambda: os.environ)  # type: ignore[attr-defined]
            _installed.append(functools.partial(setattr, module, "handler", original_handler))
        open_stream = getattr(module, "open_stream", None)
        if callable(open_stream) and not hasattr(open_stream, "__switchboard_iam__"):
            module.open_stream = attributed_stream(path, open_stream, lambda: os.environ)  # type: ignore[attr-defined]
            _installed.append(functools.partial(setattr, module, "open_stream", open_stream))
        factory = getattr(module, "make_handler", None)
        if callable(factory) and not hasattr(factory, "__switchboard_iam__"):

            def make(service: Any, *, _factory: Any = factory, _path: str = path) -> Any:
                return attributed(_path, _factory(service), lambda: _service_environ(service))

            make.__switchboard_iam__ = True  # type: ignore[attr-defined]
            module.make_handler = functools.wraps(factory)(make)  # type: ignore[attr-defined]
            _installed.append(functools.partial(setattr, module, "make_handler", factory))


def _patch_botocore() -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        if CURRENT.get() is None:
            return original(self, operation_name, api_params)
        record(self.meta.service_model.service_name, operation_name, api_params, self.meta.region_name)
        token = CURRENT.set(None)
        try:
            return original(self, operation_name, api_params)
        finally:
            CURRENT.reset(token)

    BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
    _installed.append(functools.partial(setattr, BaseClient, "_make_api_call", original))


def _patch_awsjson() -> None:
    from switchboard import awsjson

    original = awsjson.AwsJsonClient._call
    services = {spec.target_prefix: name for name, spec in awsjson.SERVICES.items()}

    def _call(self: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if CURRENT.get() is None:
            return original(self, operation, params)
        record(services[self._service.target_prefix], operation, params, self._region)
        token = CURRENT.set(None)
        try:
            return original(self, operation, params)
        finally:
            CURRENT.reset(token)

    awsjson.AwsJsonClient._call = _call  # type: ignore[method-assign]
    _installed.append(functools.partial(setattr, awsjson.AwsJsonClient, "_call", original))


def _patch_interpreter() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service

    cls = state_task_service.StateTaskService
    original = cls._before_eval_execution

    def _before_eval_execution(
        self: Any, env: Any, resource_runtime_part: Any, raw_parameters: Any, state_credentials: Any
    ) -> Any:
        params = _without_data(raw_parameters or {})
        task = ExecutedTask(
            self.name,
            self.resource.resource_arn,
            _json(params),
            resource_runtime_part.region,
            resource_runtime_part.account,
        )
        with _lock:
            TASKS.add(task)
        return original(self, env, resource_runtime_part, raw_parameters, state_credentials)

    cls._before_eval_execution = _before_eval_execution
    _installed.append(functools.partial(setattr, cls, "_before_eval_execution", original))


def install() -> None:
    """Wrap the handlers and hook the clients and the interpreter (idempotent)."""
    if _installed:
        return
    _wrap_handlers()
    _patch_botocore()
    _patch_awsjson()
    _patch_interpreter()


def uninstall() -> None:
    while _installed:
        _installed.pop()()


def clear() -> None:
    with _lock:
        CALLS.clear()
        TASKS.clear()
