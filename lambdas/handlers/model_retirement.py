"""Scheduled retirement of old model versions (EventBridge schedule → this Lambda).

Versions older than each family's retention count (and older than the live one) lose their
inference components, endpoint configs and models, their packages go to the `Archived` lifecycle
stage, and their pinned options are marked `retired` with `replaced_by` the family's option. The
version serving traffic, and the routed component and endpoint config, are never touched.
Retention counts per tenant for tenant adapter versions; a family's other regions are cleaned up
too, and an unreachable region leaves the version unarchived for the next run
(``LifecycleService.retire``). Input: `{"groups": [...]?, "retention": N?, "dry_run": bool?}`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.lifecycle.service import LifecycleService
from switchboard.lifecycle.settings import LifecycleSettings
from switchboard.observability import logger, tracer
from switchboard.selfcheck import is_selfcheck

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@lru_cache(maxsize=1)
def _service() -> LifecycleService:
    from handlers.model_deployment import build_service

    return build_service(LifecycleSettings.from_env())


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next call builds clients and caches anew."""
    _service.cache_clear()


def make_handler(service: LifecycleService) -> Handler:
    def bound(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return service.retire(event or {})

    return bound


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck

        return selfcheck.report("model_retirement", settings=LifecycleSettings.from_env, init=_service)
    report = _service().retire(event or {})
    logger.info("retirement done", extra={"report": report})
    return report
