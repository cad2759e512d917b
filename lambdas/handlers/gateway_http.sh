#!/bin/sh
# The gateway function's handler under AWS Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap
# execs this file instead of the Python runtime). It runs the HTTP server LWA forwards requests to.
# The path is what the Python runtime would give a handler: the function's code, the layers
# (/opt/python and its site-packages: Powertools), the runtime's own directory (boto3, botocore).
cd "${LAMBDA_TASK_ROOT:-$(dirname "$0")/..}" || exit 1
path="${LAMBDA_TASK_ROOT:-.}"
for layer_packages in /opt/python/lib/python3*/site-packages; do
    [ -d "$layer_packages" ] && path="$path:$layer_packages"
done
path="$path:/opt/python"
[ -n "${LAMBDA_RUNTIME_DIR:-}" ] && path="$path:$LAMBDA_RUNTIME_DIR"
PYTHONPATH="$path${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m handlers.gateway_http
