"""The podman command lines for the model image, checked without running podman."""

import gc

import pytest

from mlops.local import podman


@pytest.fixture(autouse=True)
def fake_podman(monkeypatch):
    monkeypatch.setattr(podman.shutil, "which", lambda name: f"/usr/bin/{name}")


def test_run_args_run_a_program_like_sagemaker(tmp_path):
    argv = podman.run_args("localhost/model:1", "serve", base_dir=tmp_path, port=8123, env={"A": "b"})
    assert argv[:4] == ["/usr/bin/podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
    assert argv[-2:] == ["localhost/model:1", "serve"]
    assert "--network=host" in argv
    assert f"{tmp_path}:/opt/ml:U" in argv
    assert "SAGEMAKER_BIND_TO_PORT=8123" in argv
    assert "A=b" in argv
    assert argv[argv.index("--ulimit") + 1] == "nofile=1024:1024"


def test_run_args_accept_mounts(tmp_path):
    argv = podman.run_args("img", "train", mounts={str(tmp_path): "/opt/ml"})
    assert argv[argv.index("--volume") + 1] == f"{tmp_path}:/opt/ml:U"


def test_missing_podman_says_to_run_the_test_command(monkeypatch):
    monkeypatch.setattr(podman.shutil, "which", lambda name: None)
    with pytest.raises(podman.PodmanError, match="run scripts/test"):
        podman.run_args("img", "train")


def test_debian_mirror_comes_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment: here\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert podman.debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_comes_from_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n"
    )
    assert podman.debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_defaults_to_debians(tmp_path):
    assert podman.debian_mirror(tmp_path) == podman.DEFAULT_DEBIAN_MIRROR


def test_pip_settings_pass_through_only_what_works_inside_the_build(monkeypatch):
    monkeypatch.setattr(
        podman,
        "_pip_config",
        lambda: {
            "extra-index-url": "file:///opt/pypi/simple https://mirror.example/simple",
            "cert": "/root/ca.pem",
        },
    )
    args = podman.pip_build_args(
        {"PIP_INDEX_URL": "https://index.example/simple", "PIP_CERT": str(podman.HOST_CA_BUNDLE)}
    )
    assert args == [
        *("--build-arg", "PIP_INDEX_URL=https://index.example/simple"),
        *("--build-arg", "PIP_EXTRA_INDEX_URL=https://mirror.example/simple"),
        *("--build-arg", "PIP_TRUSTED_HOST="),
        *("--build-arg", f"PIP_CERT={podman.HOST_CA_BUNDLE}"),
    ]


def test_local_file_indexes_and_foreign_certificates_are_dropped(monkeypatch):
    monkeypatch.setattr(
        podman, "_pip_config", lambda: {"extra-index-url": "file:///opt/pypi", "cert": "/x.pem"}
    )
    # Given empty (pip ignores empty settings), so that podman does not warn that they are missing.
    assert podman.pip_build_args({}) == [
        *("--build-arg", "PIP_INDEX_URL="),
        *("--build-arg", "PIP_EXTRA_INDEX_URL="),
        *("--build-arg", "PIP_TRUSTED_HOST="),
        *("--build-arg", "PIP_CERT="),
    ]


def test_every_pip_setting_passed_is_one_the_dockerfile_declares():
    declared = {
        line.split()[1]
        for line in (podman.CONTAINER_DIR / "Dockerfile").read_text().splitlines()
        if line.startswith("ARG PIP_")
    }
    passed = {arg.split("=", 1)[0] for arg in podman.pip_build_args({})[1::2]}
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
    with pytest.raises(podman.PodmanError):
        podman._debootstrap(str(tmp_path / "rootfs"), "http://mirror.example/debian", said.append)
    assert said == [
        "debootstrap: Retrieving InRelease",
        "debootstrap: 25 packages fetched",
        "debootstrap: Unpacking required packages...",
        "debootstrap: network limits: read_timeout = 60",
        "debootstrap: Couldn't download package pkg7",
    ]


def test_a_failed_debootstrap_names_the_mirror_and_ends_with_what_it_said(failing_debootstrap, tmp_path):
    with pytest.raises(podman.PodmanError) as raised:
        podman._debootstrap(str(tmp_path / "rootfs"), "http://mirror.example/debian", lambda line: None)
    message = str(raised.value)
    assert "http://mirror.example/debian failed with exit code 1" in message
    assert message.endswith("some detail of the failure\nE: Couldn't download package pkg7")


def test_a_failed_podman_command_is_a_podman_error_naming_it():
    with pytest.raises(podman.PodmanError, match="podman build of x failed with exit code 3"):
        podman._run("podman build of x", ["sh", "-c", "exit 3"])


def test_a_dropped_mirror_connection_is_retried_once_and_the_base_image_imported(tmp_path, monkeypatch):
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
  *"image exists"*) exit 1 ;;
  *import*) tar -tf - > {tmp_path}/imported.txt ;;
esac
""",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(podman.shutil, "which", lambda name: str(bin_dir / name))
    monkeypatch.setattr(podman.tempfile, "gettempdir", lambda: str(tmp_path))  # the lock file

    said: list[str] = []
    assert podman.ensure_base_image("localhost/base:test", log=said.append) is True
    assert "debian failed with exit code 1; trying once more" in "\n".join(said)
    assert said[-2:] == [
        "debootstrap: Base system installed successfully.",
        "base image localhost/base:test ready",
    ]
    imported = (tmp_path / "imported.txt").read_text().split()
    assert "./fetched" in imported and "./etc/ssl/certs/ca-certificates.crt" in imported


def test_rehearsing_on_podman_without_podman_is_an_error_naming_the_option(monkeypatch, tmp_path, capsys):
    from mlops.cli import main

    monkeypatch.setattr(podman.shutil, "which", lambda name: None)
    try:
        assert main(["rehearse", "--runner", "podman", "--work-dir", str(tmp_path)]) == 2
    finally:
        gc.unfreeze()  # the rehearsal freezes what start-up built; this process lives on
    err = capsys.readouterr().err
    assert "mlops: error: --runner podman: podman is not installed: run scripts/test" in err
    assert "Traceback" not in err
