"""Rules a real AWS account enforces that the local rehearsal cannot see: the template and the state machine
definition are checked against them here, each rule against the files as they are."""

from __future__ import annotations

import pytest
from policy_checks import INFRA, load_template

APP = INFRA / "template.yaml"


@pytest.fixture(scope="module")
def app() -> dict:
    return load_template(APP)


def test_the_model_registry_outlives_the_stack_that_created_it(app):
    # CloudFormation cannot delete a group that still holds versions: deleting the stack would fail.
    group = app["Resources"]["ModelPackageGroup"]
    assert group["DeletionPolicy"] == "Retain"
    assert group["UpdateReplacePolicy"] == "Retain"
