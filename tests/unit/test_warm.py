"""The warm interpreter the container's programs fork from behaves, to its caller, as a started process would."""

import os
import signal
import subprocess
import time

import pytest

from mlops.local.warm import WarmInterpreter


@pytest.fixture
def warm():
    interpreter = WarmInterpreter()
    yield interpreter
    if interpreter._process:
        interpreter._process.stdin.close()
        interpreter._process.wait(timeout=10)


def program(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_program_gets_its_environment_and_log_and_its_exit_code_comes_back(warm, tmp_path):
    script = program(
        tmp_path,
        "train",
        "import os, sys\nprint('argv', sys.argv[0], 'value', os.environ['ONLY'], 'other', 'HOME' in os.environ)\n"
        "sys.exit(3)\n",
    )
    log = tmp_path / "train.log"
    child = warm.fork(script, {"ONLY": "set"}, log, new_session=False)
    assert child.wait(timeout=30) == 3
    assert child.poll() == 3
    assert log.read_text().strip() == f"argv {script} value set other False"


def test_an_exception_is_logged_and_exits_2(warm, tmp_path):
    script = program(tmp_path, "train", "raise RuntimeError('broken on purpose')\n")
    child = warm.fork(script, {}, tmp_path / "log", new_session=False)
    assert child.wait(timeout=30) == 2
    assert "RuntimeError: broken on purpose" in (tmp_path / "log").read_text()


def test_a_server_is_signalled_and_its_signal_death_is_reported(warm, tmp_path):
    script = program(
        tmp_path, "serve", "import os, time\nprint(os.getsid(0) == os.getpid(), flush=True)\ntime.sleep(60)\n"
    )
    child = warm.fork(script, {}, tmp_path / "log", new_session=True)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.2)
    assert child.poll() is None
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=10) == -signal.SIGTERM
    assert (tmp_path / "log").read_text().strip() == "True"  # its own session, as Popen(start_new_session)
    child.send_signal(signal.SIGTERM)  # already gone: nothing happens


def gone(pid, seconds=10.0):
    """True once no process has this pid (reaped, not a zombie) within the time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_children_stop_when_the_caller_goes_away(warm, tmp_path):
    script = program(tmp_path, "serve", "import time\ntime.sleep(60)\n")
    child = warm.fork(script, {}, tmp_path / "log", new_session=True)
    warm._process.stdin.close()
    warm._process.wait(timeout=10)
    assert gone(child.pid), "the child outlived the warm interpreter's caller"
    assert child.wait(timeout=10) == WarmInterpreter.LOST


def test_children_stop_when_the_warm_interpreter_is_terminated(warm, tmp_path):
    script = program(tmp_path, "serve", "import time\ntime.sleep(60)\n")
    child = warm.fork(script, {}, tmp_path / "log", new_session=True)
    warm._process.terminate()
    warm._process.wait(timeout=10)
    assert child.wait(timeout=10) == WarmInterpreter.LOST
    assert gone(child.pid), "the child outlived its warm interpreter"
