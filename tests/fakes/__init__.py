"""In-memory stand-ins for what the use cases take, one definition each, shared by every test.

Each fake implements a Protocol the services declare (``switchboard.chat.Routing``,
``OptionCatalogue``, ``CircuitReader``, ``Payloads``; ``switchboard.workflow.WorkflowRunner``;
``switchboard.circuits.service.OptionSource`` and ``CircuitLedger``;
``switchboard.lifecycle.service.VersionedOptions`` and ``ModelRegistry``;
``switchboard.lifecycle.adapter_store.TenantAdapterStore``) or the public surface
of a store a use case builds (``switchboard.keys.ApiKeyStore``); ``tests/unit/test_fakes.py``
checks they keep the same method signatures, so a changed Protocol fails there rather than in a
confusing logic test. Logic tests use these instead of moto; the stores themselves are tested
against moto in ``tests/integration``.
"""

from tests.fakes.adapters import InMemoryTenantAdapters
from tests.fakes.clock import ManualClock
from tests.fakes.routing import StaticRouting, UnavailableRouting
from tests.fakes.sagemaker import InMemoryRegistry
from tests.fakes.stores import (
    FixedCircuits,
    InMemoryCircuits,
    InMemoryKeyStore,
    InMemoryOptions,
    InMemoryPayloads,
    RecordedEvents,
)
from tests.fakes.workflow import ScriptedRunner

__all__ = [
    "FixedCircuits",
    "InMemoryCircuits",
    "InMemoryKeyStore",
    "InMemoryOptions",
    "InMemoryPayloads",
    "InMemoryRegistry",
    "InMemoryTenantAdapters",
    "ManualClock",
    "RecordedEvents",
    "ScriptedRunner",
    "StaticRouting",
    "UnavailableRouting",
]
