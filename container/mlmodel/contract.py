"""The SageMaker container contract: where things live, which variables tune the server, what exits mean.

SageMaker (and the local runtime) mounts everything under one base directory, `/opt/ml` in a real job.
Every path the model programs read or write is derived here, so train, serve and the local runtime agree.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
DEFAULT_PORT = 8080
# SageMaker reaches the container on 0.0.0.0:8080; a server started on a person's machine listens on loopback.
BIND_HOST_ENV = "MODEL_SERVER_BIND_HOST"
DEFAULT_BIND_HOST = "0.0.0.0"  # noqa: S104 - SageMaker's contract: the platform connects from outside
WORKERS_ENV = "MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "MODEL_SERVER_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 60
# How long a request's body may take to arrive once its headers have (then: 408, connection closed).
BODY_TIMEOUT_ENV = "MODEL_SERVER_BODY_TIMEOUT"
DEFAULT_BODY_TIMEOUT_SECONDS = 20

# The image names the unprivileged user its programs become once they have prepared what they write.
RUN_AS_ENV = "MODEL_RUN_AS"

TRAINING_CHANNEL = "training"
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
# Which model slot `train` fits (mlmodel/models/): the image's default (Dockerfile ARG MODEL), or the training
# job's Environment (the template's Model parameter). `serve` loads the slot metadata.json names.
MODEL_ENV = "MLMODEL_NAME"
DEFAULT_MODEL = "iris"
CLASSIFICATION = "classification"
REGRESSION = "regression"
# metadata.json, written by `train` next to the artifact; serve, Evaluate and the approval mail read it.
# Every slot writes these keys (other keys are the slot's own, e.g. a tree's depth):
#   model           the slot's name ("iris", "diabetes")           serve loads with that slot
#   problem_type    "classification" | "regression"                 Evaluate scores by it
#   feature_names   [name, ...] in CSV column order (after the label); n_features: len(feature_names)
#   classes         [label, ...] (classification: what the server answers)
#   target          the predicted quantity's name (regression: the server answers a number)
#   estimator, hyperparameters (parsed), training_files, versions, training_seconds
#   metrics         {"training": {...}, "validation": {...}?}: accuracy for a classifier, rmse/mae/r2 for a
#                   regressor, each with "rows"
TREE_FILE = "tree.npz"  # the fitted tree as arrays: what serve loads, without importing scikit-learn

EXIT_OK = 0
EXIT_USER_ERROR = 1  # bad hyperparameter, missing or malformed data: the caller can fix it
EXIT_UNEXPECTED = 2  # a bug or an environment problem


class UserError(Exception):
    """A failure the caller can fix (a bad hyperparameter, missing or malformed data): exit 1."""


# What SageMaker batch transform reads from GET /execution-parameters.
MAX_PAYLOAD_MB = 6
BATCH_STRATEGY = "MULTI_RECORD"


@dataclass(frozen=True)
class Paths:
    base: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        environ = os.environ if environ is None else environ
        return cls(Path(environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR))

    @property
    def config_dir(self) -> Path:
        return self.base / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resource_config_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    def channel_dir(self, name: str = TRAINING_CHANNEL) -> Path:
        return self.base / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def checkpoint_dir(self) -> Path:
        """CheckpointConfig.LocalPath: SageMaker fills it from the job's checkpoint S3 prefix before `train`
        starts and uploads what `train` writes there, so a restarted (spot) job resumes from it."""
        return self.base / "checkpoints"


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is invalid: must be a positive integer") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r} is invalid: must be a positive integer")
    return value


def server_port(environ: Mapping[str, str] | None = None) -> int:
    return _positive_int(os.environ if environ is None else environ, PORT_ENV, DEFAULT_PORT)


def bind_host(environ: Mapping[str, str] | None = None) -> str:
    return (os.environ if environ is None else environ).get(BIND_HOST_ENV, "").strip() or DEFAULT_BIND_HOST


def available_cpus() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def server_workers(environ: Mapping[str, str] | None = None) -> int:
    return _positive_int(os.environ if environ is None else environ, WORKERS_ENV, available_cpus())


def server_timeout(environ: Mapping[str, str] | None = None) -> int:
    return _positive_int(os.environ if environ is None else environ, TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS)


def body_timeout(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    return _positive_int(environ, BODY_TIMEOUT_ENV, DEFAULT_BODY_TIMEOUT_SECONDS)


def drop_privileges(
    writable: Iterable[Path] = (), readable: Iterable[Path] = (), environ: Mapping[str, str] | None = None
) -> str:
    """Become the image's model user (``MODEL_RUN_AS``) after handing it the directories it writes.

    SageMaker starts containers as root and mounts /opt/ml owned by root, so an image whose USER is not root
    cannot write its model or output/failure there. The image therefore starts as root, and each program
    gives up root itself. Outside the image (no MODEL_RUN_AS) or when not root, nothing changes. If a
    directory cannot be handed over, or something under `readable` (SageMaker's input, whose modes AWS does
    not document) is closed to the user, the program stays root rather than fail a job SageMaker would run.
    Returns a line for the program's log (empty when nothing was to be done)."""
    environ = os.environ if environ is None else environ
    name = environ.get(RUN_AS_ENV, "")
    if not name or os.geteuid() != 0:
        return ""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        return f"staying root: the image has no user {name!r} ({RUN_AS_ENV})"
    if closed := _closed_to(user, readable):
        return f"staying root: {closed} is not readable by {name}"
    for directory in writable:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, user.pw_uid, user.pw_gid)
        except OSError as error:
            return f"staying root: cannot hand {directory} to {name}: {error}"
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir
    return f"running as {name} (uid {user.pw_uid})"


def _closed_to(user: pwd.struct_passwd, roots: Iterable[Path]) -> Path | None:
    """The first file or folder under `roots` that `user` could not read (or enter), going by mode bits."""
    for root in roots:
        if not root.exists():
            continue
        for folder, _, files in os.walk(root):
            for path, bits in [(Path(folder), 0o5), *((Path(folder, f), 0o4) for f in files)]:
                info = path.stat()
                if info.st_uid == user.pw_uid:
                    allowed = info.st_mode >> 6
                elif info.st_gid == user.pw_gid:
                    allowed = info.st_mode >> 3
                else:
                    allowed = info.st_mode
                if allowed & bits != bits:
                    return path
    return None
