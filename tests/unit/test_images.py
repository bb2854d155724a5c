"""The container engine and base image the model image is built and run with, and their command lines,
checked with stand-in engines on PATH (no image is built here)."""

import gc

import pytest

from mlops.local import images

DEFAULT_BASE = images.dockerfile_base_image()


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Puts stand-in `docker`/`podman` on PATH: `docker info` answers if the daemon is "running", `podman
    pull` succeeds if the registry is "reachable"; every call is recorded. Returns the chosen Engine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # only the stand-ins: not this machine's own engines
    monkeypatch.delenv(images.ENGINE_ENV, raising=False)

    def make(*, docker=None, podman=None, wanted=None):
        for name, state in (("docker", docker), ("podman", podman)):
            if state is None:
                continue
            answers = {"running": "info", "reachable": "pull"}.get(state, "never")
            (bin_dir / name).write_text(
                f'#!/bin/sh\necho "$0 $*" >> {tmp_path}/calls\n'
                f'case " $* " in *" {answers} "*) exit 0 ;; *" info "*|*" pull "*) exit 1 ;; esac\n'
            )
            (bin_dir / name).chmod(0o755)
        if wanted:
            monkeypatch.setenv(images.ENGINE_ENV, wanted)
        images.engine.cache_clear()
        return images.engine()

    yield make
    images.engine.cache_clear()


def test_docker_is_taken_when_its_daemon_answers_and_builds_on_the_dockerfiles_base(machine):
    chosen = machine(docker="running", podman="reachable")
    assert (chosen.name, chosen.base_image) == ("docker", DEFAULT_BASE)
    assert "daemon answers" in chosen.describe()


def test_docker_without_a_daemon_falls_to_podman_on_the_registry_base_when_it_can_be_pulled(machine):
    chosen = machine(docker="stopped", podman="reachable")
    assert (chosen.name, chosen.base_image) == ("podman", DEFAULT_BASE)
    assert "no Docker daemon" in chosen.reason


def test_podman_builds_on_a_local_debian_base_only_when_no_registry_image_can_be_pulled(machine):
    chosen = machine(podman="unreachable")
    assert (chosen.name, chosen.base_image) == ("podman", images.LOCAL_BASE_IMAGE)
    assert f"{DEFAULT_BASE} cannot be pulled" in chosen.describe()


def test_the_choice_can_be_forced_either_way(machine):
    assert machine(docker="running", podman="unreachable", wanted="podman").name == "podman"


def test_forcing_docker_without_a_daemon_says_so(machine):
    with pytest.raises(
        images.ImageError, match="MLOPS_IMAGE_ENGINE=docker but the Docker daemon does not answer"
    ):
        machine(docker="stopped", podman="reachable", wanted="docker")


def test_no_engine_at_all_says_what_to_do(machine):
    with pytest.raises(images.ImageError, match="neither a running Docker nor podman"):
        machine()


def test_an_unknown_engine_name_is_refused(machine):
    with pytest.raises(images.ImageError, match="must be docker or podman"):
        machine(docker="running", wanted="kubernetes")


def test_podman_gets_this_machines_runtime_options_and_docker_none(machine):
    assert machine(podman="unreachable").argv("ps")[1:] == [
        "--runtime",
        "runc",
        "--cgroup-manager=cgroupfs",
        "ps",
    ]
    assert machine(docker="running").argv("ps")[1:] == ["ps"]


def test_run_args_run_a_program_as_sagemaker_does_with_opt_ml_mounted_as_it_is(machine, tmp_path):
    machine(docker="running")
    argv = images.run_args("localhost/model:1", "serve", base_dir=tmp_path, port=8123, env={"A": "b"})
    assert argv[0].endswith("/docker")
    assert argv[-2:] == ["localhost/model:1", "serve"]
    assert "--network=host" in argv
    assert argv[argv.index("--volume") + 1] == f"{tmp_path}:/opt/ml"  # not handed to the image's user
    assert "SAGEMAKER_BIND_TO_PORT=8123" in argv
    assert "A=b" in argv
    assert argv[argv.index("--ulimit") + 1] == "nofile=1024:1024"


def test_the_default_base_image_is_pulled_from_ecr_public_not_docker_hubs_rate_limited_anonymous_pulls():
    # An image name without a registry host ("python:3.11-slim") means Docker Hub.
    assert DEFAULT_BASE.startswith("public.ecr.aws/docker/library/python:3.11")


def test_debian_mirror_comes_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment: here\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert images.debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_comes_from_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
    )
    assert images.debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_defaults_to_debians(tmp_path):
    assert images.debian_mirror(tmp_path) == images.DEFAULT_DEBIAN_MIRROR


def test_pip_settings_pass_through_only_what_works_inside_the_build():
    args = images.pip_build_args(
        {
            "index-url": "https://index.example/simple",
            "extra-index-url": "file:///opt/pypi/simple https://mirror.example/simple",
            "cert": str(images.HOST_CA_BUNDLE),
        }
    )
    assert args == [
        *("--build-arg", "PIP_INDEX_URL=https://index.example/simple"),
        *("--build-arg", "PIP_EXTRA_INDEX_URL=https://mirror.example/simple"),
        *("--build-arg", "PIP_TRUSTED_HOST="),
        *("--build-arg", f"PIP_CERT={images.HOST_CA_BUNDLE}"),
    ]


def test_local_file_indexes_and_foreign_certificates_are_dropped():
    # Given empty (pip ignores empty settings), so that the engine does not warn that they are missing.
    assert images.pip_build_args({"extra-index-url": "file:///opt/pypi", "cert": "/x.pem"}) == [
        *("--build-arg", "PIP_INDEX_URL="),
        *("--build-arg", "PIP_EXTRA_INDEX_URL="),
        *("--build-arg", "PIP_TRUSTED_HOST="),
        *("--build-arg", "PIP_CERT="),
    ]


