"""Switchboard core: routing, options, providers and the workflow runner shared by every Lambda."""
