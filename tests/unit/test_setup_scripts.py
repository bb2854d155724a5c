"""scripts/lib.sh on machines without apt (macOS, Fedora, Arch…): what is present is used, what is missing
is named, and apt is never called where it does not exist."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")


@pytest.fixture
def machine(tmp_path):
    """A PATH holding only the tools named: a machine without apt unless apt-get and dpkg-query are given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def run(script: str, *, tools=("dirname",), fake=()):
        for tool in tools:
            (bin_dir / tool).symlink_to(shutil.which(tool))
        for name in fake:  # stand-ins that record they were called
            (bin_dir / name).write_text(f'#!{BASH}\necho "{name} $*" >>"{tmp_path}/called"\n')
            (bin_dir / name).chmod(0o755)
        done = subprocess.run(
            [BASH, "-c", f"set -euo pipefail; source {REPO}/scripts/lib.sh; {script}"],
            env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            check=False,
        )
        called = (tmp_path / "called").read_text() if (tmp_path / "called").exists() else ""
        return done, called

    return run


def test_a_present_command_needs_nothing_installed(machine):
    done, called = machine("ensure_command dirname coreutils; echo ok")
    assert done.returncode == 0 and done.stdout == "ok\n"
    assert called == ""


def test_without_apt_a_missing_command_is_named_with_its_package(machine):
    done, called = machine("ensure_command curl curl")
    assert done.returncode == 2
    assert "curl is not installed" in done.stderr and "package manager" in done.stderr
    assert called == ""


def test_without_apt_an_optional_command_is_a_note_and_the_script_goes_on(machine):
    done, _ = machine('ensure_command curl curl "the answer is not shown"; echo went-on')
    assert done.returncode == 0 and done.stdout == "went-on\n"
    assert "note: curl is not installed (the answer is not shown)" in done.stderr


def test_without_apt_ensure_apt_names_the_packages_instead_of_calling_sudo(machine):
    done, called = machine("ensure_apt podman runc", fake=("sudo",))
    assert done.returncode == 2
    assert "no apt" in done.stderr and "podman runc" in done.stderr
    assert called == ""


def test_with_apt_a_missing_command_is_installed_with_apt(machine):
    done, called = machine(
        "ensure_command curl curl", tools=("dirname", "id", "grep"), fake=("apt-get", "dpkg-query")
    )
    assert done.returncode == 0, done.stderr
    assert "apt-get install -y -qq --no-install-recommends curl" in called