def test_every_pip_setting_passed_is_one_the_dockerfile_declares():
    declared = {
        line.split()[1]
        for line in (images.CONTAINER_DIR / "Dockerfile").read_text().splitlines()
        if line.startswith("ARG PIP_")
    }
    passed = {arg.split("=", 1)[0] for arg in images.pip_build_args({})[1::2]}
    assert passed == declared


FAKE_DEBOOTSTRAP = """#!/bin/sh
echo "I: Retrieving InRelease"
i=0
while [ $i -lt 30 ]; do echo "I: Retrieving pkg$i 1.0-$i"; echo "I: Validating pkg$i 1.0-$i"; i=$((i+1)); done
echo "I: Unpacking required packages..."
echo "I: Unpacking libc6..."
echo "I: network limits: $(grep read_timeout "$WGETRC")"
echo "some detail of the failure" >&2
echo "E: Couldn't download package pkg7" >&2
exit 1
"""


@pytest.fixture
def failing_debootstrap(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "debootstrap").write_text(FAKE_DEBOOTSTRAP)
    (bin_dir / "debootstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_debootstrap_shows_its_stages_and_a_package_count_not_every_package(failing_debootstrap, tmp_path):
    said: list[str] = []
    with pytest.raises(images.ImageError):
        images._debootstrap(str(tmp_path / "rootfs"), "http://mirror.example/debian", said.append)
    assert said == [
        "debootstrap: Retrieving InRelease",
        "debootstrap: 25 packages fetched",
        "debootstrap: Unpacking required packages...",
        "debootstrap: network limits: read_timeout = 60",
        "debootstrap: Couldn't download package pkg7",
    ]


def test_a_failed_debootstrap_names_the_mirror_and_ends_with_what_it_said(failing_debootstrap, tmp_path):
    with pytest.raises(images.ImageError) as raised:
        images._debootstrap(str(tmp_path / "rootfs"), "http://mirror.example/debian", lambda line: None)
    message = str(raised.value)
    assert "http://mirror.example/debian failed with exit code 1" in message
    assert message.endswith("some detail of the failure\nE: Couldn't download package pkg7")


def test_a_failed_engine_command_is_an_image_error_naming_it():
    with pytest.raises(images.ImageError, match="podman build of x failed with exit code 3"):
        images._run("podman build of x", ["sh", "-c", "exit 3"])


def test_a_dropped_mirror_connection_is_retried_once_and_the_base_image_imported(tmp_path, monkeypatch):
    monkeypatch.setenv(images.ENGINE_ENV, "podman")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        # Fails the first time (after fetching), then finishes the same root filesystem.
        "debootstrap": """#!/bin/sh
rootfs=$5
if [ ! -f "$rootfs/fetched" ]; then touch "$rootfs/fetched"; echo "E: Couldn't download pkg7"; exit 1; fi
mkdir -p "$rootfs/etc/ssl/certs"; echo "I: Base system installed successfully."
""",
        "podman": f"""#!/bin/sh
case "$*" in
  *"image inspect"*|*pull*) exit 1 ;;
  *import*) echo "$*" > {tmp_path}/import-args.txt; tar -tvf - > {tmp_path}/imported.txt ;;
esac
""",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(images.tempfile, "gettempdir", lambda: str(tmp_path))  # the lock file
    images.engine.cache_clear()

    said: list[str] = []
    try:
        assert images.ensure_base_image("localhost/base:test", log=said.append) is True
    finally:
        images.engine.cache_clear()
    assert "debian failed with exit code 1; trying once more" in "\n".join(said)
    assert said[-2:] == [
        "debootstrap: Base system installed successfully.",
        "base image localhost/base:test ready",
    ]
    listing = (tmp_path / "imported.txt").read_text().splitlines()
    imported = [line.split()[-1] for line in listing]
    # The image's "/" is the archive's first entry: readable by the model user, not 0700 like a temp folder.
    assert listing[0].startswith("drwxr-xr-x") and imported[0] == "./"
    assert (
        "--change=ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        in (tmp_path / "import-args.txt").read_text()
    )
    assert "./fetched" in imported and "./etc/ssl/certs/ca-certificates.crt" in imported


def test_rehearsing_in_the_image_without_an_engine_is_an_error_naming_the_option(machine, tmp_path, capsys):
    from mlops.cli import main

    with pytest.raises(images.ImageError):
        machine()  # neither docker nor podman
    try:
        assert main(["rehearse", "--runner", "image", "--work-dir", str(tmp_path)]) == 2
    finally:
        gc.unfreeze()  # the rehearsal freezes what start-up built; this process lives on
        images.engine.cache_clear()
    err = capsys.readouterr().err
    assert "mlops: error: --runner image: neither a running Docker nor podman is available" in err
    assert "Traceback" not in err


def volumes(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--volume"]


def test_the_image_runner_mounts_opt_ml_and_the_model_read_only_for_serve(machine, tmp_path):
    from mlops.local.runners import ImageRunner

    machine(docker="running")
    runner = ImageRunner(lambda image_uri: "localhost/model:1")
    serve, _ = runner._argv("ecr-uri", tmp_path, "serve", {})
    train, _ = runner._argv("ecr-uri", tmp_path, "train", {})
    assert volumes(serve) == [f"{tmp_path}:/opt/ml", f"{tmp_path}/model:/opt/ml/model:ro"]
    assert volumes(train) == [f"{tmp_path}:/opt/ml"]
