import pytest

from mlops.names import (
    SAGEMAKER_NAME,
    InvalidNameError,
    endpoint_name_for,
    execution_name_for,
    release_names_for,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_release_names_are_valid_sagemaker_names_at_the_longest_project_name():
    names = release_names_for("a" * 20, "staging", execution_name_for(COMMIT, 999, run_id="12345678901"))
    for name in names.sagemaker_names().values():
        assert len(name) <= 63
        assert SAGEMAKER_NAME.match(name)
    assert names.checkpoints == f"checkpoints/{names.training_job}/"


def test_rerun_of_the_same_commit_gets_different_names():
    first = release_names_for("mlops-iris", "staging", execution_name_for(COMMIT, 1))
    second = release_names_for("mlops-iris", "staging", execution_name_for(COMMIT, 2))
    assert set(first.as_dict().values()).isdisjoint(second.as_dict().values())


def test_each_kind_of_resource_has_its_own_name_within_a_release():
    names = release_names_for("mlops-iris", "staging", execution_name_for(COMMIT, 1)).as_dict()
    assert len(set(names.values())) == len(names)


@pytest.mark.parametrize("commit", ["", "xyz1234", "ABCDEF0", "0123"])
def test_a_commit_that_is_not_hex_is_refused(commit):
    with pytest.raises(InvalidNameError, match="commit"):
        execution_name_for(commit, 1)


def test_attempt_zero_is_refused():
    with pytest.raises(InvalidNameError, match="attempt"):
        execution_name_for(COMMIT, 0)


def test_endpoint_name_is_stable_per_stage():
    assert endpoint_name_for("mlops-iris", "staging") == "mlops-iris-staging"
    with pytest.raises(InvalidNameError):
        endpoint_name_for("mlops-iris", "bad_stage")


def test_stages_never_share_a_name_prefix():
    from mlops.names import stage_prefix

    staging = release_names_for("mlops-iris", "staging", execution_name_for(COMMIT, 1)).sagemaker_names()
    prod = release_names_for("mlops-iris", "prod", execution_name_for(COMMIT, 1)).sagemaker_names()
    assert all(name.startswith(stage_prefix("mlops-iris", "staging")) for name in staging.values())
    assert not any(name.startswith(stage_prefix("mlops-iris", "staging")) for name in prod.values())
    with pytest.raises(InvalidNameError, match="stage"):
        stage_prefix("mlops-iris", "dev")


def test_each_training_job_checkpoints_under_its_own_prefix_no_other_job_shares():
    first = release_names_for("mlops-iris", "staging", execution_name_for(COMMIT, 1))
    second = release_names_for("mlops-iris", "staging", execution_name_for(COMMIT, 2))
    # a prefix of another's would hand one job the other's checkpoints on resume
    assert not second.checkpoints.startswith(first.checkpoints)
    assert not first.checkpoints.startswith(second.checkpoints)
    assert first.checkpoints.startswith("checkpoints/mlops-iris-staging-")
