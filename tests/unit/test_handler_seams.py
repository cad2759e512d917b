"""Each Lambda handler that builds something once per execution environment can be started over
through its public ``forget_cached_state()``: tests and the local stack use that, never the cache
decorator's internals or the handler's private attributes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import _lru_cache_wrapper
from types import ModuleType

import pytest

import handlers


def _handler_modules() -> list[ModuleType]:
    return [importlib.import_module(f"handlers.{m.name}") for m in pkgutil.iter_modules(handlers.__path__)]


def _cached_builders(module: ModuleType) -> list[_lru_cache_wrapper[object]]:
    return [
        member
        for _, member in inspect.getmembers(module)
        if isinstance(member, _lru_cache_wrapper) and member.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module", _handler_modules(), ids=lambda m: m.__name__)
def test_a_handler_with_per_environment_state_can_forget_it(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    builders = _cached_builders(module)
    if not builders:
        forget_elsewhere = getattr(module, "forget_cached_state", None)
        if forget_elsewhere is not None:  # re-exported (handlers.gateway's, from gateway_wiring)
            assert forget_elsewhere.__module__ != module.__name__, "nothing to forget"
            defining = importlib.import_module(forget_elsewhere.__module__)
            assert forget_elsewhere is defining.forget_cached_state
        return
    forget = module.forget_cached_state
    assert "fresh execution environment" in (forget.__doc__ or "")
    cleared: list[str] = []
    for builder in builders:
        monkeypatch.setattr(builder, "cache_clear", lambda name=builder.__name__: cleared.append(name))

    forget()

    assert sorted(cleared) == sorted(builder.__name__ for builder in builders)
