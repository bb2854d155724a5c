"""AWS's identity-policy evaluation logic as mlops.local.iam implements it: the generic rules."""

from __future__ import annotations

import json

import pytest

from mlops.local.iam import (
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    TRUST_IMPLICIT_DENY,
    Decision,
    access_denied_message,
    authorize_call,
    evaluate,
    oidc_context,
    trust_allows,
)

ACCOUNT = "123456789012"
JOB = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/mlops-iris-staging-abc"
OTHER_JOB = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/other-abc"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/release/gh-run-1"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action="sagemaker:CreateTrainingJob", resource=JOB, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="sagemaker:CreateTrainingJob", resource=JOB, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# --- Allow, Deny, no policy -------------------------------------------------------------------------------


def test_an_allow_statement_for_the_action_and_resource_allows():
    decision = evaluate(policy(allow(Sid="Train")), "sagemaker:CreateTrainingJob", JOB)
    assert decision == Decision(True, ("Train",))


def test_nothing_allowing_the_call_is_an_implicit_deny():
    decision = evaluate(
        policy(allow(action="sagemaker:DescribeTrainingJob")), "sagemaker:CreateTrainingJob", JOB
    )
    assert (decision.allowed, decision.denied_by, decision.denied_resource) == (False, IMPLICIT_DENY, JOB)


def test_no_policies_at_all_deny():
    assert not evaluate([], "sagemaker:CreateTrainingJob", JOB).allowed


def test_an_explicit_deny_wins_over_any_allow():
    decision = evaluate(
        [policy(allow(action="sagemaker:*", resource="*")), policy(deny(Sid="NoTraining"))],
        "sagemaker:CreateTrainingJob",
        JOB,
    )
    assert (decision.allowed, decision.denied_by, decision.matched) == (False, EXPLICIT_DENY, ("NoTraining",))


def test_every_resource_of_the_call_must_be_allowed():
    endpoint = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlops-iris-staging"
    config = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/mlops-iris-staging-abc"
    only_endpoint = policy(allow(action="sagemaker:UpdateEndpoint", resource=endpoint))
    decision = evaluate(only_endpoint, "sagemaker:UpdateEndpoint", [endpoint, config])
    assert (decision.allowed, decision.denied_resource) == (False, config)
    both = policy(allow(action="sagemaker:UpdateEndpoint", resource=[endpoint, config]))
    assert evaluate(both, "sagemaker:UpdateEndpoint", [endpoint, config]).allowed


def test_statement_may_be_a_single_object_and_policies_json_text_or_named():
    single = {"Version": "2012-10-17", "Statement": allow()}
    assert evaluate(single, "sagemaker:CreateTrainingJob", JOB).allowed
    assert evaluate(json.dumps(single), "sagemaker:CreateTrainingJob", JOB).allowed
    named = evaluate({"training": single, "other": policy()}, "sagemaker:CreateTrainingJob", JOB)
    assert named.matched == ("training:#0",)


# --- Action and Resource matching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("sagemaker:*", "sagemaker:CreateTrainingJob", True),
        ("sagemaker:Create*", "sagemaker:CreateTrainingJob", True),
        ("SageMaker:createtrainingjob", "sagemaker:CreateTrainingJob", True),  # actions ignore case
        ("sagemaker:Describe*", "sagemaker:CreateTrainingJob", False),
        ("sagemaker:?reateTrainingJob", "sagemaker:CreateTrainingJob", True),
        ("*", "sagemaker:CreateTrainingJob", True),
        (["s3:GetObject", "sagemaker:CreateTrainingJob"], "sagemaker:CreateTrainingJob", True),
    ],
)
def test_action_patterns_match_case_insensitively_with_wildcards(pattern, action, allowed):
    assert evaluate(policy(allow(action=pattern, resource="*")), action, JOB).allowed is allowed


