"""`mlops check-on-main`: the release workflow, started by hand with any ref, releases only commits that are
already part of main's history (the role it assumes is trusted for main). Real git repositories here."""

import subprocess

import pytest

from mlops import aws_cli

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def commit(cwd, message: str) -> str:
    git(cwd, "commit", "--allow-empty", "-q", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A clone as actions/checkout with fetch-depth 0 leaves it: origin/main and origin/feature fetched."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    first = commit(upstream, "first")
    second = commit(upstream, "second")
    git(upstream, "checkout", "-q", "-b", "feature", first)
    unreviewed = commit(upstream, "not reviewed")
    git(upstream, "checkout", "-q", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    git(clone, "checkout", "-q", unreviewed)
    monkeypatch.chdir(clone)
    return {"first": first, "second": second, "unreviewed": unreviewed}


@pytest.mark.parametrize("name", ["first", "second"])
def test_a_commit_of_mains_history_may_be_released(checkout, name, capsys):
    assert aws_cli.main(["check-on-main", checkout[name]]) == 0
    assert checkout[name] in capsys.readouterr().out


def test_a_commit_only_on_another_branch_is_refused_with_the_reason(checkout, capsys):
    assert aws_cli.main(["check-on-main", checkout["unreviewed"]]) == 2
    error = capsys.readouterr().err
    assert f"refused: commit {checkout['unreviewed'][:12]} is not on origin/main" in error
    assert "merge it to main" in error


def test_a_ref_that_is_no_commit_here_is_refused(checkout, capsys):
    assert aws_cli.main(["check-on-main", "no-such-branch"]) == 2
    assert "no-such-branch is not a commit in this checkout" in capsys.readouterr().err


def test_without_main_fetched_it_says_how_to_fetch_it(checkout, capsys):
    assert aws_cli.main(["check-on-main", checkout["first"], "--main", "origin/release"]) == 2
    assert "origin/release is not in this checkout" in capsys.readouterr().err
