import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from mlmodel import contract
from mlmodel.contract import Paths


def test_paths_follow_sagemakers_layout():
    paths = Paths(Path("/opt/ml"))
    assert str(paths.hyperparameters_file) == "/opt/ml/input/config/hyperparameters.json"
    assert str(paths.input_data_config_file) == "/opt/ml/input/config/inputdataconfig.json"
    assert str(paths.resource_config_file) == "/opt/ml/input/config/resourceconfig.json"
    assert str(paths.channel_dir("training")) == "/opt/ml/input/data/training"
    assert str(paths.model_dir) == "/opt/ml/model"
    assert str(paths.output_dir) == "/opt/ml/output"
    assert str(paths.failure_file) == "/opt/ml/output/failure"
    assert str(paths.output_data_dir) == "/opt/ml/output/data"


def test_base_dir_comes_from_the_environment_with_sagemakers_default():
    assert Paths.from_env({}).base == Path("/opt/ml")
    assert Paths.from_env({contract.BASE_DIR_ENV: "/tmp/job"}).base == Path("/tmp/job")


def test_server_settings_have_sagemaker_defaults():
    assert contract.server_port({}) == 8080
    assert contract.server_timeout({}) == 60
    assert contract.server_workers({}) == contract.available_cpus() >= 1


def test_server_settings_come_from_the_environment():
    env = {contract.PORT_ENV: "9001", contract.WORKERS_ENV: "3", contract.TIMEOUT_ENV: "5"}
    assert (contract.server_port(env), contract.server_workers(env), contract.server_timeout(env)) == (
        9001,
        3,
        5,
    )


@pytest.mark.parametrize("value", ["0", "-1", "eight", "1.5"])
def test_invalid_server_setting_names_the_variable(value):
    with pytest.raises(ValueError, match=f"{contract.WORKERS_ENV}='{value}' is invalid"):
        contract.server_workers({contract.WORKERS_ENV: value})


def test_exit_codes_separate_user_errors_from_unexpected_ones():
    assert (contract.EXIT_OK, contract.EXIT_USER_ERROR, contract.EXIT_UNEXPECTED) == (0, 1, 2)


def test_outside_the_image_the_programs_keep_their_user(tmp_path):
    assert contract.drop_privileges([tmp_path / "model"], environ={}) == ""
    assert not (tmp_path / "model").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root, as in the image")
def test_as_root_in_the_image_a_program_hands_over_what_it_writes_and_gives_up_root(tmp_path):
    model_dir = tmp_path / "model"
    script = (
        "import os, sys; from pathlib import Path; from mlmodel import contract;"
        f"print(contract.drop_privileges([Path({str(model_dir)!r})])); print(os.getuid(), os.getgid())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, contract.RUN_AS_ENV: "nobody"},
        capture_output=True,
        text=True,
        check=True,
    )
    nobody = pwd.getpwnam("nobody")
    assert done.stdout.splitlines() == [
        f"running as nobody (uid {nobody.pw_uid})",
        f"{nobody.pw_uid} {nobody.pw_gid}",
    ]
    assert model_dir.stat().st_uid == nobody.pw_uid


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root, as in the image")
def test_input_the_model_user_could_not_read_keeps_the_program_root(tmp_path):
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text("{}")
    (config / "hyperparameters.json").chmod(0o600)  # root's alone
    said = contract.drop_privileges(
        [tmp_path / "model"], readable=[tmp_path / "input"], environ={contract.RUN_AS_ENV: "nobody"}
    )
    assert said == f"staying root: {config / 'hyperparameters.json'} is not readable by nobody"
    assert os.geteuid() == 0 and not (tmp_path / "model").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root, as in the image")
def test_an_image_naming_a_user_it_lacks_stays_root_and_says_so(tmp_path):
    said = contract.drop_privileges([tmp_path], environ={contract.RUN_AS_ENV: "no-such-user"})
    assert said == "staying root: the image has no user 'no-such-user' (MODEL_RUN_AS)"
    assert os.geteuid() == 0
