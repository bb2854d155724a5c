"""Every shell block of the README's Quickstart and "Try it by hand", run as written against a `--serve`
rehearsal after the export lines it prints; and the manual approval prompt's curl, pasted as printed."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.mailbox import read_message

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
# Blocks that start the pipeline rather than use it: the test starts the rehearsal itself (see `served`).
START_COMMANDS = {"scripts/rehearse", "scripts/test", "scripts/rehearse --serve"}
SECTIONS = {"quickstart": "## Quickstart", "try-it": "### Try it by hand"}
# GitHub's own `shell: bash`: a failing command fails the block instead of scrolling past.
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]


def section(text: str, heading: str) -> str:
    """From the heading to the next heading of the same or a higher level (outside code blocks)."""
    level = len(heading.split(" ", 1)[0])
    lines = text.split(f"\n{heading}\n", 1)[1].splitlines(keepends=True)
    fenced, kept = False, []
    for line in lines:
        fenced ^= line.startswith("```")
        if not fenced and re.match("#{1," + str(level) + "} ", line):
            break
        kept.append(line)
    return "".join(kept)


def shell_blocks() -> list[tuple[str, str]]:
    return [
        (f"{name}-{number}", block)
        for name, heading in SECTIONS.items()
        for number, block in enumerate(
            re.findall(r"^```bash\n(.*?)^```$", section(README, heading), re.M | re.S), 1
        )
    ]


BLOCKS = shell_blocks()


def commands_of(block: str) -> list[str]:
    """The block's commands without their comments (only for one-line commands, as start blocks are)."""
    return [
        line.split("  #", 1)[0].strip() for line in block.splitlines() if line and not line.startswith("#")
    ]


def expected_output(block: str) -> list[str]:
    """`# → LINE` under a command: LINE is a whole line the block prints."""
    return re.findall(r"^# → (.*)$", block, flags=re.M)


def _user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def _start(tmp: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """`scripts/rehearse ARGS` is `exec .venv/bin/mlops rehearse ARGS` (checked below): the same program here,
    with this interpreter and a work dir of the test's own."""
    stderr_path = tmp / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops", "rehearse", "--work-dir", str(tmp / "work"), *args],
            cwd=REPO,
            env=_user_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    return process, stderr_path


def _summary(process: subprocess.Popen, stderr_path: Path) -> dict:
    for line in process.stdout:
        if line.startswith("{"):
            return json.loads(line)
    pytest.fail(f"the rehearsal ended without a summary:\n{stderr_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One `scripts/rehearse --serve` for every block: its summary and the export lines it printed."""
    tmp = tmp_path_factory.mktemp("readme")
    process, stderr_path = _start(tmp, "--serve")
    try:
        summary = _summary(process, stderr_path)
        assert summary["status"] == "SUCCEEDED", stderr_path.read_text()[-3000:]
        exports = [
            line.strip() for line in stderr_path.read_text().splitlines() if line.startswith("  export ")
        ]
        yield summary, exports
    finally:
        code = _stop(process)
    assert code == 0, stderr_path.read_text()[-3000:]


def test_the_readme_has_shell_blocks_to_run_in_both_sections():
    names = {name.rsplit("-", 1)[0] for name, _ in BLOCKS}
    assert names == set(SECTIONS)
    assert any(expected_output(block) for _, block in BLOCKS)


def test_scripts_rehearse_runs_the_mlops_rehearse_this_test_starts():
    assert 'exec "$root/.venv/bin/mlops" rehearse "$@"' in (REPO / "scripts" / "rehearse").read_text()


def test_the_printed_exports_set_the_variables_the_readme_shows(served):
    _, exports = served
    shown = re.search(r"^```text\n(\s+export .*?)^```$", section(README, SECTIONS["try-it"]), re.M | re.S)
    assert shown, "Try it by hand lost the export lines it shows"
    names = lambda lines: re.findall(r"(?:export |\s)([A-Z_]+)=", lines)  # noqa: E731
    assert names(shown.group(1)) == names("\n".join(exports))
    assert len(exports) == 2


def run_after(exports: list[str], script: str) -> subprocess.CompletedProcess:
    """`script` in bash as a person runs it in a new terminal after pasting the printed export lines."""
    return subprocess.run(
        [*BASH, "\n".join(exports) + "\n" + script],
        cwd=REPO,
        env=_user_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("name", "block"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_readme_shell_block_runs_as_written(name, block, served):
    if all(command in START_COMMANDS for command in commands_of(block)):
        return  # a start command: the `served` rehearsal is the one it starts
    if re.search(r"^aws ", block, flags=re.M) and shutil.which("aws") is None:
        pytest.skip("the AWS CLI (v1 or v2) is not installed here; the block uses it")
    _, exports = served
    done = run_after(exports, block)
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    printed = done.stdout.splitlines()
    for line in expected_output(block):
        assert line in printed, f"{name} did not print the line {line!r}:\n{done.stdout}"


def test_the_is_live_mails_try_it_commands_work_as_written_after_the_exports(served):
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI (v1 or v2) is not installed here; the mail's API_KEY line uses it")
    summary, exports = served
    live = next(Path(summary["work_dir"], "outbox").glob("*-is-live-on-*.eml"))
    text = read_message(live).get_body(preferencelist=("plain",)).get_content()
    commands = text.split("Try it:", 1)[1].split("It answers", 1)[0].strip()
    assert "aws apigateway get-api-key" in commands and "--endpoint-url" not in commands  # the AWS command
    done = run_after(exports, commands)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert json.loads(done.stdout) == {"result": "setosa"}


def test_manual_approval_prompt_says_how_to_approve_from_a_terminal_and_when_it_gives_up(tmp_path):
    process, stderr_path = _start(
        tmp_path, "--approve", "manual", "--serve", "--parameter", "ApprovalTimeoutSeconds=120"
    )
    try:
        prompt, deadline = "", time.monotonic() + 240
        while "then ends" not in prompt:
            assert process.poll() is None and time.monotonic() < deadline, stderr_path.read_text()[-3000:]
            time.sleep(0.1)
            prompt = stderr_path.read_text()
        assert re.search(
            r"waits for a decision until \d\d:\d\d:\d\d UTC \(ApprovalTimeoutSeconds=120\), "
            r"then ends FAILED with ApprovalTimedOut",
            prompt,
        ), prompt
        printed = prompt.splitlines()
        approve = printed[printed.index("Or from a terminal (approver is required, reason is optional):") + 1]
        assert "--data-urlencode 'approver=" in approve
        pasted = subprocess.run(
            [*BASH, approve.strip()], capture_output=True, text=True, timeout=60, check=True, env=_user_env()
        )
        assert json.loads(pasted.stdout) == {
            "decision": "approved",
            "approver": "Your Name <you@example.com>",
        }
        summary = _summary(process, stderr_path)
        assert summary["status"] == "SUCCEEDED"
        assert summary["approval_description"].startswith("approved by Your Name <you@example.com>")
    finally:
        _stop(process)