@pytest.mark.parametrize(
    ("pattern", "allowed"),
    [
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/mlops-iris-*", True),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/MLOPS-IRIS-*", False),  # resources keep case
        (f"arn:aws:sagemaker:*:{ACCOUNT}:training-job/*", True),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/mlops-iris-staging-ab?", True),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/mlops-iris-staging-a?", False),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/*", False),
    ],
)
def test_resource_patterns_match_case_sensitively_with_wildcards(pattern, allowed):
    assert evaluate(policy(allow(resource=pattern)), "sagemaker:CreateTrainingJob", JOB).allowed is allowed


def test_not_action_allows_everything_but_the_listed_actions():
    everything_but_iam = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate(everything_but_iam, "sagemaker:CreateTrainingJob", JOB).allowed
    assert not evaluate(everything_but_iam, "iam:PassRole", ROLE).allowed


def test_not_resource_allows_every_resource_but_the_listed_ones():
    not_prod = policy(
        {"Effect": "Allow", "Action": "sagemaker:*", "NotResource": "arn:aws:sagemaker:*:*:endpoint/*-prod"}
    )
    staging = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlops-iris-staging"
    prod = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlops-iris-prod"
    assert evaluate(not_prod, "sagemaker:UpdateEndpoint", staging).allowed
    assert not evaluate(not_prod, "sagemaker:UpdateEndpoint", prod).allowed


def test_a_deny_with_not_action_denies_everything_else():
    only_reads = [
        policy(allow(action="*", resource="*")),
        policy({"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"}),
    ]
    assert evaluate(only_reads, "s3:GetObject", "arn:aws:s3:::b/k").allowed
    assert evaluate(only_reads, "s3:PutObject", "arn:aws:s3:::b/k").denied_by == EXPLICIT_DENY


# --- policy variables -------------------------------------------------------------------------------------


def test_a_policy_variable_in_a_resource_is_filled_from_the_context():
    home = policy(allow(action="s3:GetObject", resource="arn:aws:s3:::home/${aws:username}/*"))
    assert evaluate(home, "s3:GetObject", "arn:aws:s3:::home/ana/notes", {"aws:username": "ana"}).allowed
    assert not evaluate(home, "s3:GetObject", "arn:aws:s3:::home/bob/notes", {"aws:username": "ana"}).allowed


def test_a_filled_variable_is_literal_not_a_wildcard():
    home = policy(allow(action="s3:GetObject", resource="arn:aws:s3:::home/${aws:username}/*"))
    assert not evaluate(home, "s3:GetObject", "arn:aws:s3:::home/bob/notes", {"aws:username": "*"}).allowed


def test_an_allow_whose_variable_has_no_value_does_not_apply_and_is_reported():
    tagged = policy(
        allow(resource="arn:aws:sagemaker:*:*:training-job/${aws:PrincipalTag/team}-*", Sid="Team")
    )
    decision = evaluate(tagged, "sagemaker:CreateTrainingJob", JOB)
    assert not decision.allowed
    assert decision.unevaluated == (
        "Team: Resource arn:aws:sagemaker:*:*:training-job/${aws:PrincipalTag/team}-*: "
        "a policy variable is not in the request context",
    )


def test_a_deny_whose_variable_has_no_value_applies():
    decision = evaluate(
        [
            policy(allow(resource="*")),
            policy(deny(resource="arn:aws:sagemaker:*:*:training-job/${aws:username}")),
        ],
        "sagemaker:CreateTrainingJob",
        JOB,
    )
    assert decision.denied_by == EXPLICIT_DENY and decision.unevaluated


# --- conditions -------------------------------------------------------------------------------------------


def passing(condition: dict) -> dict:
    return policy(allow(action="iam:PassRole", resource=ROLE, Condition=condition, Sid="Pass"))


def test_string_equals_condition_reads_the_request_context():
    pass_to_sagemaker = passing({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    assert evaluate(
        pass_to_sagemaker, "iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}
    ).allowed
    assert not evaluate(
        pass_to_sagemaker, "iam:PassRole", ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}
    ).allowed


def test_condition_keys_ignore_case_and_several_values_are_alternatives():
    either = passing(
        {"StringEquals": {"IAM:passedtoservice": ["states.amazonaws.com", "sagemaker.amazonaws.com"]}}
    )
    assert evaluate(either, "iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"}).allowed


def test_every_key_and_operator_of_a_condition_must_hold():
    both = passing(
        {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"},
            "StringLike": {"aws:RequestedRegion": "us-*"},
        }
    )
    context = {"iam:PassedToService": "sagemaker.amazonaws.com", "aws:RequestedRegion": "eu-west-1"}
    assert not evaluate(both, "iam:PassRole", ROLE, context).allowed
    assert evaluate(both, "iam:PassRole", ROLE, {**context, "aws:RequestedRegion": "us-east-1"}).allowed


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value", "holds"),
    [
        ("StringLike", "data/*", "data/train/x.csv", True),
        ("StringLike", "data/*", "Data/train", False),
        ("StringNotEquals", "prod", "staging", True),
        ("StringNotEquals", "prod", "prod", False),
        ("StringEqualsIgnoreCase", "PROD", "prod", True),
        ("StringNotLike", "tmp/*", "data/x", True),
        (
            "ArnLike",
            f"arn:aws:states:*:{ACCOUNT}:stateMachine:*",
            f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:sm",
            True,
        ),
        (
            "ArnLike",
            f"arn:aws:states:*:{ACCOUNT}:stateMachine:*",
            "arn:aws:states:us-east-1:999999999999:stateMachine:sm",
            False,
        ),
        ("ArnEquals", f"arn:aws:iam::{ACCOUNT}:role/*", ROLE, True),
        ("ArnNotLike", f"arn:aws:iam::{ACCOUNT}:role/admin*", ROLE, True),
        ("Bool", "true", True, True),
        ("Bool", "false", "true", False),
        ("NumericLessThanEquals", "3600", "900", True),
        ("NumericGreaterThan", "3600", "900", False),
    ],
)
def test_condition_operators(operator, policy_value, request_value, holds):
    condition = passing({operator: {"test:key": policy_value}})
    assert evaluate(condition, "iam:PassRole", ROLE, {"test:key": request_value}).allowed is holds


def test_a_key_missing_from_the_context_never_lets_an_allow_apply_and_is_reported():
    decision = evaluate(
        passing({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}), "iam:PassRole", ROLE
    )
    assert not decision.allowed
    assert decision.unevaluated == (
        "Pass: StringEquals iam:PassedToService: iam:PassedToService is not in the request context",
    )


def test_a_deny_whose_key_is_missing_from_the_context_applies_and_is_reported():
    policies = [
        policy(allow(action="s3:*", resource="*")),
        policy(
            deny(
                action="s3:*",
                resource="*",
                Condition={"Bool": {"aws:SecureTransport": "false"}},
                Sid="TlsOnly",
            )
        ),
    ]
    decision = evaluate(policies, "s3:GetObject", "arn:aws:s3:::b/k")
    assert (decision.denied_by, decision.matched) == (EXPLICIT_DENY, ("TlsOnly",))
    assert decision.unevaluated
    assert evaluate(policies, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": True}).allowed


def test_if_exists_holds_when_the_key_is_missing():
    only_sagemaker = passing({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    assert evaluate(only_sagemaker, "iam:PassRole", ROLE).allowed
    assert evaluate(only_sagemaker, "iam:PassRole", ROLE, {"iam:PassedToService": None}).allowed
    assert not evaluate(
        only_sagemaker, "iam:PassRole", ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}
    ).allowed


def test_a_key_the_request_does_not_carry_fails_a_positive_operator_and_passes_a_negated_one():
    absent = {"aws:ResourceTag/stage": None}
    assert not evaluate(
        passing({"StringEquals": {"aws:ResourceTag/stage": "prod"}}), "iam:PassRole", ROLE, absent
    ).allowed
    assert evaluate(
        passing({"StringNotEquals": {"aws:ResourceTag/stage": "prod"}}), "iam:PassRole", ROLE, absent
    ).allowed


def test_if_exists_on_a_set_operator_holds_when_the_request_carries_no_such_key():
    known_tags = passing({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["stage"]}})
    assert evaluate(known_tags, "iam:PassRole", ROLE, {"aws:TagKeys": None}).allowed
    assert not evaluate(known_tags, "iam:PassRole", ROLE, {"aws:TagKeys": ["team"]}).allowed


def test_null_checks_whether_the_request_carries_the_key():
    must_tag = passing({"Null": {"aws:RequestTag/stage": "false"}})
    assert evaluate(must_tag, "iam:PassRole", ROLE, {"aws:RequestTag/stage": "prod"}).allowed
    assert not evaluate(must_tag, "iam:PassRole", ROLE, {"aws:RequestTag/stage": None}).allowed


def test_for_any_value_needs_one_request_value_in_the_policy_values():
    any_team = passing({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "owner"]}})
    assert evaluate(any_team, "iam:PassRole", ROLE, {"aws:TagKeys": ["stage", "team"]}).allowed
    assert not evaluate(any_team, "iam:PassRole", ROLE, {"aws:TagKeys": ["stage"]}).allowed
    assert not evaluate(any_team, "iam:PassRole", ROLE, {"aws:TagKeys": None}).allowed


def test_for_all_values_needs_every_request_value_in_the_policy_values_and_holds_for_none():
    known_tags = passing({"ForAllValues:StringLike": {"aws:TagKeys": ["stage", "team-*"]}})
    assert evaluate(known_tags, "iam:PassRole", ROLE, {"aws:TagKeys": ["stage", "team-ml"]}).allowed
    assert not evaluate(known_tags, "iam:PassRole", ROLE, {"aws:TagKeys": ["stage", "cost"]}).allowed
    assert evaluate(known_tags, "iam:PassRole", ROLE, {"aws:TagKeys": []}).allowed  # AWS's documented pitfall


def test_several_request_values_without_a_set_operator_are_reported():
    decision = evaluate(
        passing({"StringEquals": {"aws:TagKeys": "stage"}}),
        "iam:PassRole",
        ROLE,
        {"aws:TagKeys": ["stage", "team"]},
    )
    assert not decision.allowed and "ForAnyValue/ForAllValues" in decision.unevaluated[0]


@pytest.mark.parametrize(
    "operator", ["DateGreaterThan", "IpAddress", "StringMatchesRegex", "ForSomeValues:StringEquals"]
)
def test_an_operator_the_evaluator_does_not_know_is_reported_and_never_allows(operator):
    decision = evaluate(
        passing({operator: {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
        "iam:PassRole",
        ROLE,
        {"aws:CurrentTime": "2026-12-01T00:00:00Z"},
    )
    assert not decision.allowed
    assert decision.unevaluated == (f"Pass: {operator} aws:CurrentTime: operator not supported",)


def test_a_policy_variable_in_a_condition_value_is_filled_from_the_context():
    own_session = passing({"StringEquals": {"sts:RoleSessionName": "${aws:username}"}})
    assert evaluate(
        own_session, "iam:PassRole", ROLE, {"sts:RoleSessionName": "ana", "aws:username": "ana"}
    ).allowed
    assert not evaluate(
        own_session, "iam:PassRole", ROLE, {"sts:RoleSessionName": "bob", "aws:username": "ana"}
    ).allowed


# --- trust policies ---------------------------------------------------------------------------------------

SAGEMAKER_TRUST = policy(
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
)


def test_a_service_principal_named_in_the_trust_policy_may_assume_the_role():
    assert trust_allows(SAGEMAKER_TRUST, "Service", "sagemaker.amazonaws.com").allowed
    refused = trust_allows(SAGEMAKER_TRUST, "Service", "lambda.amazonaws.com")
    assert (refused.allowed, refused.denied_by) == (False, TRUST_IMPLICIT_DENY)


def test_an_account_principal_trusts_every_role_session_of_that_account():
    account_trust = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    )
    assert trust_allows(account_trust, "AWS", SESSION).allowed
    assert not trust_allows(account_trust, "AWS", "arn:aws:sts::999999999999:assumed-role/release/x").allowed
    role_trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/release"},
            "Action": "sts:AssumeRole",
        }
    )
    assert trust_allows(role_trust, "AWS", SESSION).allowed


def test_a_trust_policy_checks_the_action_too():
    assert not trust_allows(SAGEMAKER_TRUST, "Service", "sagemaker.amazonaws.com", "sts:TagSession").allowed


def test_oidc_context_exposes_only_the_claims_aws_turns_into_keys():
    context = oidc_context(
        "https://token.actions.githubusercontent.com",
        {"aud": "sts.amazonaws.com", "sub": "repo:o/r:ref:refs/heads/main", "repository": "o/r"},
    )
    assert context["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert context["token.actions.githubusercontent.com:sub"] == "repo:o/r:ref:refs/heads/main"
    assert "token.actions.githubusercontent.com:repository" not in context


def test_a_trust_condition_on_a_claim_aws_does_not_expose_is_reported_and_refuses():
    provider = "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
    trust = policy(
        {
            "Sid": "ByRepositoryClaim",
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"token.actions.githubusercontent.com:repository": "o/r"}},
        }
    )
    claims = {"sub": "repo:o/r:ref:refs/heads/main", "repository": "o/r"}
    context = oidc_context("token.actions.githubusercontent.com", claims)
    decision = trust_allows(trust, "Federated", provider, "sts:AssumeRoleWithWebIdentity", context)
    assert not decision.allowed and decision.unevaluated[0].startswith("ByRepositoryClaim: StringEquals")


# --- messages and whole calls -----------------------------------------------------------------------------


def test_access_denied_message_for_an_implicit_deny_is_awss_text():
    decision = evaluate(policy(), "sagemaker:CreateTrainingJob", JOB)
    assert access_denied_message(SESSION, "sagemaker:CreateTrainingJob", JOB, decision) == (
        f"User: {SESSION} is not authorized to perform: sagemaker:CreateTrainingJob on resource: {JOB} "
        "because no identity-based policy allows the sagemaker:CreateTrainingJob action"
    )


def test_access_denied_message_for_an_explicit_deny_is_awss_text():
    decision = evaluate(policy(deny()), "sagemaker:CreateTrainingJob", JOB)
    assert access_denied_message(SESSION, "sagemaker:CreateTrainingJob", JOB, decision) == (
        f"User: {SESSION} is not authorized to perform: sagemaker:CreateTrainingJob on resource: {JOB} "
        "with an explicit deny in an identity-based policy"
    )


def test_a_refused_web_identity_gets_stss_own_message():
    decision = trust_allows(
        policy(), "Federated", "arn:aws:iam::1:oidc-provider/x", "sts:AssumeRoleWithWebIdentity"
    )
    assert access_denied_message(None, "sts:AssumeRoleWithWebIdentity", None, decision) == (
        "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    )


def test_authorize_call_checks_the_implied_pass_role_with_its_service():
    policies = policy(
        allow(resource=f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/mlops-iris-*"),
        allow(
            action="iam:PassRole",
            resource=ROLE,
            Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    )
    params = {"TrainingJobName": "mlops-iris-staging-abc", "RoleArn": ROLE}
    allowed = authorize_call(
        policies, SESSION, "sagemaker", "CreateTrainingJob", params, "us-east-1", ACCOUNT
    )
    assert allowed.allowed and [c[0] for c in allowed.checks] == [
        "sagemaker:CreateTrainingJob",
        "iam:PassRole",
    ]

    other_role = f"arn:aws:iam::{ACCOUNT}:role/admin"
    refused = authorize_call(
        policies,
        SESSION,
        "sagemaker",
        "CreateTrainingJob",
        {**params, "RoleArn": other_role},
        "us-east-1",
        ACCOUNT,
    )
    assert (refused.allowed, refused.code) == (False, "AccessDeniedException")
    assert refused.message.endswith(
        f"iam:PassRole on resource: {other_role} because no identity-based policy allows the iam:PassRole action"
    )


def test_authorize_call_evaluates_an_unresolved_resource_as_star_and_reports_it():
    params = {"SecretId": "signing"}
    scoped = policy(
        allow(action="secretsmanager:GetSecretValue", resource="arn:aws:secretsmanager:*:*:secret:signing-*")
    )
    refused = authorize_call(
        scoped, SESSION, "secretsmanager", "GetSecretValue", params, "us-east-1", ACCOUNT
    )
    assert not refused.allowed and "SecretId 'signing'" in refused.unevaluated[0]
    anything = policy(allow(action="secretsmanager:GetSecretValue", resource="*"))
    assert authorize_call(
        anything, SESSION, "secretsmanager", "GetSecretValue", params, "us-east-1", ACCOUNT
    ).allowed
