"""The ${{ }} expressions the local workflow runner evaluates, and what it refuses."""

import pytest

from mlops.local.expressions import ExpressionError, Strict, condition, evaluate, interpolate

CONTEXTS = {
    "github": Strict("the github context", {"sha": "abc123", "run_id": "7", "event_name": "push"}),
    "inputs": {"ref": "", "hyperparameters": "max_depth=3"},
    "vars": Strict("vars", {"AWS_REGION": "us-east-1"}),
    "steps": {"image": {"outputs": {"exists": "false", "uri": "r/x:abc"}, "outcome": "success"}},
}
STATUS = {"success": lambda: True, "failure": lambda: False, "always": lambda: True}


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("inputs.ref || github.sha", "abc123"),
        ("inputs.hyperparameters || github.sha", "max_depth=3"),
        ("github.sha && 'yes'", "yes"),
        ("inputs.ref && 'yes'", ""),
        ("steps.image.outputs.exists == 'false'", True),
        ("steps.image.outputs.exists == 'FALSE'", True),  # GitHub compares strings ignoring case
        ("steps.image.outputs.exists != 'false'", False),
        ("!(steps.image.outputs.exists == 'false')", False),
        ("steps.missing.outputs.uri", None),  # a step that never ran: null, as on GitHub
        ("steps['image'].outputs['uri']", "r/x:abc"),
        ("github.run_id == 7", True),  # a string compared with a number is read as one
        ("1 < 2 && 3 >= 3", True),
        ("'it''s'", "it's"),
        ("null", None),
        ("true && false", False),
        ("(false || 0) || 'last'", "last"),
    ],
)
def test_expression_values(expression, value):
    assert evaluate(expression, CONTEXTS, STATUS) == value


def test_interpolation_writes_values_as_github_does():
    text = "release-${{ github.run_id }}-${{ inputs.ref }}-${{ 1 == 1 }}-${{ 3 }}"
    assert interpolate(text, CONTEXTS) == "release-7--true-3"


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("contains(github.sha, 'a')", "does not evaluate contains()"),
        ("hashFiles('x')", "does not evaluate hashFiles()"),
        ("secrets.TOKEN", "no context named 'secrets'"),
        ("vars.NOT_LISTED", "vars has no 'NOT_LISTED'"),
        ("github.no_such_thing", "has no 'no_such_thing'"),
        ("github.sha ==", "expected more"),
        ("github.sha )", "unexpected ')'"),
        ("steps.*.outputs", "a property name must follow the dot"),
        ("'open", "cannot read"),
    ],
)
def test_what_cannot_be_evaluated_is_an_error_never_an_empty_string(expression, says):
    with pytest.raises(ExpressionError, match=None) as raised:
        interpolate("${{ " + expression + " }}", CONTEXTS, STATUS)
    assert says in str(raised.value)
    assert expression.strip() in str(raised.value)


def test_if_without_a_status_function_needs_the_earlier_steps_to_have_succeeded():
    failed = {"success": lambda: False, "failure": lambda: True, "always": lambda: True}
    assert condition("steps.image.outputs.exists == 'false'", CONTEXTS, STATUS) is True
    assert condition("steps.image.outputs.exists == 'false'", CONTEXTS, failed) is False
    assert condition("${{ always() }}", CONTEXTS, failed) is True
    assert condition("failure()", CONTEXTS, failed) is True
    assert condition("${{ failure() && steps.image.outputs.exists == 'false' }}", CONTEXTS, failed) is True
    assert condition(False, CONTEXTS, STATUS) is False


def test_a_condition_mixing_text_and_an_expression_is_refused():
    with pytest.raises(ExpressionError, match="mixes text"):
        condition("x ${{ always() }}", CONTEXTS, STATUS)
