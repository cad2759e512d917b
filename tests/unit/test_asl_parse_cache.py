"""The local emulation's ASL parse-tree cache (moto re-parses a definition on every execution)."""

from __future__ import annotations

import json

import pytest


def test_asl_parse_trees_are_cached_but_programs_are_built_per_execution() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from switchboard_local.moto_patches import ASL_PARSE_CACHE

    with ASL_PARSE_CACHE.applied():
        definition = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})

        first_program, first_tree = AmazonStateLanguageParser.parse(definition)
        second_program, second_tree = AmazonStateLanguageParser.parse(definition)

        assert second_tree is first_tree  # parsed once
        assert second_program is not first_program  # evaluation components are never shared
        with pytest.raises(Exception, match="ASLParserException"):
            AmazonStateLanguageParser.parse('{"StartAt": ')


def test_without_the_cache_moto_parses_every_time() -> None:
    from switchboard_local.moto_patches import TARGETS

    parse = TARGETS["stepfunctions.parse"].original()  # moto's own, even under a session's cache
    definition = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})
    _, first_tree = parse(definition)
    _, second_tree = parse(definition)
    assert second_tree is not first_tree
