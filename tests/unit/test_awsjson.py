"""The light JSON 1.0 client: SigV4 as botocore signs, botocore's error shapes, retries, gating."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from switchboard.awsjson import AwsJsonClient, Credentials, light_client, sign

NOW = datetime(2026, 11, 25, 12, 34, 56, tzinfo=UTC)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TOKEN_CREDS = Credentials("ASIAEXAMPLE", "secret/with+chars", "IQoJb3JpZ2luX2VjE//token==")
BODY = json.dumps({"TableName": "keys", "Key": {"key_hash": {"S": "abc"}}}).encode()


@pytest.mark.parametrize("credentials", [CREDS, TOKEN_CREDS], ids=["keys", "session-token"])
@pytest.mark.parametrize(
    ("url", "service", "target"),
    [
        ("https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb", "DynamoDB_20120810.GetItem"),
        ("https://sync-states.eu-west-1.amazonaws.com/", "states", "AWSStepFunctions.StartSyncExecution"),
        ("http://127.0.0.1:4566/", "dynamodb", "DynamoDB_20120810.Scan"),
    ],
)
def test_signature_is_the_one_botocore_computes(
    credentials: Credentials, url: str, service: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target}
    request = AWSRequest(method="POST", url=url, data=BODY, headers=dict(headers))
    boto_creds = BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    botocore.auth.SigV4Auth(boto_creds, service, "eu-west-1").add_auth(request)

    host = url.split("/")[2]
    ours = sign(
        method="POST",
        host=host,
        path="/",
        headers=headers,
        body=BODY,
        credentials=credentials,
        region="eu-west-1",
        service=service,
        now=NOW,
    )

    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"] == "20261125T123456Z"
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


# --------------------------------------------------------------------------------------------------
# against a scripted HTTP server


class Scripted:
    """Answers each POST with the next scripted (status, headers, body) and records the requests."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Scripted]]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
            status, headers, answer = script.answers.pop(0)
            self.send_response(status)
            for name, value in {"Content-Length": str(len(answer)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def _client(url: str, sleeps: list[float] | None = None) -> AwsJsonClient:
    return AwsJsonClient(
        "dynamodb",
        region="us-east-1",
        credentials=TOKEN_CREDS,
        endpoint_url=url,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


def _json(status: int, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/x-amz-json-1.0", **headers}, json.dumps(body).encode()


def test_a_call_is_a_signed_json_post_and_answers_like_botocore(server: tuple[str, Scripted]) -> None:
    url, script = server
    script.answers.append(_json(200, {"Item": {"n": {"N": "3"}}}, **{"x-amzn-RequestId": "req-1"}))

    answer = _client(url).get_item(TableName="t", Key={"pk": {"S": "a"}})

    assert answer["Item"] == {"n": {"N": "3"}}
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["ResponseMetadata"]["RequestId"] == "req-1"
    (request,) = script.requests
    assert request["body"] == {"TableName": "t", "Key": {"pk": {"S": "a"}}}
    assert request["headers"]["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert request["headers"]["Content-Type"] == "application/x-amz-json-1.0"
    assert request["headers"]["X-Amz-Security-Token"] == TOKEN_CREDS.token
    assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/")


def test_service_errors_are_client_errors_with_modelled_members(server: tuple[str, Scripted]) -> None:
    url, script = server
    error = {
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "message": "The conditional request failed",
        "Item": {"version": {"N": "7"}},
    }
    script.answers.append(_json(400, error))

    with pytest.raises(ClientError) as caught:
        _client(url).put_item(TableName="t", Item={}, ConditionExpression="attribute_not_exists(pk)")

    response = caught.value.response
    assert response["Error"] == {"Code": "ConditionalCheckFailedException", "Message": error["message"]}
    assert response["Item"] == {"version": {"N": "7"}}  # ReturnValuesOnConditionCheckFailure
    assert caught.value.operation_name == "PutItem"
    assert "ConditionalCheckFailedException" in str(caught.value)


def test_throttling_and_5xx_are_retried_then_given_up(server: tuple[str, Scripted]) -> None:
    url, script = server
    throttled = _json(400, {"__type": "ProvisionedThroughputExceededException", "message": "slow down"})
    script.answers += [throttled, _json(500, {"__type": "InternalServerError"}), _json(200, {"Count": 0})]
    sleeps: list[float] = []

    answer = _client(url, sleeps).scan(TableName="t")

    assert answer["Count"] == 0 and answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(sleeps) == 2 and all(0 <= s <= 1.0 for s in sleeps)

    script.answers += [throttled] * 3
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        _client(url).scan(TableName="t")


def test_client_errors_are_not_retried(server: tuple[str, Scripted]) -> None:
    url, script = server
    script.answers.append(_json(400, {"__type": "ValidationException", "message": "bad key"}))

    with pytest.raises(ClientError, match="ValidationException"):
        _client(url).get_item(TableName="t", Key={})
    assert len(script.requests) == 1


def test_an_unreachable_endpoint_is_a_botocore_connection_error() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EndpointConnectionError) as caught:
        _client(f"http://127.0.0.1:{port}").get_item(TableName="t", Key={})
    assert isinstance(caught.value, BotoCoreError)  # what the fail-open paths catch


# --------------------------------------------------------------------------------------------------
# when it is used


ENV = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1"}


def test_light_client_covers_json_services_with_env_credentials_only() -> None:
    assert isinstance(light_client("dynamodb", ENV), AwsJsonClient)
    assert isinstance(light_client("stepfunctions", ENV), AwsJsonClient)
    assert light_client("s3", ENV) is None  # not JSON 1.0
    assert light_client("dynamodb", {**ENV, "AWS_ACCESS_KEY_ID": ""}) is None  # no env credentials
    assert light_client("dynamodb", {k: v for k, v in ENV.items() if k != "AWS_REGION"}) is None
    assert light_client("dynamodb", ENV, config=object()) is None  # botocore Config: botocore
    assert light_client("dynamodb", {**ENV, "AWS_USE_FIPS_ENDPOINT": "true"}) is None
    assert light_client("dynamodb", {**ENV, "AWS_REGION": "us-iso-east-1"}) is None


def test_endpoints_follow_botocore_precedence_and_the_sync_host_prefix() -> None:
    def endpoint(client: AwsJsonClient | None, operation: str = "GetItem") -> str:
        assert client is not None
        return client.endpoint_for(operation)

    assert endpoint(light_client("dynamodb", ENV)) == "https://dynamodb.eu-west-1.amazonaws.com"
    sfn = light_client("stepfunctions", ENV)
    assert endpoint(sfn, "StartSyncExecution") == "https://sync-states.eu-west-1.amazonaws.com"
    assert endpoint(sfn, "StartExecution") == "https://states.eu-west-1.amazonaws.com"
    cn = {**ENV, "AWS_REGION": "cn-north-1"}
    assert endpoint(light_client("dynamodb", cn)) == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    local = {**ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    assert endpoint(light_client("dynamodb", local)) == "http://127.0.0.1:5000"
    specific = {**local, "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:6000"}
    assert endpoint(light_client("dynamodb", specific)) == "http://127.0.0.1:6000"
    assert endpoint(light_client("stepfunctions", local), "StartSyncExecution") == "http://127.0.0.1:5000"


# --------------------------------------------------------------------------------------------------
# not idempotent: StartSyncExecution (issue 10 item 7)


def _sfn(url: str, sleeps: list[float] | None = None, timeout_s: float = 60.0) -> AwsJsonClient:
    return AwsJsonClient(
        "stepfunctions",
        region="us-east-1",
        credentials=TOKEN_CREDS,
        endpoint_url=url,
        timeout_s=timeout_s,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


def test_start_sync_execution_is_not_retried_after_a_5xx(server: tuple[str, Scripted]) -> None:
    """A 5xx after the request arrived may mean the workflow ran: a retry could run it twice."""
    url, script = server
    script.answers += [_json(500, {"__type": "InternalServerError"}), _json(200, {"status": "SUCCEEDED"})]

    with pytest.raises(ClientError, match="InternalServerError"):
        _sfn(url).start_sync_execution(stateMachineArn="arn", input="{}")
    assert len(script.requests) == 1


def test_start_sync_execution_is_retried_when_throttled(server: tuple[str, Scripted]) -> None:
    """A throttling refusal means the service did not start anything: safe to go again."""
    url, script = server
    script.answers += [_json(400, {"__type": "ThrottlingException"}), _json(200, {"status": "SUCCEEDED"})]
    sleeps: list[float] = []

    answer = _sfn(url, sleeps).start_sync_execution(stateMachineArn="arn", input="{}")

    assert answer["status"] == "SUCCEEDED" and len(script.requests) == 2 and len(sleeps) == 1


def test_start_sync_execution_is_not_retried_when_the_answer_is_lost() -> None:
    """Sent, then no answer (read timeout): the workflow may be running; no second execution."""
    import socket

    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted: list[socket.socket] = []

    def accept() -> None:
        for _ in range(3):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            received.append(conn.recv(65536))  # read the request, never answer

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with pytest.raises(BotoCoreError):
            _sfn(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_s=0.3).start_sync_execution(
                stateMachineArn="arn", input="{}"
            )
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert len(received) == 1


def test_connection_refused_is_retried_for_start_sync_execution() -> None:
    """Nothing was sent when no connection could be made: every attempt is safe."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(EndpointConnectionError):
        _sfn(f"http://127.0.0.1:{port}", sleeps).start_sync_execution(stateMachineArn="arn", input="{}")
    assert len(sleeps) == 2  # three attempts


def test_dynamodb_reads_keep_retrying_5xx(server: tuple[str, Scripted]) -> None:
    url, script = server
    script.answers += [_json(500, {"__type": "InternalServerError"}), _json(200, {"Count": 1})]
    assert _client(url).scan(TableName="t")["Count"] == 1
    assert len(script.requests) == 2


def test_botocore_step_functions_clients_do_not_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    from switchboard import aws

    monkeypatch.setenv(aws.LIGHT_CLIENT_ENV, "0")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sfn = aws.client("stepfunctions")
    assert sfn.meta.config.retries["total_max_attempts"] == 1
    assert aws.client("dynamodb").meta.config.retries.get("total_max_attempts") != 1
