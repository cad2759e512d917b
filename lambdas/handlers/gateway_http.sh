#!/bin/sh
# The gateway function's handler under AWS Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap
# execs this file instead of the Python runtime). It runs the HTTP server LWA forwards requests to.
# /opt/python holds the Powertools layer, LAMBDA_RUNTIME_DIR the runtime's boto3/botocore.
cd "${LAMBDA_TASK_ROOT:-$(dirname "$0")/..}" || exit 1
PYTHONPATH="${LAMBDA_TASK_ROOT:-.}:/opt/python:${LAMBDA_RUNTIME_DIR:-}${PYTHONPATH:+:$PYTHONPATH}" \
    exec python3 -m handlers.gateway_http
