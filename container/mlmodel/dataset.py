"""Labelled training data from a SageMaker channel: CSV files, label first, then the features, no header."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlmodel.contract import UserError


class DataError(UserError):
    pass


@dataclass(frozen=True)
class LabelledData:
    features: np.ndarray  # float64, (rows, n_features)
    labels: np.ndarray  # str, (rows,)
    files: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])


def csv_files(channel_dir: Path) -> list[Path]:
    """Every CSV file under the channel directory (SageMaker keeps the S3 key prefixes as folders)."""
    if not channel_dir.is_dir():
        raise DataError(f"no {channel_dir.name!r} channel: {channel_dir} does not exist")
    files = sorted(
        path
        for path in channel_dir.rglob("*")
        if path.is_file() and path.suffix.lower() == ".csv" and not path.name.startswith(".")
    )
    if not files:
        present = sorted(p.name for p in channel_dir.rglob("*") if p.is_file())
        listing = ", ".join(present[:5]) + (" ..." if len(present) > 5 else "") if present else "nothing"
        raise DataError(f"the {channel_dir.name!r} channel has no .csv file (found {listing})")
    return files


def load_channel(channel_dir: Path, n_features: int | None = None) -> LabelledData:
    """All rows of all CSV files in the channel; every row must have the same number of features."""
    files = csv_files(channel_dir)
    features: list[list[float]] = []
    labels: list[str] = []
    for path in files:
        name = str(path.relative_to(channel_dir))
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise DataError(f"{name} is not UTF-8 text: {error.reason} at byte {error.start}") from None
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            label, row = _parse_line(line, name, line_number, n_features)
            n_features = len(row)
            labels.append(label)
            features.append(row)
    if not labels:
        raise DataError(
            f"the {channel_dir.name!r} channel's CSV files have no rows: {', '.join(map(str, files))}"
        )
    return LabelledData(
        np.array(features, dtype=np.float64),
        np.array(labels, dtype=str),
        tuple(str(path.relative_to(channel_dir)) for path in files),
    )


def _parse_line(line: str, file: str, line_number: int, n_features: int | None) -> tuple[str, list[float]]:
    where = f"{file} line {line_number}"
    fields = [field.strip() for field in line.split(",")]
    label, values = fields[0], fields[1:]
    if not label:
        raise DataError(f"{where}: the first column (the label) is empty")
    if not values:
        raise DataError(f"{where}: expected a label followed by numeric features, found one column")
    if n_features is not None and len(values) != n_features:
        raise DataError(f"{where}: expected a label and {n_features} features, found {len(values)} features")
    row = []
    for column, text in enumerate(values, start=2):
        try:
            if "_" in text:  # float() reads "1_0" as 10: a CSV number has no digit separators
                raise ValueError(text)
            value = float(text)
        except ValueError:
            hint = " (the files must have no header row)" if line_number == 1 else ""
            raise DataError(f"{where}: column {column} {text[:24]!r} is not a number{hint}") from None
        if not math.isfinite(value):
            raise DataError(f"{where}: column {column} {text!r} is not a finite number")
        row.append(value)
    return label, row
