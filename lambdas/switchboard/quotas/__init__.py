"""Per-tenant limits (rpm/tpm), budgets and per-option capacity counters (issue 15).

Every counter lives in the usage table (``switchboard.contract.tables.USAGE_*``) and is changed by
DynamoDB's atomic ``ADD`` under a condition, so it is global across every Lambda instance:
``model`` holds the settings and their validation, ``counters`` the small port the use cases in
``service`` call, ``dynamo`` its DynamoDB adapter.
"""
