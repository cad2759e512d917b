"""The doctor's checks, in the order they run. Each yields one row per thing it looked at.

Each check reads what it needs from the :class:`Deployment` (clients, names, shared look-ups) and
never lets one item's failure hide another's: functions, tables and routes are each guarded. What
they cost in AWS: one Lambda invocation per function, one GetItem per table, one Express workflow
run that calls no provider, a GET /v1/models and one completion of at most 5 tokens per route,
a few AppConfig, SageMaker and Step Functions reads. The temporary API key is deleted again.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from switchboard.contract.workflow import format_timestamp
from switchboard_local.doctor.deployment import Deployment, FunctionRef, HttpAnswer, SelfcheckFailed
from switchboard_local.doctor.report import Check, Finding, describe_exception, failed, guarded, passed

if TYPE_CHECKING:
    from switchboard.lifecycle.model import ModelFamily
    from switchboard.options.store import OptionsStore

DOCTOR_TENANT = "switchboard-doctor"
DOCTOR_TIER = "standard"
DOCTOR_PROMPT = "Reply with the single word OK."
DOCTOR_MAX_TOKENS = 5
PROBE_KEY = "switchboard-doctor-probe"
STALE_KEY_AGE = timedelta(minutes=15)
KEY_PROPAGATION_S = 20.0
HTTP_TIMEOUT_S = 60.0

ROUTE_OPTION_ATTRIBUTES = ("chain", "smaller_chain", "context_fallback")


def _remedy(d: Deployment, *, local: str, aws: str) -> str:
    return local if d.local else aws


# --------------------------------------------------------------------------------------------------
# Functions


FUNCTION_CHECK = "initialises: settings, layers, dependency versions"


def _major_minor(version: str | None) -> str | None:
    if not version:
        return None
    digits = version.removeprefix("python").split(".")
    return ".".join(digits[:2]) if len(digits) >= 2 else None


def _failure_remedy(d: Deployment, text: str) -> str:
    if "ImportModuleError" in text or "ModuleNotFoundError" in text or "ImportError" in text:
        return _remedy(
            d,
            local="the local virtualenv lacks a module: reinstall the pinned requirements and restart "
            "`make local`",
            aws="a module is missing from the function's code or layers: deploy the Powertools layer of "
            "the version requirements.txt pins (`cdk deploy`), then read the function's log group",
        )
    if "SettingsError" in text:
        return _remedy(
            d,
            local="the local stack set a bad environment: restart `make local`",
            aws="its environment variables are missing or malformed: redeploy with `cdk deploy` (never edit "
            "a function's environment by hand)",
        )
    return _remedy(
        d,
        local="read the `make local` log for the traceback",
        aws="read the function's log group (CloudWatch Logs) for the traceback",
    )


def _function_findings(d: Deployment, fn: FunctionRef) -> Iterator[Finding]:
    component = f"function {fn.role}"
    try:
        report = d.selfcheck(fn)
    except SelfcheckFailed as exc:
        yield failed(component, FUNCTION_CHECK, f"{fn.name}: {exc}"[:400], _failure_remedy(d, str(exc)))
        return
    problems: list[str] = []
    remedies: list[str] = []
    for step in ("settings", "init"):
        outcome = str(report.get(step, "missing"))
        if outcome not in ("ok", "not applicable"):
            problems.append(f"{step}: {outcome}")
            remedies.append(_failure_remedy(d, outcome))
    versions: Mapping[str, Any] = report.get("versions") or {}
    python = versions.get("python")
    if _major_minor(python) != _major_minor(fn.runtime):
        problems.append(f"runs Python {python} but its runtime is {fn.runtime}")
        remedies.append("redeploy: the function's code and runtime disagree")
    pins = d.pins
    powertools = versions.get("powertools")
    if pins.powertools is None:
        problems.append(f"no aws-lambda-powertools pin in {pins.source}")
        remedies.append("run the doctor from the repository checkout that deployed the stack")
    elif powertools != pins.powertools:
        problems.append(f"Powertools {powertools or 'missing'}, the tests ran {pins.powertools}")
        remedies.append(
            _remedy(
                d,
                local="reinstall the pinned requirements into the virtualenv",
                aws="deploy the Powertools layer of the version requirements.txt pins (`cdk deploy`)",
            )
        )
    pydantic = versions.get("pydantic")
    if pydantic and pins.pydantic and pydantic != pins.pydantic:
        problems.append(f"pydantic {pydantic}, the tests ran {pins.pydantic}")
        remedies.append(
            _remedy(
                d,
                local="reinstall the pinned requirements into the virtualenv",
                aws="ship the pydantic requirements.txt pins (layer or asset), or pin the one the layer has, "
                "and test with it",
            )
        )
    if problems:
        yield failed(component, FUNCTION_CHECK, f"{fn.name}: " + "; ".join(problems), _unique(remedies))
        return
    layers = f", {len(fn.layers)} layer(s)" if fn.layers else ""
    yield passed(
        component,
        FUNCTION_CHECK,
        f"python {python} ({fn.runtime}), powertools {powertools}, pydantic {pydantic or 'not imported'}, "
        f"botocore {versions.get('botocore') or '-'}{layers}",
    )


def _unique(items: Sequence[str]) -> str:
    return "; ".join(dict.fromkeys(items))


def check_functions(d: Deployment) -> Iterator[Finding]:
    functions = d.our_functions()
    if not functions:
        yield failed(
            "functions",
            "the stack has Switchboard functions",
            "no function with a `handlers.*` handler was found",
            _remedy(
                d, local="restart `make local`", aws="check the stack name and region (--stack, --region)"
            ),
        )
        return
    for fn in functions:
        yield from guarded(
            f"function {fn.role}",
            FUNCTION_CHECK,
            _remedy(
                d,
                local="the local AWS endpoint did not run the function: restart `make local`",
                aws="the doctor needs lambda:InvokeFunction and lambda:GetFunctionConfiguration on the "
                "stack's functions",
            ),
            lambda fn=fn: _function_findings(d, fn),  # type: ignore[misc]
        )


# --------------------------------------------------------------------------------------------------
# AppConfig


APPCONFIG_COMPONENT = "appconfig extension"
APPCONFIG_CHECK = "serves the deployed flag document to the gateway"


def _flag_differences(served: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    differences = []
    for key in sorted(set(served) | set(expected)):
        if key not in served:
            differences.append(f"{key}: not served")
        elif key not in expected:
            differences.append(f"{key}: served but not deployed")
        elif served[key] != expected[key]:
            got, want = served[key], expected[key]
            if (
                isinstance(got, Mapping)
                and isinstance(want, Mapping)
                and got.get("_variant") != want.get("_variant")
            ):
                differences.append(
                    f"{key}: variant {got.get('_variant')!r}, deployed {want.get('_variant')!r}"
                )
            else:
                differences.append(f"{key}: values differ")
    return differences


def check_appconfig(d: Deployment) -> Iterator[Finding]:
    from switchboard.selfcheck import DOCTOR_CONTEXT
    from switchboard_local.flag_evaluation import evaluate_document

    gateway = d.function("gateway")
    if gateway is None:
        yield failed(
            APPCONFIG_COMPONENT, APPCONFIG_CHECK, "no gateway function to ask", "see the functions rows"
        )
        return
    try:
        report = d.selfcheck(gateway)
    except SelfcheckFailed as exc:
        yield failed(
            APPCONFIG_COMPONENT,
            APPCONFIG_CHECK,
            f"the gateway cannot run its self-check ({exc.error_type})",
            "fix the `function gateway` row first",
        )
        return
    probe: Mapping[str, Any] = report.get("extension") or {}
    served = probe.get("flags")
    if not isinstance(served, Mapping):
        where = probe.get("url", "the agent")
        state = "answers /ping" if probe.get("ping") else "does not answer /ping"
        yield failed(
            APPCONFIG_COMPONENT,
            APPCONFIG_CHECK,
            f"the gateway cannot read its flags from {where} (the agent {state}): {probe.get('error')}",
            _remedy(
                d,
                local="the AppConfig agent emulator is down: restart `make local` (the gateway serves "
                "last-known-good routes meanwhile)",
                aws="check the gateway has the AppConfig extension layer and its prefetch list "
                "(`cdk deploy`), that its role may call appconfig:StartConfigurationSession and "
                "GetLatestConfiguration, and read the extension's lines in the gateway's log group",
            ),
        )
        return
    version = probe.get("configuration_version")
    deployed = d.deployed_flags(str(version) if version is not None else None)
    if deployed.versions is not None and str(version) not in deployed.versions:
        yield failed(
            APPCONFIG_COMPONENT,
            APPCONFIG_CHECK,
            f"serves configuration version {version}; deployed: {', '.join(sorted(deployed.versions))}",
            "the extension polls every 30 s: rerun in a minute; if it persists, check the environment's "
            "deployments (a rollback?) and the extension's lines in the gateway's log group",
        )
        return
    expected = evaluate_document(deployed.document, dict(DOCTOR_CONTEXT))
    differences = _flag_differences(served, expected)
    if differences:
        yield failed(
            APPCONFIG_COMPONENT,
            APPCONFIG_CHECK,
            f"what it serves differs from {deployed.source}: " + "; ".join(differences[:5]),
            _remedy(
                d,
                local="the agent keeps serving the last valid document: run `switchboard flags validate "
                "config/flags.json --options config/options.json`, fix the file and save it",
                aws="rerun after the extension's next poll (30 s); if it persists, redeploy the flags",
            ),
        )
        return
    shown = f"version {version}, " if version is not None else ""
    yield passed(
        APPCONFIG_COMPONENT,
        APPCONFIG_CHECK,
        f"{shown}{len(served)} flags as in {deployed.source} ({probe.get('latency_ms')} ms)",
    )


# --------------------------------------------------------------------------------------------------
# Chains


def route_references(document: Mapping[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """route → [(variant, attribute, option id)] for every variant of every route flag."""
    flags = document.get("flags") or {}
    values = document.get("values") or {}
    routes: dict[str, list[tuple[str, str, str]]] = {}
    for key, definition in flags.items():
        attributes = (definition or {}).get("attributes") or {}
        if "chain" not in attributes:
            continue  # operator flags (kill switch, forced degradation) name no chain
        value = values.get(key) or {}
        variants = value.get("_variants")
        entries = (
            [(str(v.get("name")), v.get("attributeValues") or {}) for v in variants if isinstance(v, Mapping)]
            if isinstance(variants, list)
            else [("default", value)]
        )
        refs: list[tuple[str, str, str]] = []
        for variant, attrs in entries:
            for attribute in ROUTE_OPTION_ATTRIBUTES:
                ids = attrs.get(attribute)
                for option_id in ids if isinstance(ids, list) else [ids] if isinstance(ids, str) else []:
                    refs.append((variant, attribute, str(option_id)))
        routes[key] = refs
    return routes


def check_chains(d: Deployment) -> Iterator[Finding]:
    from switchboard.options.store import OptionsStore
    from switchboard.routing.document import route_kinds

    deployed = d.deployed_flags()
    catalogue = OptionsStore(d.target.options_table, client=d.client("dynamodb"), ttl_s=0).all()
    statuses = {option.id: option.status.value for option in catalogue}
    # The validator checked the kinds when the document was deployed; an option edited since (its
    # task changed) is caught only here.
    tasks = {option.id: option.task.value for option in catalogue}
    kinds = route_kinds(deployed.document)
    routes = route_references(deployed.document)
    if not routes:
        yield failed(
            "chains",
            "the flag document has routes",
            f"no route flag in {deployed.source}",
            "deploy config/flags.json",
        )
        return
    for route, refs in routes.items():
        problems = []
        for variant, attribute, option_id in refs:
            status = statuses.get(option_id)
            if status is None:
                problems.append(f"{variant}.{attribute}: {option_id} is not in the options table")
            elif status != "active":
                problems.append(f"{variant}.{attribute}: {option_id} is {status}")
            kind, task = kinds.get(route, "chat"), tasks.get(option_id)
            if task is not None and task != kind:
                problems.append(f"{variant}.{attribute}: {option_id} answers {task}, the route is {kind}")
        check = f"route {route}: every option exists, is active and answers the route's kind"
        if problems:
            yield failed(
                f"chain {route}",
                check,
                "; ".join(dict.fromkeys(problems)),
                "add the option (`switchboard options put`), set it active, or change the flag document and "
                + ("save config/flags.json" if d.local else "deploy it through AppConfig"),
            )
        else:
            unique = sorted({option_id for _, _, option_id in refs})
            yield passed(f"chain {route}", check, f"{len(unique)} option(s): {', '.join(unique)}")


# --------------------------------------------------------------------------------------------------
# Tables


def _probe_key(described: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A key of the table's own schema that no item has (a read that returns nothing)."""
    types = {a["AttributeName"]: a["AttributeType"] for a in described.get("AttributeDefinitions", [])}
    probe = {"S": PROBE_KEY, "N": "0", "B": PROBE_KEY.encode().hex()}
    return {
        k["AttributeName"]: {types.get(k["AttributeName"], "S"): probe[types.get(k["AttributeName"], "S")]}
        for k in described.get("KeySchema", [])
    }


