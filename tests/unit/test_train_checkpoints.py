"""Checkpoints of `train`: written atomically as it goes, resumed from when a restarted job finds them, and a
resumed job's model is the one an uninterrupted job fits."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from mlmodel import train as train_module
from mlmodel.checkpoints import CheckpointStore, checkpoint_name, fingerprint_of
from mlmodel.contract import BASE_DIR_ENV, EXIT_OK, MODEL_ENV, MODEL_FILE, Paths
from mlmodel.dataset import load_channel

from mlops.data import write_split

ROOT = Path(__file__).resolve().parents[2]
DIABETES_STEPS = 6  # five boosting chunks, then the training metrics


def prepared(example: str, base: Path, data_dir: Path) -> Paths:
    paths = Paths(base)
    train, _ = write_split(example, data_dir)
    paths.channel_dir("training").mkdir(parents=True)
    shutil.copy(train, paths.channel_dir("training") / train.name)
    paths.config_dir.mkdir(parents=True)
    return paths


def run_train(paths: Paths, example: str, monkeypatch) -> None:
    monkeypatch.setenv(BASE_DIR_ENV, str(paths.base))
    monkeypatch.setenv(MODEL_ENV, example)
    assert train_module.main() == EXIT_OK


def predictions(paths: Paths, rows: np.ndarray) -> np.ndarray:
    return joblib.load(paths.model_dir / MODEL_FILE).predict(rows)


def checkpoints(paths: Paths) -> list[str]:
    return sorted(p.name for p in paths.checkpoint_dir.iterdir())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A diabetes job that ran to the end: its model and every checkpoint it wrote."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    paths = prepared("diabetes", tmp / "ml", tmp / "data")
    with pytest.MonkeyPatch.context() as monkeypatch:
        run_train(paths, "diabetes", monkeypatch)
    return paths


def rows_of(paths: Paths) -> np.ndarray:
    return load_channel(paths.channel_dir("training")).features


# --- the store -----------------------------------------------------------------------------------------


def test_a_checkpoint_reads_back_as_written_and_leaves_no_temporary_file(tmp_path):
    store = CheckpointStore(tmp_path, fingerprint_of(a=1))
    store.save(1, 3, {"model": [1, 2]})
    store.save(2, 3, {"model": [1, 2, 3]})
    latest = store.latest(3)
    assert (latest.step, latest.state) == (2, {"model": [1, 2, 3]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0001.ckpt", "step-0002.ckpt"]


def test_a_write_cut_short_leaves_the_earlier_checkpoint_to_resume_from(tmp_path):
    store = CheckpointStore(tmp_path, fingerprint_of(a=1))
    store.save(1, 3, "one")
    # what an interruption during the second save leaves: its temporary file, half written
    (tmp_path / f".{checkpoint_name(2)}.4242.tmp").write_bytes(b'{"format": "mlmodel-checkpoint/1", "fing')
    assert store.latest(3).state == "one"


def test_a_corrupt_checkpoint_is_reported_and_the_one_before_it_used(tmp_path, caplog):
    store = CheckpointStore(tmp_path, fingerprint_of(a=1))
    store.save(1, 3, "one")
    second = store.save(2, 3, "two" * 100)
    second.write_bytes(second.read_bytes()[:-20])  # truncated (an upload cut short)
    with caplog.at_level(logging.WARNING):
        assert store.latest(3).state == "one"
    assert "ignoring checkpoint step-0002.ckpt" in caplog.text and "checksum" in caplog.text


def test_a_foreign_or_unreadable_checkpoint_is_reported_and_ignored(tmp_path, caplog):
    CheckpointStore(tmp_path, fingerprint_of(data="other")).save(2, 3, "theirs")
    (tmp_path / checkpoint_name(3)).write_bytes(b"\x00\x01 not a checkpoint")
    with caplog.at_level(logging.WARNING):
        assert CheckpointStore(tmp_path, fingerprint_of(data="ours")).latest(3) is None
    assert "foreign" in caplog.text and "not a checkpoint this image writes" in caplog.text


def test_a_checkpoint_of_another_step_count_is_not_resumed(tmp_path, caplog):
    store = CheckpointStore(tmp_path, fingerprint_of(a=1))
    store.save(2, 3, "of three")
    with caplog.at_level(logging.WARNING):
        assert store.latest(5) is None
    assert "step 2 of 3" in caplog.text


def test_fingerprints_differ_when_any_input_does():
    base = {"model": "diabetes", "hyperparameters": {"n_estimators": 200}, "features": b"\x01\x02"}
    assert fingerprint_of(**base) == fingerprint_of(**dict(reversed(base.items())))
    assert fingerprint_of(**base) != fingerprint_of(**{**base, "hyperparameters": {"n_estimators": 201}})
    assert fingerprint_of(**base) != fingerprint_of(**{**base, "features": b"\x01\x03"})


# --- train ---------------------------------------------------------------------------------------------


def test_train_checkpoints_each_boosting_chunk_and_the_metrics(uninterrupted):
    assert checkpoints(uninterrupted) == [checkpoint_name(step) for step in range(1, DIABETES_STEPS + 1)]


def test_a_job_restarted_from_its_first_checkpoint_fits_the_uninterrupted_model(
    uninterrupted, tmp_path, monkeypatch, caplog
):
    paths = prepared("diabetes", tmp_path / "ml", tmp_path / "data")
    paths.checkpoint_dir.mkdir()
    # what SageMaker downloads into a restarted job: the checkpoints synced before the interruption
    shutil.copy(uninterrupted.checkpoint_dir / checkpoint_name(1), paths.checkpoint_dir)
    with caplog.at_level(logging.INFO):
        run_train(paths, "diabetes", monkeypatch)
    assert f"resumed from checkpoint: step 1 of {DIABETES_STEPS}" in caplog.text
    assert "checkpoint: step 1 of" not in caplog.text.replace("resumed from checkpoint: step 1 of", "")
    rows = rows_of(paths)
    assert np.array_equal(predictions(paths, rows), predictions(uninterrupted, rows))
    metadata = json.loads((paths.model_dir / "metadata.json").read_text())
    original = json.loads((uninterrupted.model_dir / "metadata.json").read_text())
    assert metadata["metrics"] == original["metrics"]


def test_a_job_killed_midway_resumes_and_fits_the_uninterrupted_model(uninterrupted, tmp_path):
    paths = prepared("diabetes", tmp_path / "ml", tmp_path / "data")
    env = {**os.environ, BASE_DIR_ENV: str(paths.base), MODEL_ENV: "diabetes"}
    command = [sys.executable, str(ROOT / "container" / "bin" / "train")]
    log = tmp_path / "first.log"
    with log.open("wb") as out:
        first = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (paths.checkpoint_dir / checkpoint_name(1)).exists() and first.poll() is None:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)  # a reclaimed instance: no chance to tidy up
    first.wait(30)
    kept = checkpoints(paths)
    assert checkpoint_name(1) in kept
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == EXIT_OK, second.stdout[-2000:]
    resumed = [line for line in second.stdout.splitlines() if "resumed from checkpoint" in line]
    assert len(resumed) == 1 and f"of {DIABETES_STEPS}" in resumed[0], second.stdout[-2000:]
    rows = rows_of(paths)
    assert np.array_equal(predictions(paths, rows), predictions(uninterrupted, rows))


def test_a_corrupt_checkpoint_does_not_fail_the_job(uninterrupted, tmp_path, monkeypatch, caplog):
    paths = prepared("diabetes", tmp_path / "ml", tmp_path / "data")
    paths.checkpoint_dir.mkdir()
    shutil.copy(uninterrupted.checkpoint_dir / checkpoint_name(2), paths.checkpoint_dir)
    (paths.checkpoint_dir / checkpoint_name(3)).write_bytes(b"garbage")
    with caplog.at_level(logging.INFO):
        run_train(paths, "diabetes", monkeypatch)
    assert "ignoring checkpoint step-0003.ckpt" in caplog.text
    assert f"resumed from checkpoint: step 2 of {DIABETES_STEPS}" in caplog.text
    rows = rows_of(paths)
    assert np.array_equal(predictions(paths, rows), predictions(uninterrupted, rows))


def test_checkpoints_of_other_hyperparameters_are_not_resumed(uninterrupted, tmp_path, monkeypatch, caplog):
    paths = prepared("diabetes", tmp_path / "ml", tmp_path / "data")
    paths.hyperparameters_file.write_text(json.dumps({"n_estimators": "100"}))
    shutil.copytree(uninterrupted.checkpoint_dir, paths.checkpoint_dir)
    with caplog.at_level(logging.INFO):
        run_train(paths, "diabetes", monkeypatch)
    assert "resumed from checkpoint" not in caplog.text and "foreign" in caplog.text
    assert joblib.load(paths.model_dir / MODEL_FILE).n_estimators_ == 100


def test_an_iris_job_with_every_checkpoint_skips_to_the_end_with_the_same_tree(tmp_path, monkeypatch, caplog):
    first = prepared("iris", tmp_path / "a", tmp_path / "data")
    run_train(first, "iris", monkeypatch)
    assert checkpoints(first) == [checkpoint_name(1), checkpoint_name(2)]  # the fit, then its metrics
    second = prepared("iris", tmp_path / "b", tmp_path / "data")
    shutil.copytree(first.checkpoint_dir, second.checkpoint_dir)
    with caplog.at_level(logging.INFO):
        run_train(second, "iris", monkeypatch)
    assert "resumed from checkpoint: step 2 of 2" in caplog.text
    rows = rows_of(first)
    assert np.array_equal(predictions(first, rows), predictions(second, rows))
