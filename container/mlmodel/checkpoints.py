"""Checkpoints of `train`: what a restarted job (a spot interruption) resumes from instead of starting over.

One file per finished step, ``step-0003.ckpt``: a JSON header line (format, fingerprint, step, total, the
payload's SHA-256), then the pickled state. Each is written to a dot-file and renamed into place, so an
interruption mid-write leaves the previous checkpoints intact and no half-written file under a checkpoint
name. The fingerprint is what the state was computed from (model slot, hyperparameters, training data,
library versions): a checkpoint of other inputs, or one that is truncated or corrupt, is reported and ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "mlmodel-checkpoint/1"
_NAME = re.compile(r"^step-(\d{4})\.ckpt$")

log = logging.getLogger("mlmodel.checkpoints")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    total: int
    state: Any
    path: Path


def fingerprint_of(**inputs: Any) -> str:
    """A digest of everything a checkpoint's state depends on (JSON-able values, or bytes)."""
    digest = hashlib.sha256()
    for name in sorted(inputs):
        value = inputs[name]
        raw = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
        digest.update(name.encode() + b"\0" + hashlib.sha256(raw).digest())
    return digest.hexdigest()


def checkpoint_name(step: int) -> str:
    return f"step-{step:04d}.ckpt"


class CheckpointStore:
    def __init__(self, directory: Path, fingerprint: str):
        self.directory = Path(directory)
        self.fingerprint = fingerprint

    def save(self, step: int, total: int, state: Any) -> Path:
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        header = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "step": step,
            "total": total,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / checkpoint_name(step)
        temporary = self.directory / f".{final.name}.{os.getpid()}.tmp"
        with temporary.open("wb") as out:
            out.write(json.dumps(header).encode() + b"\n")
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
        return final

    def latest(self, total: int) -> Checkpoint | None:
        """The furthest usable checkpoint of these inputs; unusable ones are logged and skipped."""
        for path in sorted(self._candidates(), reverse=True):
            try:
                checkpoint = self._read(path, total)
            except CheckpointError as error:
                log.warning("ignoring checkpoint %s: %s", path.name, error)
                continue
            return checkpoint
        return None

    def _candidates(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [path for path in self.directory.iterdir() if _NAME.match(path.name) and path.is_file()]

    def _read(self, path: Path, total: int) -> Checkpoint:
        raw = path.read_bytes()
        line, newline, payload = raw.partition(b"\n")
        try:
            header = json.loads(line) if newline else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError("not a checkpoint this image writes")
        if header.get("fingerprint") != self.fingerprint:
            raise CheckpointError("written for other data, hyperparameters or model (a foreign checkpoint)")
        step = int(_NAME.match(path.name)[1])
        if header.get("step") != step or header.get("total") != total:
            raise CheckpointError(f"its header says step {header.get('step')} of {header.get('total')}")
        if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
            raise CheckpointError("its content does not match its checksum (truncated or corrupt)")
        try:
            # Our own pickle, checksummed and fingerprinted: as trusted as the model.joblib serve loads.
            state = pickle.loads(payload)  # noqa: S301
        except Exception as error:
            raise CheckpointError(f"its state cannot be read: {type(error).__name__}: {error}") from None
        return Checkpoint(step=step, total=total, state=state, path=path)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from; the message says why."""
