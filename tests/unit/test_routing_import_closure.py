"""The gateway's cold start carries only the routing code it runs (issue 12 §5).

In AWS the AppConfig extension evaluates the flags: the gateway needs the route decision and the
check of the agent's answer, never the document validator, the rule language or the evaluation
(which lives beside the agent emulator, outside the Lambda code).
"""

from __future__ import annotations

from pathlib import Path

from tests.fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]

# What the gateway needs, and what it must never pay for at a cold start.
GATEWAY_ROUTING = {
    "switchboard.routing.agent_client",
    "switchboard.routing.appconfig_path",
    "switchboard.routing.decision",
    "switchboard.routing.schema",
}
NOT_IN_THE_GATEWAY = {
    "switchboard.routing.document",
    "switchboard.routing.rules",
    "switchboard_local.flag_evaluation",
}


def _loaded_after(statement: str) -> set[str]:
    code = (
        "import sys\n"
        f"{statement}\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith(('switchboard.', 'switchboard_local'))))\n"
    )
    done = run_fresh(code)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_gateway_imports_the_decision_and_the_answer_check_only() -> None:
    # Given a fresh interpreter, when the gateway handler module is imported (its cold start)
    loaded = _loaded_after("import handlers.gateway")
    # Then the routing modules it runs are there, and the document validator, the rule parser and
    # the evaluation are not
    assert {m for m in loaded if m.startswith("switchboard.routing.")} == GATEWAY_ROUTING
    assert not loaded & NOT_IN_THE_GATEWAY


def test_the_validator_reads_documents_without_the_evaluation() -> None:
    # The profile's Lambda validator parses rules (a rule that does not parse is refused) but never
    # evaluates a flag: the evaluation is not in the Lambda code at all.
    loaded = _loaded_after("from switchboard.routing.document import validate_document")
    assert {"switchboard.routing.rules", "switchboard.routing.schema"} <= loaded
    assert "switchboard_local.flag_evaluation" not in loaded