def check_tables(d: Deployment) -> Iterator[Finding]:
    t = d.target
    check = "active and readable (DescribeTable, GetItem)"
    remedy = _remedy(
        d,
        local="the local stack lost this table: restart `make local`",
        aws="the table is missing or your credentials may not read it (dynamodb:DescribeTable, GetItem): "
        "check the stack in CloudFormation and your IAM policy",
    )
    for kind, name in (
        ("options", t.options_table),
        ("keys", t.keys_table),
        ("circuit", t.circuit_table),
        ("answer cache", t.cache_table),
    ):
        component = f"{kind} table"
        if not name:
            yield failed(component, check, "the stack names no such table", _redeploy(d))
            continue

        def probe(component: str = component, name: str = name) -> Iterator[Finding]:
            ddb = d.client("dynamodb")
            described = ddb.describe_table(TableName=name)["Table"]
            status = described.get("TableStatus")
            if status != "ACTIVE":
                yield failed(component, check, f"{name} is {status}", remedy)
                return
            ddb.get_item(TableName=name, Key=_probe_key(described))
            yield passed(component, check, name)

        yield from guarded(component, check, remedy, probe)


def _redeploy(d: Deployment) -> str:
    return _remedy(d, local="restart `make local`", aws="`cdk deploy` the current version")


