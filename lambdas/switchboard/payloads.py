"""Claim check for large prompts and answers.

Step Functions caps a state's input and output at 256 KiB; a payload over its share of that state
(`switchboard.state_budget`, which sizes every share on the whole state) travels as
`{"$ref": "s3://bucket/key"}` to an encrypted object that a lifecycle rule expires after a day.
Nothing is ever truncated.
"""

from __future__ import annotations

import json
from typing import Any

REF_KEY = "$ref"


class PayloadStore:
    def __init__(self, bucket: str | None, *, client: Any | None = None) -> None:
        self._bucket = bucket
        self._client = client

    def _s3(self) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client("s3")
        return self._client

    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        """The value itself when its compact JSON fits ``inline_limit`` bytes; else a reference to
        an S3 object (``inline_limit=0`` always stores it)."""
        body = json.dumps(value, separators=(",", ":")).encode()
        if len(body) <= inline_limit:
            return value
        if not self._bucket:
            raise ValueError("payload too large to pass inline and no payload bucket is configured")
        self._s3().put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return {REF_KEY: f"s3://{self._bucket}/{key}"}

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        ref = value.get(REF_KEY)
        if ref is None:
            return value
        bucket, _, key = str(ref).removeprefix("s3://").partition("/")
        if not self._bucket or bucket != self._bucket:
            raise ValueError("payload reference points outside the configured payload bucket")
        body = self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        loaded = json.loads(body)
        if not isinstance(loaded, dict):
            raise ValueError("payload reference does not hold a JSON object")
        return loaded
