"""Names that cross a boundary (Lambda code, infra, the local stack, tests), declared once, stdlib only."""
