"""The exact pins of a requirements file: what the tests ran, so what a deployment must run.

CDK chooses the Powertools layer from them (``infra/layers.py``) and ``switchboard doctor``
compares every deployed function's versions with them: one reader, so both sides agree on what a
pin is. Stdlib only; it takes the file's text (the Lambda asset carries no requirements file).
"""

from __future__ import annotations

import re

_PIN = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9_.+!-]+)\s*(?:[;#].*)?$")


def normalise(name: str) -> str:
    """PEP 503 name normalisation (``aws_lambda_powertools`` == ``aws-lambda-powertools``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_versions(requirements_text: str) -> dict[str, str]:
    """``name -> version`` for every exact (``==``) pin, names normalised; other lines ignored."""
    pins: dict[str, str] = {}
    for line in requirements_text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins
