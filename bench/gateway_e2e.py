"""The gateway handler end to end, in-process, with the mock provider and AWS emulated.

As tests/conftest.py's `gateway` fixture: moto `mock_aws` with the Step Functions interpreter on,
the real ASL, the AppConfig agent emulator, the authorizer, then `handlers.gateway.handler`, whose
workflow's Lambda tasks run the in-process invoke/circuit handlers. Prints one JSON line with
per-run p50/p99 in ms.

    python bench/gateway_e2e.py --requests 200 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/chat/completions"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def api_event(body: dict[str, Any], authorizer: dict[str, Any], request_id: str) -> dict[str, Any]:
    from switchboard_local.emulation import proxy_event

    return proxy_event(
        "POST",
        "/v1/chat/completions",
        json.dumps(body),
        headers={"Content-Type": "application/json"},
        authorizer=authorizer,
        request_id=request_id,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)

    import boto3
    from moto import mock_aws

    from handlers import authorizer, gateway
    from switchboard_local.agent import AgentEmulator
    from switchboard_local.emulation import (
        APPCONFIG_NAMES,
        DEV_KEY,
        FLAGS_FILE,
        FakeLambdaContext,
        bind_lambda_handlers,
        handler_environment,
        in_process_handlers,
        provision,
        reset_handler_caches,
    )
    from switchboard_local.moto_patches import ASL_PARSE_CACHE

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    flags = workdir / "flags.json"
    shutil.copy(FLAGS_FILE, flags)
    runs: list[dict[str, float]] = []
    statuses: dict[str, int] = {}
    try:
        with (
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
            ASL_PARSE_CACHE.applied(),  # as the local stack runs
        ):
            resources = provision(lambda service: boto3.client(service, region_name="us-east-1"))
            agent = AgentEmulator(
                flags,
                port=0,
                application=APPCONFIG_NAMES["application"],
                environment=APPCONFIG_NAMES["environment"],
                profile=APPCONFIG_NAMES["profile"],
                poll_interval_s=1.0,
            )
            agent.start()
            try:
                os.environ.update(handler_environment(resources, agent_url=agent.url, endpoint_url=None))
                reset_handler_caches()
                with bind_lambda_handlers(in_process_handlers(resources)):
                    body = {"model": "chat", "messages": [{"role": "user", "content": "ping"}]}
                    counter = 0

                    def one() -> float:
                        nonlocal counter
                        counter += 1
                        started = time.perf_counter()
                        event = {"type": "REQUEST", "methodArn": METHOD_ARN}
                        event["headers"] = {"Authorization": f"Bearer {DEV_KEY}"}  # type: ignore[assignment]
                        context: Any = FakeLambdaContext()
                        policy = authorizer.handler(event, context)
                        response = gateway.handler(
                            api_event(body, policy["context"], f"bench-{counter:06d}"), context
                        )
                        elapsed = (time.perf_counter() - started) * 1000.0
                        status = str(response["statusCode"])
                        statuses[status] = statuses.get(status, 0) + 1
                        return elapsed

                    for _ in range(args.warmup):
                        one()
                    statuses.clear()
                    for _ in range(args.runs):
                        samples = [one() for _ in range(args.requests)]
                        runs.append({"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99)})
            finally:
                agent.stop()
                reset_handler_caches()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"runs": runs, "statuses": statuses}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
