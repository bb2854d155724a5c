import pytest
from fnharness import load_function

LIMIT = 1024  # UpdateModelPackage's ApprovalDescription


@pytest.fixture
def registry(aws_credentials):
    return load_function("registry/app.py")


def _event(error: str, cause: str) -> dict:
    return {"failure": {"stage": "approval", "Error": error, "Cause": cause}}


def test_a_short_reason_is_recorded_as_it_is(registry, lambda_context):
    result = registry.handler(_event("Rejected", "rejected by ana@example.com: too slow"), lambda_context)
    assert result == {"description": "Rejected: rejected by ana@example.com: too slow", "truncated": False}


def test_the_longest_reason_a_person_can_submit_is_cut_to_the_registrys_limit_visibly(
    registry, lambda_context
):
    # The approval form takes 200 characters of approver and 1000 of reason: together above the limit.
    cause = f"rejected by {'a' * 200}: {'why ' * 250}"
    result = registry.handler(_event("Rejected", cause), lambda_context)
    assert len(result["description"]) == LIMIT
    assert result["description"].startswith("Rejected: rejected by aaa")
    assert result["description"].endswith("… (truncated; full reason in the execution output)")
    assert result["truncated"] is True


def test_line_breaks_become_spaces_because_the_registry_takes_one_line(registry, lambda_context):
    # ApprovalDescription's pattern is `.*`, which matches no line break.
    result = registry.handler(
        _event("Rejected", "rejected by ana:\r\nfirst line\nsecond\tline"), lambda_context
    )
    assert result["description"] == "Rejected: rejected by ana: first line second line"
