"""The AppConfig agent's path for one configuration, shared by the gateway and the stack.

The gateway requests ``/applications/{app}/environments/{env}/configurations/{profile}`` and CDK
sets the extension's ``AWS_APPCONFIG_EXTENSION_PREFETCH_LIST`` to the same path, so the extension
fetches that configuration during the function's init instead of on the first request (a cold
gateway could otherwise time out on its first agent call and serve the environment defaults).
The AppConfig user guide documents prefetch entries in exactly this path form (``App:Env:Profile``
is not a form the extension reads). Stdlib only: infra imports it at synth time.
"""

from __future__ import annotations

import urllib.parse


def configuration_path(application: str, environment: str, profile: str) -> str:
    """``/applications/A/environments/E/configurations/P``, each name percent-encoded."""
    quoted = [urllib.parse.quote(part, safe="") for part in (application, environment, profile)]
    return "/applications/{}/environments/{}/configurations/{}".format(*quoted)
