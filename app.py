#!/usr/bin/env python3
"""CDK app entry: builds the Switchboard stack (and one regional stack per extra model region)
from `cdk.json` context.

`npx cdk synth|deploy` runs this file (see `cdk.json`); `python app.py` works too and writes
`cdk.out/`. Both read the same context: `cdk.json` is read here and handed to `App` as defaults,
which the CLI's own context (`cdk.json` again, plus any `-c key=value`) overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra import constants
from infra.config import SwitchboardConfig, load_cdk_json_context
from infra.constructs.regional_models import extra_regions
from infra.stacks import SwitchboardRegionalStack, SwitchboardStack


def build_app(outdir: str | None = None, context: Mapping[str, Any] | None = None) -> App:
    """The app with its stack and cdk-nag (AwsSolutions) registered; call ``.synth()`` on it.

    Args:
        outdir: where to write the cloud assembly. None: the CLI's ``CDK_OUTDIR`` when run by the
            CLI, else ``cdk.out``.
        context: overrides on top of `cdk.json`'s context (tests pin the region here).
    """
    merged = {**load_cdk_json_context(), **(context or {})}
    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = constants.DEFAULT_OUTDIR
    app = App(context=merged, outdir=outdir)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    settings = SwitchboardConfig.from_context(app.node.try_get_context)
    home = SwitchboardStack(app, settings.stack_name, settings=settings)
    # A family's other regions (issue 16): one small stack each, deployed before the home stack
    # (whose artifacts bucket replicates into them); names cross regions, tokens never do.
    for region in extra_regions(settings.model_families, settings.region):
        home.add_stack_dependency(SwitchboardRegionalStack(app, settings=settings, region=region))
    Tags.of(app).add("project", "switchboard")
    return app


if __name__ == "__main__":
    build_app().synth()
