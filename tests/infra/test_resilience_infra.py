"""The resilience infrastructure: circuit and cache tables, the circuit step, alarms and dashboard.

Given the app synthesized once with cdk-nag on (conftest), when we read the template, then the
request workflow can read circuits and read/write cached answers with nothing more, the circuit
breaker's Lambdas can reach the circuit table, and an on-call engineer is paged and has a dashboard.
"""

from __future__ import annotations

import json
from typing import Any

from template_queries import (
    actions_on,
    arn_of,
    as_list,
    function_by_handler,
    function_statements,
    of_type,
    only,
    role_statements,
    table_by_construct,
    table_with_partition_key,
)

from infra import constants
from infra.constructs.monitoring import (
    DEFAULT_LAST_KNOWN_GOOD_MINUTES,
    degraded_metric_names,
    provider_error_metric_names,
)
from switchboard.contract import metrics as metric_names


def machine_role(template_json: dict[str, Any]) -> str:
    _, machine = only(template_json, "AWS::StepFunctions::StateMachine")
    return str(machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])


def alarm_on_metric(template_json: dict[str, Any], metric_name: str) -> dict[str, Any]:
    """The one alarm whose metric (or one of its math expression's metrics) is ``metric_name``."""
    found = []
    for alarm in of_type(template_json, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        names = {props.get("MetricName")} | {
            m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m
        }
        if metric_name in names:
            found.append(props)
    assert len(found) == 1, f"expected one alarm on {metric_name}, found {len(found)}"
    return found[0]


SERVICE_DIMENSION = [{"Name": "service", "Value": "switchboard"}]


# --- Tables -------------------------------------------------------------------------------------


def test_circuit_table_is_keyed_pk_sk_with_ttl(template_json: dict[str, Any]) -> None:
    _, table = table_by_construct(template_json, "CircuitTable")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True


def test_cache_table_is_keyed_on_cache_key_with_ttl(template_json: dict[str, Any]) -> None:
    _, table = table_with_partition_key(template_json, "cache_key")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "cache_key", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["DeletionProtectionEnabled"] is True


# --- Request workflow ---------------------------------------------------------------------------


def test_workflow_substitutes_the_circuit_table_cache_table_and_circuit_function(
    template_json: dict[str, Any],
) -> None:
    _, machine = only(template_json, "AWS::StepFunctions::StateMachine")
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    circuit_table, _ = table_by_construct(template_json, "CircuitTable")
    cache_table, _ = table_with_partition_key(template_json, "cache_key")
    circuit_fn, _ = function_by_handler(template_json, constants.HANDLER_CIRCUIT)
    invoke_fn, _ = function_by_handler(template_json, constants.HANDLER_INVOKE)
    assert substitutions == {
        "InvokeFunctionArn": arn_of(invoke_fn),
        "CircuitFunctionArn": arn_of(circuit_fn),
        "CircuitTable": {"Ref": circuit_table},
        "CacheTable": {"Ref": cache_table},
    }
    # Every ${…} of the ASL has a value.
    placeholders = {
        part.split("}", 1)[0] for part in constants.REQUEST_WORKFLOW_ASL.read_text().split("${")[1:]
    }
    assert placeholders <= set(substitutions)


def test_workflow_role_reads_circuits_and_reads_writes_cached_answers_only(
    template_json: dict[str, Any],
) -> None:
    statements = role_statements(template_json, machine_role(template_json))
    circuit_table, _ = table_by_construct(template_json, "CircuitTable")
    cache_table, _ = table_with_partition_key(template_json, "cache_key")
    assert actions_on(statements, arn_of(circuit_table)) == {"dynamodb:GetItem"}
    assert actions_on(statements, arn_of(cache_table)) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    dynamodb_actions = {
        action
        for statement in statements
        for action in as_list(statement["Action"])
        if action.startswith("dynamodb:")
    }
    assert dynamodb_actions == {"dynamodb:GetItem", "dynamodb:PutItem"}
    # Table ARNs only: no index or stream ARNs, no wildcard.
    for statement in statements:
        if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
            assert as_list(statement["Resource"]) in ([arn_of(circuit_table)], [arn_of(cache_table)])


def test_workflow_role_invokes_exactly_the_invoke_and_circuit_functions(
    template_json: dict[str, Any],
) -> None:
    statements = role_statements(template_json, machine_role(template_json))
    invoked = [
        resource
        for statement in statements
        if "lambda:InvokeFunction" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]
    circuit_fn, _ = function_by_handler(template_json, constants.HANDLER_CIRCUIT)
    invoke_fn, _ = function_by_handler(template_json, constants.HANDLER_INVOKE)
    assert sorted(invoked, key=json.dumps) == sorted([arn_of(circuit_fn), arn_of(invoke_fn)], key=json.dumps)


# --- Functions ----------------------------------------------------------------------------------


def test_circuit_function_size_environment_and_grants(template_json: dict[str, Any]) -> None:
    _, circuit = function_by_handler(template_json, constants.HANDLER_CIRCUIT)
    props = circuit["Properties"]
    assert (props["MemorySize"], props["Timeout"]) == (256, 10)
    circuit_table, _ = table_by_construct(template_json, "CircuitTable")
    options_table, _ = table_with_partition_key(template_json, constants.OPTIONS_TABLE_PARTITION_KEY)
    env = props["Environment"]["Variables"]
    assert env[constants.ENV_CIRCUIT_TABLE] == {"Ref": circuit_table}
    assert env[constants.ENV_OPTIONS_TABLE] == {"Ref": options_table}
    assert env[constants.ENV_POWERTOOLS_SERVICE_NAME] == "switchboard"
    statements = function_statements(template_json, circuit)
    on_circuits = actions_on(statements, arn_of(circuit_table))
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= on_circuits
    on_options = actions_on(statements, arn_of(options_table))
    assert "dynamodb:GetItem" in on_options
    assert not on_options & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def test_invoke_records_outcomes_in_the_circuit_table(template_json: dict[str, Any]) -> None:
    _, invoke = function_by_handler(template_json, constants.HANDLER_INVOKE)
    circuit_table, _ = table_by_construct(template_json, "CircuitTable")
    assert invoke["Properties"]["Environment"]["Variables"][constants.ENV_CIRCUIT_TABLE] == {
        "Ref": circuit_table
    }
    on_circuits = actions_on(function_statements(template_json, invoke), arn_of(circuit_table))
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= on_circuits


def test_gateway_reads_circuits_and_records_streamed_outcomes(template_json: dict[str, Any]) -> None:
    """Retry-After reads circuits; a streamed request (no workflow) records each candidate's outcome
    through the circuit service itself, with the invoke step's conditional writes."""
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    circuit_table, _ = table_by_construct(template_json, "CircuitTable")
    assert gateway["Properties"]["Environment"]["Variables"][constants.ENV_CIRCUIT_TABLE] == {
        "Ref": circuit_table
    }
    on_circuits = actions_on(function_statements(template_json, gateway), arn_of(circuit_table))
    assert {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    } <= on_circuits


def test_the_workflow_and_the_gateway_write_the_cache_table_and_nothing_else_does(
    template_json: dict[str, Any],
) -> None:
    """The workflow writes whole answers; the gateway reads them for a streamed request's `cache`
    step and puts a streamed answer that ended cleanly (never updates or deletes an item)."""
    cache_table, _ = table_with_partition_key(template_json, "cache_key")
    for handler in (constants.HANDLER_INVOKE, constants.HANDLER_CIRCUIT):
        _, function = function_by_handler(template_json, handler)
        assert not actions_on(function_statements(template_json, function), arn_of(cache_table)), handler
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    actions = actions_on(function_statements(template_json, gateway), arn_of(cache_table))
    assert "dynamodb:PutItem" in actions
    assert all(
        a == "dynamodb:PutItem"
        or a.startswith(
            (
                "dynamodb:Get",
                "dynamodb:BatchGet",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:DescribeTable",
                "dynamodb:ConditionCheck",
            )
        )
        for a in actions
    ), actions


# --- Monitoring ---------------------------------------------------------------------------------


def test_alarm_topic_is_kms_encrypted_and_tls_only(template_json: dict[str, Any]) -> None:
    topic_id, topic = only(template_json, "AWS::SNS::Topic")
    key_ref = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template_json["Resources"][key_ref]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch_key_use = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch_key_use) == 1
    assert set(cloudwatch_key_use[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "aws:SourceAccount" in cloudwatch_key_use[0]["Condition"]["StringEquals"]
    _, policy = only(template_json, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in statements
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    assert any(s["Effect"] == "Allow" and s["Principal"] == cloudwatch for s in statements)


def test_circuit_opened_alarm_pages_through_the_topic(template_json: dict[str, Any]) -> None:
    topic_id, _ = only(template_json, "AWS::SNS::Topic")
    alarm = alarm_on_metric(template_json, metric_names.CIRCUIT_OPENED)
    assert alarm["Namespace"] == "Switchboard"
    assert alarm["Dimensions"] == SERVICE_DIMENSION
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_degraded_rate_alarm_is_metric_math_over_three_periods(template_json: dict[str, Any]) -> None:
    topic_id, _ = only(template_json, "AWS::SNS::Topic")
    alarm = alarm_on_metric(template_json, metric_names.CHAT_COMPLETIONS)
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    names = {stat["Metric"]["MetricName"] for stat in stats.values()}
    assert names == {
        "DegradedAnswer_cache",
        "DegradedAnswer_static",
        "DegradedAnswer_smaller_model",
        "Rejected_NoHealthyOption",
        "ChatCompletions",
        "EmbeddingsRequests",
    }
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "Switchboard"
        assert stat["Metric"]["Dimensions"] == SERVICE_DIMENSION
        assert (stat["Stat"], stat["Period"]) == ("Sum", 300)
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    request_ids = {
        i for i, s in stats.items() if s["Metric"]["MetricName"] in ("ChatCompletions", "EmbeddingsRequests")
    }
    numerator, denominator = expression["Expression"].split(" / ")
    assert {i for i in request_ids if i in denominator} == request_ids  # both endpoints' requests
    for metric_id in set(stats) - request_ids:
        assert metric_id in numerator
    assert alarm["Threshold"] == 5
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_an_invalid_routing_answer_pages_and_the_dashboard_shows_every_routing_fallback(
    template_json: dict[str, Any],
) -> None:
    """The on-call sees "serving last-known-good" (STYLE habit 12), under the names the code emits."""
    from switchboard.chat import EVENT_UNKNOWN_OPTIONS
    from switchboard.routing import agent_client

    assert agent_client.EVENT_ANSWER_INVALID == metric_names.ROUTING_ANSWER_INVALID
    assert agent_client.EVENT_LAST_KNOWN_GOOD == metric_names.ROUTING_LAST_KNOWN_GOOD
    assert agent_client.EVENT_ENVIRONMENT_DEFAULT == metric_names.ROUTING_ENVIRONMENT_DEFAULT
    assert EVENT_UNKNOWN_OPTIONS == metric_names.ROUTE_NAMES_UNKNOWN_OPTIONS

    topic_id, _ = only(template_json, "AWS::SNS::Topic")
    alarm = alarm_on_metric(template_json, metric_names.ROUTING_ANSWER_INVALID)
    assert (alarm["Namespace"], alarm["Dimensions"]) == ("Switchboard", SERVICE_DIMENSION)
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]

    _, dashboard = only(template_json, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in (
        metric_names.ROUTING_ANSWER_INVALID,
        metric_names.ROUTING_LAST_KNOWN_GOOD,
        metric_names.ROUTING_ENVIRONMENT_DEFAULT,
        metric_names.ROUTE_NAMES_UNKNOWN_OPTIONS,
    ):
        assert name in body, name


def test_workflow_failures_and_gateway_errors_page_too(template_json: dict[str, Any]) -> None:
    topic_id, _ = only(template_json, "AWS::SNS::Topic")
    machine_id, _ = only(template_json, "AWS::StepFunctions::StateMachine")
    failed = alarm_on_metric(template_json, "ExecutionsFailed")
    assert failed["Namespace"] == "AWS/States"
    assert failed["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]
    assert failed["Threshold"] == 1
    assert failed["AlarmActions"] == [{"Ref": topic_id}]
    paging_gateway_alarms = [
        alarm["Properties"]
        for alarm in of_type(template_json, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "Errors"
        and alarm["Properties"].get("AlarmActions") == [{"Ref": topic_id}]
    ]
    assert len(paging_gateway_alarms) == 1
    assert paging_gateway_alarms[0]["Namespace"] == "AWS/Lambda"


def test_one_dashboard_shows_the_incident_metrics(template_json: dict[str, Any]) -> None:
    _, dashboard = only(template_json, "AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == "Switchboard-Switchboard"
    body = "".join(
        part if isinstance(part, str) else json.dumps(part)
        for part in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    )
    expected = [
        metric_names.CHAT_COMPLETIONS,
        metric_names.REJECTED_NO_HEALTHY_OPTION,
        metric_names.CIRCUIT_OPENED,
        metric_names.CIRCUIT_CLOSED,
        *degraded_metric_names(),
        *provider_error_metric_names(),
        "ExecutionsStarted",
        "ExecutionsFailed",
        "ExecutionTime",
        "AWS/Lambda",
        "Duration",
    ]
    for text in expected:
        assert text in body, text
    # The body is JSON text: the expression's double quotes arrive escaped.
    assert r"""SEARCH('{Switchboard,option,service} MetricName=\"ProviderLatency\"""" in body
    assert "'p50', 300)" in body
    assert "'p99', 300)" in body
    assert provider_error_metric_names() == [
        "ProviderError_throttled",
        "ProviderError_timeout",
        "ProviderError_unavailable",
        "ProviderError_malformed",
        "ProviderError_bad_request",
        "ProviderError_context_too_long",
        "ProviderError_content_filtered",
    ]


# --- Outputs ------------------------------------------------------------------------------------


def test_outputs_name_the_circuit_and_cache_tables(template_json: dict[str, Any]) -> None:
    from switchboard_local.cli.target import OUTPUT_KEYS

    outputs = template_json["Outputs"]
    circuit_table, _ = table_by_construct(template_json, "CircuitTable")
    cache_table, _ = table_with_partition_key(template_json, "cache_key")
    assert OUTPUT_KEYS["circuit_table"] == constants.OUTPUT_CIRCUIT_TABLE == "CircuitTableName"
    assert OUTPUT_KEYS["cache_table"] == constants.OUTPUT_CACHE_TABLE == "CacheTableName"
    assert outputs["CircuitTableName"]["Value"] == {"Ref": circuit_table}
    assert outputs["CacheTableName"]["Value"] == {"Ref": cache_table}


def alarms_paging_through_the_topic(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    topic_id, _ = only(template_json, "AWS::SNS::Topic")
    return [
        alarm["Properties"]
        for alarm in of_type(template_json, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("AlarmActions") == [{"Ref": topic_id}]
    ]


def metric_names_of(alarm: dict[str, Any]) -> set[str]:
    return {alarm.get("MetricName")} | {
        m["MetricStat"]["Metric"]["MetricName"] for m in alarm.get("Metrics", []) if "MetricStat" in m
    }


def test_every_degraded_dependency_event_is_on_the_dashboard_and_pages(template_json: dict[str, Any]) -> None:
    """Fail-open is visible (STYLE habit 12): each name the code emits when it carries on without a
    dependency is a dashboard series and part of an alarm that notifies the alarm topic."""
    _, dashboard = only(template_json, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    paged = set().union(*(metric_names_of(alarm) for alarm in alarms_paging_through_the_topic(template_json)))
    assert metric_names.DEGRADED_DEPENDENCY_EVENTS  # not vacuous
    for name in metric_names.DEGRADED_DEPENDENCY_EVENTS:
        assert f'\\"{name}\\"' in body, f"{name} is not on the dashboard"
        assert name in paged, f"no alarm pages on {name}"


def test_serving_last_known_good_for_n_minutes_pages(template_json: dict[str, Any]) -> None:
    """Routing and options-catalogue fallbacks sustained for N consecutive 1-minute periods alarm."""
    sustained = [
        alarm
        for alarm in alarms_paging_through_the_topic(template_json)
        if metric_names_of(alarm) & set(metric_names.LAST_KNOWN_GOOD_EVENTS)
    ]
    covered = set().union(*(metric_names_of(alarm) for alarm in sustained))
    assert set(metric_names.LAST_KNOWN_GOOD_EVENTS) <= covered
    minutes = DEFAULT_LAST_KNOWN_GOOD_MINUTES
    for alarm in sustained:
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (minutes, minutes)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["TreatMissingData"] == "notBreaching"
        assert f"{minutes} minutes" in alarm["AlarmDescription"]
        stats = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
        assert {(s["Stat"], s["Period"]) for s in stats} == {("Sum", 60)}
        for stat in stats:
            assert stat["Metric"]["Namespace"] == "Switchboard"
            assert stat["Metric"]["Dimensions"] == SERVICE_DIMENSION
        (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
        assert expression["ReturnData"] is True
        for metric in alarm["Metrics"]:
            if "MetricStat" in metric:
                assert f"FILL({metric['Id']}, 0)" in expression["Expression"]


def test_the_metric_names_the_functions_are_told_match_the_contract() -> None:
    assert constants.POWERTOOLS_METRICS_NAMESPACE == metric_names.NAMESPACE
    assert constants.POWERTOOLS_SERVICE_NAME == metric_names.SERVICE
