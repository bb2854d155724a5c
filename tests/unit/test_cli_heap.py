import gc
import subprocess
import sys

from mlops.cli import _long_lived_heap


def test_start_up_is_not_collected_and_what_it_built_is_left_out_of_later_collections():
    before = gc.get_freeze_count()
    try:
        with _long_lived_heap():
            assert not gc.isenabled()
            built = [[index] for index in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(built)
    finally:
        gc.unfreeze()


def test_collection_is_enabled_again_when_start_up_fails():
    try:
        try:
            with _long_lived_heap():
                raise RuntimeError("start-up failed")
        except RuntimeError:
            pass
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def test_the_command_exits_with_mains_code():
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "rehearse", "--stages", "prod"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--stages 'prod'" in done.stderr
