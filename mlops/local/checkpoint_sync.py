"""SageMaker's side of a training job's CheckpointConfig: the S3 prefix is copied into the job's
/opt/ml/checkpoints before `train` starts, and what `train` writes there is uploaded as it goes and at the end.

A spot interruption takes the instance and its disk: a restarted job sees only what had reached S3. The
local `spot-interrupt` fault reclaims the instance right after its first checkpoint upload, so the restart
resumes from exactly that checkpoint, however far the interrupted program got on its own disk meanwhile.
"""

from __future__ import annotations

from pathlib import Path

from .s3objects import download_prefix, s3_parts


class CheckpointSync:
    def __init__(self, s3, uri: str, local_dir: Path, reclaim_after_first_upload: bool = False):
        self.s3 = s3
        self.bucket, prefix = s3_parts(uri)
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self.local_dir = local_dir
        self.reclaim_after_first_upload = reclaim_after_first_upload
        self.reclaimed = False
        self.uploaded: list[str] = []
        self._sent: dict[Path, tuple[int, int]] = {}  # file -> (size, mtime) last uploaded

    def download(self) -> None:
        """The prefix's objects into the local directory (created, as SageMaker creates LocalPath)."""
        self.local_dir.mkdir(parents=True, exist_ok=True)
        for target in download_prefix(self.s3, self.bucket, self.prefix, self.local_dir):
            self._sent[target] = _signature(target)  # already in S3

    def upload_new(self) -> bool:
        """Uploads files that are new or changed since the last call, oldest first; True once the instance is
        reclaimed (then nothing more is uploaded). A dot-file is a write in progress, not yet a checkpoint."""
        if self.reclaimed or not self.local_dir.is_dir():
            return self.reclaimed
        files = [p for p in self.local_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
        for path in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name)):
            signature = _signature(path)
            if self._sent.get(path) == signature:
                continue
            key = self.prefix + path.relative_to(self.local_dir).as_posix()
            with path.open("rb") as body:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            self._sent[path] = signature
            self.uploaded.append(key)
            if self.reclaim_after_first_upload:
                self.reclaimed = True
                break
        return self.reclaimed


def _signature(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns
