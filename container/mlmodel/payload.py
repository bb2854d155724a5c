"""Request and response bodies of /invocations: CSV rows in, one label per row out, and which formats.

Pure functions with no Flask in them, so they are tested directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from mlmodel.fastcsv import parse_plain_decimals

CSV = "text/csv"
JSON = "application/json"
RESPONSE_TYPES = (CSV, JSON)  # in order of preference when the client accepts both equally
# The model compares features as float32 (as sklearn does): larger magnitudes would become infinite, which
# sklearn refuses. 2**128 - 2**103 is the first float64 that rounds to float32 infinity.
FEATURE_LIMIT = 2.0**128 - 2.0**103


class InvalidPayload(ValueError):
    """A request body the model cannot read; `row` is 1-based, None when no single row is to blame."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


def media_type(header: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    return (header or "").split(";", 1)[0].strip().lower()


def is_csv(content_type: str | None) -> bool:
    return media_type(content_type) == CSV


def response_type(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when neither CSV nor JSON is acceptable."""
    if not accept or not accept.strip():
        return CSV
    best: tuple[float, int] = (0.0, 0)  # (quality, -preference rank)
    chosen = None
    for offered_rank, offered in enumerate(RESPONSE_TYPES):
        quality = _quality(accept, offered)
        if quality > 0 and (quality, -offered_rank) > best:
            best, chosen = (quality, -offered_rank), offered
    return chosen


def _quality(accept: str, offered: str) -> float:
    """The q-value the most specific matching media range of `accept` gives `offered` (0: not acceptable)."""
    kind = offered.split("/", 1)[0]
    specificity, quality = -1, 0.0
    for media_range in accept.split(","):
        name, *params = media_range.split(";")
        name = name.strip().lower()
        if name == offered:
            rank = 2
        elif name == f"{kind}/*":
            rank = 1
        elif name in ("*/*", "*"):
            rank = 0
        else:
            continue
        if rank > specificity:
            specificity, quality = rank, _q_param(params)
    return quality


def _q_param(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def parse_rows(body: bytes, n_features: int) -> np.ndarray:
    """CSV rows of `n_features` numbers (no label, no header) as a float64 array (rows, n_features).

    Tolerates CRLF line ends and trailing blank lines; raises InvalidPayload naming the first bad row.
    """
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    body = body.rstrip()
    if not body:
        raise InvalidPayload(f"the request body is empty: send rows of {n_features} comma-separated numbers")
    if b"\n" not in body:
        return np.array([_parse_row(body, 1, n_features)])
    values = parse_plain_decimals(body, n_features)
    if values is not None:
        return values
    values = _parse_general(body, n_features)
    if values is not None:
        return values
    for number, line in enumerate(body.split(b"\n"), start=1):
        _parse_row(line, number, n_features)
    raise InvalidPayload(f"the request body is not CSV of {n_features} numbers per row")


def _parse_general(body: bytes, n_features: int) -> np.ndarray | None:
    """Any number syntax numpy reads (exponents, spaces, ...); None if some row is wrong."""
    fields_per_row = [line.count(b",") for line in body.split(b"\n")]
    if any(count != n_features - 1 for count in fields_per_row):
        return None
    if b"_" in body:  # float() and numpy read "1_0" as 10: a CSV number has no digit separators
        return None
    try:
        flat = np.array(body.replace(b"\n", b",").split(b","), dtype=np.float64)
    except ValueError:
        return None
    if not (np.abs(flat) < FEATURE_LIMIT).all():  # also false for NaN
        return None
    return flat.reshape(-1, n_features)


def _parse_row(line: bytes, number: int, n_features: int) -> list[float]:
    if not line.strip():
        raise InvalidPayload(f"row {number} is empty: expected {n_features} comma-separated numbers", number)
    fields = line.split(b",")
    if len(fields) != n_features:
        raise InvalidPayload(
            f"row {number} has {len(fields)} values: expected {n_features} comma-separated numbers", number
        )
    values = []
    for position, field in enumerate(fields, start=1):
        try:
            if b"_" in field:
                raise ValueError(field)
            value = float(field)
        except ValueError:
            raise InvalidPayload(
                f"row {number} value {position} {_show(field)} is not a number", number
            ) from None
        if not math.isfinite(value):
            raise InvalidPayload(
                f"row {number} value {position} {_show(field)} is not a finite number", number
            )
        if abs(value) >= FEATURE_LIMIT:
            raise InvalidPayload(
                f"row {number} value {position} {_show(field)} is too large: the model reads 32-bit floats"
                " (at most about 3.4e38)",
                number,
            )
        values.append(value)
    return values


def _show(field: bytes) -> str:
    text = field.strip().decode("utf-8", errors="replace")
    return repr(text if len(text) <= 24 else text[:21] + "...")


class CsvLabels:
    """Answers as CSV: one label per line, in row order, no trailing newline (batch outputs join cleanly)."""

    SMALL = 64  # fewer rows than this: a plain join costs less than setting up arrays

    def __init__(self, labels: Sequence[str]):
        self.encoded = [label.encode() for label in labels]
        width = max((len(label) for label in self.encoded), default=0) + 1
        # Each label with its newline, NUL-padded to one width: a batch's answer is one take and one pass
        # that drops the padding, no Python object per row. A label holding a NUL byte takes the join.
        padded = not any(b"\0" in label for label in self.encoded)
        self.lines = (
            np.array([label + b"\n" for label in self.encoded], dtype=f"S{width}") if padded else None
        )

    def format(self, indices: Sequence[int] | np.ndarray) -> bytes:
        if self.lines is None or len(indices) < self.SMALL:
            return b"\n".join([self.encoded[i] for i in indices])
        chars = self.lines.take(indices).view(np.uint8)
        return chars[chars != 0].tobytes()[:-1]


def format_json(labels: Sequence[str]) -> bytes:
    return json.dumps(list(labels)).encode()