# --------------------------------------------------------------------------------------------------
# The request workflow


WORKFLOW_CHECK = "answers a run that calls no provider (static answer)"


def workflow_probe_input(text: str, now: datetime | None = None) -> dict[str, Any]:
    """A request workflow input that ends in ``Degrade_StaticAnswer`` without touching a provider:
    an empty chain, ``degrade: ["static"]``. The keys are the gateway's (chat.ChatService)."""
    moment = now or datetime.now(UTC)
    epoch = int(moment.timestamp())
    return {
        "request_id": f"doctor-{uuid.uuid4().hex[:12]}",
        "route": "switchboard-doctor",
        "variant": "switchboard-doctor",
        "chain": [],
        "smaller_chain": [],
        "degrade": ["static"],
        "static_answer": text,
        "context_fallback": None,
        "force_degraded": False,
        "cache_key": "switchboard-doctor#probe",
        "cache_ttl_s": 0,
        "cache_expires_at": str(epoch),
        "request": {
            "messages": [{"role": "user", "content": DOCTOR_PROMPT}],
            "max_tokens": DOCTOR_MAX_TOKENS,
        },
        "now": format_timestamp(moment),
        "now_epoch_s": epoch,
        "deadline_ms": epoch * 1000 + 10_000,
    }


def check_workflow(d: Deployment) -> Iterator[Finding]:
    component = "request workflow"
    if not d.state_machine_arn:
        yield failed(component, WORKFLOW_CHECK, "the stack names no request workflow", _redeploy(d))
        return
    nonce = f"switchboard doctor {uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    answer = d.client("stepfunctions").start_sync_execution(
        stateMachineArn=d.state_machine_arn,
        name=f"switchboard-doctor-{uuid.uuid4().hex[:12]}",
        input=json.dumps(workflow_probe_input(nonce)),
    )
    elapsed_ms = int((time.monotonic() - started) * 1000)
    status = answer.get("status")
    logs = _remedy(
        d,
        local="read the `make local` log",
        aws="open the execution in the Step Functions console (its log group holds the history)",
    )
    if status != "SUCCEEDED":
        yield failed(
            component,
            WORKFLOW_CHECK,
            f"status {status}: {answer.get('error')}: {answer.get('cause')}"[:400],
            logs,
        )
        return
    output = json.loads(answer.get("output") or "null")
    expected = {"outcome": "degraded", "kind": "static", "text": nonce}
    if output != expected:
        yield failed(
            component,
            WORKFLOW_CHECK,
            f"unexpected output {json.dumps(output)[:200]}",
            "the deployed definition differs from statemachines/request_workflow.asl.json: "
            + _remedy(d, local="restart `make local`", aws="`cdk deploy`"),
        )
        return
    yield passed(component, WORKFLOW_CHECK, f"ended in Degrade_StaticAnswer ({elapsed_ms} ms)")


