"""Switchboard infrastructure: typed settings, layer maps, one construct per concern, the stack."""
