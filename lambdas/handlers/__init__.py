"""Thin Lambda entry points: parse, call the core, map the result."""