# --------------------------------------------------------------------------------------------------
# One completion per route, with a temporary key


def _error_of(answer: HttpAnswer) -> tuple[str, str]:
    try:
        error = answer.json().get("error") or {}
        return str(error.get("code") or ""), str(error.get("message") or "")
    except Exception:
        return "", answer.body[:200].decode(errors="replace")


def _http_remedy(d: Deployment, status: int, code: str) -> str:
    if status == 401:
        return (
            "the authorizer did not accept a key just written to the keys table: see the "
            "`function authorizer` and `keys table` rows"
        )
    if status == 403:
        return (
            "API Gateway refused the key's usage-plan key: rerun (a new key can take seconds); if it "
            "persists, check the usage plans are on the stage"
        )
    if status == 429:
        return "throttled by the standard usage plan: rerun in a minute"
    if code == "routing_unavailable":
        return "the gateway has no routing: see the `appconfig extension` row"
    if status == 503:
        return "no option of the chain answered: `switchboard circuits list`, " + _remedy(
            d,
            local="and the `make local` log",
            aws="Bedrock model access for the chain's models in this region, and the invoke "
            "function's log group",
        )
    if status == 502:
        return "the request workflow failed: see the `request workflow` row and the workflow's executions"
    if status == 404:
        return "the route is listed but not enabled for the standard tier: check its flag's variants"
    return _remedy(
        d, local="read the `make local` log", aws="read the gateway function's log group for the request id"
    )


def _call(d: Deployment, method: str, url: str, key: str, body: dict[str, Any] | None = None) -> HttpAnswer:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return d.http(method, url, headers, data, HTTP_TIMEOUT_S)


def _call_until_key_works(d: Deployment, url: str, key: str) -> HttpAnswer:
    """GET with the new key; in AWS a fresh usage-plan key can be refused (403) for a few seconds."""
    give_up = time.monotonic() + (0 if d.local else KEY_PROPAGATION_S)
    delay = 1.0
    while True:
        answer = _call(d, "GET", url, key)
        if answer.status not in (401, 403) or time.monotonic() + delay > give_up:
            return answer
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _first_choices(d: Deployment) -> tuple[dict[tuple[str, str], str], bool]:
    """{(route, variant): first option of its chain}, and whether the kill switch is on."""
    from switchboard.chat import KILL_SWITCH_FLAG
    from switchboard.selfcheck import DOCTOR_CONTEXT
    from switchboard_local.flag_evaluation import evaluate_document

    document = d.deployed_flags().document
    first: dict[tuple[str, str], str] = {}
    for route, refs in route_references(document).items():
        for variant, attribute, option_id in refs:
            if attribute == "chain":
                first.setdefault((route, variant), option_id)
    kill_switch = KILL_SWITCH_FLAG in (document.get("flags") or {})
    evaluated = evaluate_document(document, dict(DOCTOR_CONTEXT), [KILL_SWITCH_FLAG]) if kill_switch else {}
    return first, bool(evaluated.get(KILL_SWITCH_FLAG, {}).get("enabled"))


