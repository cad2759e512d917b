"""`switchboard doctor`: check a deployed stack (or `make local`) component by component.

:mod:`.report` holds the findings, the runner and the table; :mod:`.deployment` finds what a stack
is made of (local or in AWS); :mod:`.checks` holds the checks themselves.
"""
