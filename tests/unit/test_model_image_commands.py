"""The podman command lines for the model image, checked without running podman."""

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
