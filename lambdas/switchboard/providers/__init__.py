"""Providers behind one small interface: `Provider.complete(option, request, timeout_s)`."""
