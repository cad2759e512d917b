"""The deploy section says what a fresh account needs (issue 10 item 9), and the commands exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _deploy_section() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Deploying\n(.*?)^## ", readme, re.MULTILINE | re.DOTALL)
    assert match, "README has no '## Deploying' section"
    return match.group(1)


def test_deploy_section_covers_bootstrap_bedrock_and_doctor_in_order() -> None:
    section = _deploy_section()
    steps = ["**Bootstrap", "**Make sure Bedrock", "**Deploy.**", "**Issue a key and check"]
    positions = [section.find(step) for step in steps]
    assert -1 not in positions, positions
    assert positions == sorted(positions)
    for command in ("make bootstrap", "make deploy", "switchboard doctor"):
        assert command in section, command


def test_the_commands_the_section_names_are_real_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"make (\w+)", _deploy_section()):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    assert re.search(r"^bootstrap:.*\n\t.*cdk.*bootstrap", makefile.replace("$(CDK)", "cdk"), re.MULTILINE)