def _has_vector(answer: HttpAnswer) -> bool:
    try:
        vector = answer.json()["data"][0]["embedding"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return isinstance(vector, list) and bool(vector) and all(isinstance(x, int | float) for x in vector)


def route_check(kind: str) -> str:
    """The check's name for a route of this kind (GET /v1/models says each route's kind)."""
    if kind == "embeddings":
        return "answers an embedding of one text"
    return f"answers a completion (max_tokens {DOCTOR_MAX_TOKENS})"


def _complete(d: Deployment, base: str, key: str, route: str, kind: str = "chat") -> Iterator[Finding]:
    """One request on the route's own endpoint: a completion, or an embedding for an embeddings route."""
    component = f"route {route}"
    check = route_check(kind)
    if kind == "embeddings":
        path = "embeddings"
        body: dict[str, Any] = {
            "model": route,
            "input": DOCTOR_PROMPT,
            "encoding_format": "float",
            "user": DOCTOR_TENANT,
        }
    else:
        path = "chat/completions"
        body = {
            "model": route,
            "messages": [{"role": "user", "content": DOCTOR_PROMPT}],
            "max_tokens": DOCTOR_MAX_TOKENS,
            "user": DOCTOR_TENANT,
        }
    started = time.monotonic()
    answer = _call(d, "POST", f"{base}/{path}", key, body)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if answer.status != 200:
        code, message = _error_of(answer)
        yield failed(
            component,
            check,
            f"HTTP {answer.status} {code}: {message}"[:400],
            _http_remedy(d, answer.status, code),
        )
        return
    if kind == "embeddings" and not _has_vector(answer):
        detail = "HTTP 200 without a vector in data[0].embedding"
        yield failed(component, check, detail, _http_remedy(d, 502, ""))
        return
    option = answer.header("x-switchboard-option") or "?"
    variant = answer.header("x-switchboard-variant")
    source = answer.header("x-switchboard-routing-source")
    degraded = answer.header("x-switchboard-degraded")
    if source:
        yield failed(
            component,
            check,
            f"answered by {option}, but from {source.replace('_', '-')} routing: the gateway could not read "
            "its flags from the AppConfig extension",
            "see the `appconfig extension` row",
        )
        return
    if degraded:
        yield failed(
            component,
            check,
            f"degraded answer ({degraded}): no option of the chain answered",
            _http_remedy(d, 503, ""),
        )
        return
    try:
        first, killed = _first_choices(d)
    except Exception:  # the chains rows report an unreadable document; judge the answer alone
        first, killed = {}, False
    expected = first.get((route, variant or ""))
    if expected and option != expected and not killed:
        yield failed(
            component,
            check,
            f"answered by {option}, not by the first option of variant {variant!r} ({expected})",
            f"{expected} did not answer: `switchboard circuits list` and "
            + _remedy(
                d, local="the `make local` log", aws="Bedrock model access / the invoke function's log group"
            ),
        )
        return
    note = " (kill switch on)" if killed and expected and option != expected else ""
    yield passed(component, check, f"answered by {option}, variant {variant}, {elapsed_ms} ms{note}")


def _remove_key(d: Deployment, store: Any, record: Any, apigateway: Any, usage_plan: str | None) -> list[str]:
    """Revoke, detach, delete: every step tried, the failures returned."""
    problems = []
    try:
        store.revoke(record.key_id, apigateway=apigateway)
    except Exception as exc:
        problems.append(f"revoke: {describe_exception(exc)}")
    if apigateway is not None and usage_plan and record.api_key_id:
        try:
            apigateway.delete_usage_plan_key(usagePlanId=usage_plan, keyId=record.api_key_id)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "NotFoundException":
                problems.append(f"usage plan key: {describe_exception(exc)}")
    try:
        store.delete(record.key_id, apigateway=apigateway)
    except Exception as exc:
        problems.append(f"delete: {describe_exception(exc)}")
    return problems


def _leftovers(store: Any) -> list[Any]:
    """Keys of an interrupted doctor run (older than a concurrent run could still be using)."""
    cutoff = format_timestamp(datetime.now(UTC) - STALE_KEY_AGE)
    return [r for r in store.list() if r.tenant == DOCTOR_TENANT and r.created_at < cutoff]


def check_completions(d: Deployment) -> Iterator[Finding]:
    from switchboard.keys import ApiKeyStore

    key_component, key_check = "api keys", "temporary key created and removed"
    base = d.api_base
    if base is None:
        yield failed(
            "api", "GET /v1/models", "the stack names no API URL", "`cdk deploy` the current version"
        )
        return
    store = ApiKeyStore(d.target.keys_table, client=d.client("dynamodb"))
    usage_plan = d.target.usage_plans.get(DOCTOR_TIER) or None
    apigateway = d.client("apigateway") if usage_plan else None
    cleaned = 0
    for stale in _leftovers(store):
        if not _remove_key(d, store, stale, apigateway, usage_plan):
            cleaned += 1
    key, record = store.create(DOCTOR_TENANT, DOCTOR_TIER, apigateway=apigateway, usage_plan_id=usage_plan)
    rows: list[Finding] = []
    try:
        listing = _call_until_key_works(d, f"{base}/models", key)
        if listing.status != 200:
            code, message = _error_of(listing)
            rows.append(
                failed(
                    "api",
                    "GET /v1/models with the temporary key",
                    f"HTTP {listing.status} {code}: {message}"[:400],
                    _http_remedy(d, listing.status, code),
                )
            )
        else:
            cards = [m for m in listing.json().get("data", []) if isinstance(m, dict)]
            kinds = {str(m.get("id")): str(m.get("kind") or "chat") for m in cards}
            routes = list(kinds)
            rows.append(
                passed(
                    "api",
                    "GET /v1/models with the temporary key",
                    f"{len(routes)} route(s): {', '.join(routes)}",
                )
            )
            if not routes:
                rows.append(
                    failed(
                        "routes",
                        "at least one route",
                        "GET /v1/models listed none",
                        "check the flag document's route flags are enabled",
                    )
                )
            for route in routes:
                rows.extend(
                    guarded(
                        f"route {route}",
                        route_check(kinds[route]),
                        "the API did not answer: check its URL and that the stage is deployed",
                        lambda route=route: _complete(d, base, key, route, kinds[route]),  # type: ignore[misc]
                    )
                )
    except Exception as exc:
        rows.append(
            failed(
                "api",
                "calls with the temporary key",
                describe_exception(exc),
                "check the API URL answers from here",
            )
        )
    finally:
        problems = _remove_key(d, store, record, apigateway, usage_plan)
    yield from rows
    if problems:
        yield failed(
            key_component,
            key_check,
            f"{record.key_id} (tenant {DOCTOR_TENANT}): " + "; ".join(problems),
            "the key is revoked unless that failed too: rerun the doctor (it removes keys of tenant "
            f"{DOCTOR_TENANT} older than 15 minutes), or `switchboard keys revoke` it",
        )
    else:
        extra = f"; removed {cleaned} left by an interrupted run" if cleaned else ""
        gone = "row, API Gateway key and usage-plan key" if apigateway is not None else "row"
        yield passed(key_component, key_check, f"{record.key_id}: {gone} deleted{extra}")


# --------------------------------------------------------------------------------------------------
# Model lifecycle


def _model_groups(d: Deployment) -> list[str]:
    if not d.deployment_function:
        return []
    config = d.client("lambda").get_function_configuration(FunctionName=d.deployment_function)
    raw = json.loads((config.get("Environment") or {}).get("Variables", {}).get("MODEL_FAMILIES", "[]"))
    return [str(family["group"]) for family in raw]


def check_model_registry(d: Deployment) -> Iterator[Finding]:
    component, not_deployed = (
        "model registry",
        "no model families deployed (cdk.json model_families is empty)",
    )
    if not d.deployment_function:
        yield passed(component, "model package groups readable", not_deployed)
        return
    groups = _model_groups(d)
    if not groups:
        yield passed(component, "model package groups readable", "the deployment function names no family")
        return
    sagemaker = d.client("sagemaker")
    for group in groups:

        def describe(group: str = group) -> Iterator[Finding]:
            described = sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            status = described.get("ModelPackageGroupStatus")
            check = f"group {group} readable"
            if status != "Completed":
                yield failed(
                    component, check, f"status {status}", "wait for it, or recreate it with `cdk deploy`"
                )
            else:
                yield passed(component, check, "Completed")

        yield from guarded(
            component,
            f"group {group} readable",
            _remedy(
                d,
                local="restart `make local`",
                aws="the group is created by the stack: check its events; the doctor needs "
                "sagemaker:DescribeModelPackageGroup",
            ),
            describe,
        )


MODEL_REGIONS_COMPONENT = "model regions"
MODEL_REGIONS_CHECK = "every region of every family: endpoint, component, option"


def _model_families(d: Deployment) -> list[ModelFamily]:
    """The families the deployment function runs with (``MODEL_FAMILIES``), parsed as it parses them."""
    from switchboard.lifecycle.model import parse_families

    if not d.deployment_function:
        return []
    config = d.client("lambda").get_function_configuration(FunctionName=d.deployment_function)
    raw = (config.get("Environment") or {}).get("Variables", {}).get("MODEL_FAMILIES", "[]")
    return list(parse_families(raw).values())


def check_model_regions(d: Deployment) -> Iterator[Finding]:
    """Multi-region families (issue 16): in each listed region the family's endpoint (and, for
    adapters, its base component) is in service, and the region's option exists, names that region
    and serves the same version as the home region's option (the regions move together).

    Families without ``regions`` are single-region: their rows are the registry's and workflow's.
    """
    from switchboard.options.store import OptionsStore

    multi = [family for family in _model_families(d) if family.regions]
    if not multi:
        yield passed(MODEL_REGIONS_COMPONENT, MODEL_REGIONS_CHECK, "no model family lists regions")
        return
    home = d.target.region
    store = OptionsStore(d.target.options_table, client=d.client("dynamodb"), ttl_s=0)
    for family in multi:
        for region in family.deployment_regions(home):
            yield from guarded(
                MODEL_REGIONS_COMPONENT,
                f"{family.group} in {region}",
                _remedy(
                    d,
                    local="restart `make local`",
                    aws=f"the doctor needs sagemaker:DescribeEndpoint/DescribeInferenceComponent in {region} "
                    "and dynamodb:GetItem on the options table",
                ),
                functools.partial(_family_region, d, store, family, region),
            )


def _family_region(d: Deployment, store: OptionsStore, family: ModelFamily, region: str) -> Iterator[Finding]:
    home = d.target.region
    check = f"{family.group} in {region}"
    live = store.get(family.option_id)
    if live is None:
        yield passed(MODEL_REGIONS_COMPONENT, check, "no version deployed yet (approving one creates them)")
        return
    option_id = family.regional_option_id(region, home)
    option = live if region == home else store.get(option_id)
    redeploy = (
        f"approve the live version of {family.group} again (`switchboard models approve`): the deployment "
        "moves every region's option and endpoint together"
    )
    if option is None:
        missing = f"option {option_id} is not in the options table"
        yield failed(MODEL_REGIONS_COMPONENT, check, missing, redeploy)
        return
    problems: list[str] = []
    if region != home and option.region != region:
        problems.append(f"option {option_id} names region {option.region or '(none)'}")
    if option.model_package_arn != live.model_package_arn:
        problems.append(
            f"option {option_id} serves {option.model_package_arn}, {family.option_id} serves "
            f"{live.model_package_arn}"
        )
    sagemaker = d.client_in("sagemaker", region)
    endpoint_name = option.endpoint_name or family.endpoint_name
    problems.extend(
        _in_service(
            lambda: sagemaker.describe_endpoint(EndpointName=endpoint_name),
            "EndpointStatus",
            f"endpoint {endpoint_name}",
        )
    )
    if family.base_component:
        base = family.base_component
        problems.extend(
            _in_service(
                lambda: sagemaker.describe_inference_component(InferenceComponentName=base),
                "InferenceComponentStatus",
                f"base component {base}",
            )
        )
    if problems:
        yield failed(MODEL_REGIONS_COMPONENT, check, "; ".join(problems), redeploy)
    else:
        yield passed(MODEL_REGIONS_COMPONENT, check, f"{option_id} → {endpoint_name}, in service")


def _in_service(describe: Callable[[], Mapping[str, Any]], status_key: str, what: str) -> list[str]:
    """``[]`` when the described resource is InService, else what is wrong (missing is a finding)."""
    from botocore.exceptions import ClientError

    try:
        described = describe()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in {"ValidationException", "ResourceNotFound"}:
            return [f"{what} not found ({error.get('Message', '')})"]
        raise
    status = described.get(status_key)
    return [] if status == "InService" else [f"{what} is {status}"]


MODEL_IMAGES_COMPONENT = "model images"
MODEL_IMAGES_CHECK = "each multi-region family's live image exists in every region it deploys to"


def check_model_images(d: Deployment) -> Iterator[Finding]:
    """Multi-region full-model families (issue 16): SageMaker runs only an ECR image of the model's own
    region, so the live version's image must be in each region the family deploys to. The image is
    mapped as the deployment maps it (``switchboard.lifecycle.images``): the account's own images are
    looked up with ``ecr:DescribeImages`` there; AWS Deep Learning Containers images are mapped to the
    region's DLC registry and not looked up (an AWS registry). One row per family and region.
    """
    from switchboard.lifecycle.image_catalog import EcrImageCatalog
    from switchboard.lifecycle.images import account_of
    from switchboard.lifecycle.model import FamilyKind, parse_families
    from switchboard.options.store import OptionsStore

    environment = _deployment_environment(d)
    families = [
        family
        for family in parse_families(environment.get("MODEL_FAMILIES", "[]")).values()
        if family.regions and family.kind is FamilyKind.FULL
    ]
    if not families:
        yield passed(MODEL_IMAGES_COMPONENT, MODEL_IMAGES_CHECK, "no full-model family lists regions")
        return
    own_account = account_of(environment.get("SAGEMAKER_EXECUTION_ROLE_ARN", ""))
    store = OptionsStore(d.target.options_table, client=d.client("dynamodb"), ttl_s=0)
    catalog = EcrImageCatalog(lambda region: d.client_in("ecr", region))
    for family in families:
        yield from guarded(
            MODEL_IMAGES_COMPONENT,
            f"{family.group} image",
            _remedy(
                d,
                local="restart `make local`",
                aws="the doctor needs dynamodb:GetItem on the options table and "
                "sagemaker:DescribeModelPackage on the live version",
            ),
            functools.partial(_family_images, d, store, catalog, family, own_account),
        )


def _deployment_environment(d: Deployment) -> dict[str, str]:
    """The deployment function's environment (what the rollout runs with); {} without one."""
    if not d.deployment_function:
        return {}
    config = d.client("lambda").get_function_configuration(FunctionName=d.deployment_function)
    variables: dict[str, str] = (config.get("Environment") or {}).get("Variables", {})
    return variables


def _family_images(
    d: Deployment, store: OptionsStore, catalog: Any, family: ModelFamily, own_account: str
) -> Iterator[Finding]:
    from switchboard.lifecycle.images import ImageCheckFailed, ImageNotPortable, ImageSource, regional_image
    from switchboard.lifecycle.model import PackageVersion

    live = store.get(family.option_id)
    if live is None or not live.model_package_arn:
        yield passed(MODEL_IMAGES_COMPONENT, f"{family.group} image", "no version deployed yet")
        return
    described = d.client("sagemaker").describe_model_package(ModelPackageName=live.model_package_arn)
    image = PackageVersion.from_description(described).image
    for region in family.deployment_regions(d.target.region):
        check = f"{family.group} image in {region}"
        try:
            mapped = regional_image(image, region, own_account=own_account)
        except ImageNotPortable as exc:
            yield failed(
                MODEL_IMAGES_COMPONENT,
                check,
                str(exc),
                "register a version whose image is in this account's ECR (switchboard-* repositories)",
            )
            continue
        if mapped.source is ImageSource.AWS_DEEP_LEARNING_CONTAINERS:
            detail = f"{mapped.uri} (AWS Deep Learning Containers registry: not looked up)"
            yield passed(MODEL_IMAGES_COMPONENT, check, detail)
            continue
        try:
            present = catalog.exists(mapped.image)
        except ImageCheckFailed as exc:
            remedy = f"the doctor needs ecr:DescribeImages on {mapped.image.repository} in {region}"
            yield failed(MODEL_IMAGES_COMPONENT, check, str(exc), remedy)
            continue
        if present:
            yield passed(MODEL_IMAGES_COMPONENT, check, mapped.uri)
        else:
            yield failed(
                MODEL_IMAGES_COMPONENT,
                check,
                f"{mapped.uri} does not exist: instances launched there later (scaling, replacement) "
                "cannot pull it, and the next version's rollout is rejected",
                f"replicate {mapped.image.repository} to {region} (cdk.json replicate_images) or push the "
                "image there",
            )


def check_deployment_workflow(d: Deployment) -> Iterator[Finding]:
    component, check = "deployment workflow", "state machine ACTIVE"
    if not d.deployment_state_machine_arn:
        if d.deployment_function:
            yield failed(component, check, "the stack names no model deployment workflow", _redeploy(d))
        else:
            yield passed(component, check, "no model families deployed (cdk.json model_families is empty)")
        return
    described = d.client("stepfunctions").describe_state_machine(
        stateMachineArn=d.deployment_state_machine_arn
    )
    status = described.get("status")
    if status != "ACTIVE":
        yield failed(
            component, check, f"{described.get('name')} is {status}", "`cdk deploy` the current version"
        )
        return
    yield passed(component, check, f"{described.get('name')} ({described.get('type')})")


CHECKS: tuple[Check[Deployment], ...] = (
    Check(
        "functions",
        FUNCTION_CHECK,
        check_functions,
        remedy="the functions could not be listed: check --stack/--region and "
        "cloudformation:ListStackResources (locally: restart `make local`)",
    ),
    Check(
        APPCONFIG_COMPONENT,
        APPCONFIG_CHECK,
        check_appconfig,
        remedy="the deployed flag document could not be read: locally run `switchboard flags validate` on "
        "it; in AWS the doctor needs appconfig:ListDeployments and GetHostedConfigurationVersion",
    ),
    Check(
        "chains",
        "every route's chains name existing, active options",
        check_chains,
        remedy="the flag document or the options table could not be read: see the `appconfig extension` and "
        "`options table` rows",
    ),
    Check("tables", "readable", check_tables),
    Check(
        "request workflow",
        WORKFLOW_CHECK,
        check_workflow,
        remedy="the doctor needs states:StartSyncExecution on the request workflow (locally: restart "
        "`make local`)",
    ),
    Check(
        "routes",
        "one completion per route with a temporary key",
        check_completions,
        remedy="the temporary key could not be created: the doctor needs dynamodb:Scan/PutItem on the keys "
        "table and apigateway:POST on API keys and usage-plan keys (locally: restart `make local`)",
    ),
    Check(
        "model registry",
        "model package groups readable",
        check_model_registry,
        remedy="the doctor needs lambda:GetFunctionConfiguration on the model deployment function",
    ),
    Check(
        MODEL_REGIONS_COMPONENT,
        MODEL_REGIONS_CHECK,
        check_model_regions,
        remedy="the doctor needs lambda:GetFunctionConfiguration on the model deployment function",
    ),
    Check(
        MODEL_IMAGES_COMPONENT,
        MODEL_IMAGES_CHECK,
        check_model_images,
        remedy="the doctor needs lambda:GetFunctionConfiguration on the model deployment function",
    ),
    Check(
        "deployment workflow",
        "state machine ACTIVE",
        check_deployment_workflow,
        remedy="the doctor needs states:DescribeStateMachine on the model deployment workflow",
    ),
)
