"""Batch transform data handling as SageMaker does it for CSV: split, batch, filter, join, assemble."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_SELECTOR = re.compile(r"^\$(\[(.+)\])?$")
_SLICE = re.compile(r"^(-?\d*):(-?\d*)$")


class TransformInputError(ValueError):
    """Input the transform cannot process; the message names the object and the line."""


@dataclass(frozen=True)
class CsvFilter:
    """A SageMaker CSV JSONPath filter: ``$``, ``$[1:]``, ``$[0,-1]``, ``$[0:2,5]``."""

    expression: str
    parts: tuple[int | slice, ...] | None  # None selects the whole record

    @classmethod
    def parse(cls, expression: str | None) -> CsvFilter:
        expression = (expression or "$").strip()
        match = _SELECTOR.match(expression)
        if not match:
            raise ValueError(f"unsupported CSV filter {expression!r}: use $, $[i], $[i:j] or $[i,j,...]")
        if match.group(2) is None:
            return cls(expression, None)
        parts: list[int | slice] = []
        for item in match.group(2).split(","):
            item = item.strip()
            sliced = _SLICE.match(item)
            if sliced:
                start, stop = (int(x) if x else None for x in sliced.groups())
                parts.append(slice(start, stop))
            elif re.fullmatch(r"-?\d+", item):
                parts.append(int(item))
            else:
                raise ValueError(f"unsupported CSV filter {expression!r}: {item!r} is not an index or slice")
        return cls(expression, tuple(parts))

    @property
    def selects_all(self) -> bool:
        return self.parts is None

    def apply(self, record: bytes) -> bytes:
        if self.parts is None:
            return record
        fields = record.split(b",")
        picked: list[bytes] = []
        for part in self.parts:
            if isinstance(part, slice):
                picked.extend(fields[part])
            else:
                try:
                    picked.append(fields[part])
                except IndexError:
                    raise TransformInputError(
                        f"filter {self.expression} selects column {part} of a record with {len(fields)}"
                    ) from None
        return b",".join(picked)


def split_lines(data: bytes) -> list[bytes]:
    """SplitType=Line: one record per non-empty line (CRLF tolerated)."""
    return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]


MIN_SPLIT_BYTES = 256 * 1024  # smaller objects go in one payload: splitting them saves nothing


def payload_bytes(
    total_bytes: int, max_payload_bytes: int, workers: int, min_bytes: int = MIN_SPLIT_BYTES
) -> int:
    """How large to make each payload so that every worker gets the same share: the fewest payloads within
    the limit, rounded up to a multiple of the worker count, but none under `min_bytes`."""
    payloads = max(1, -(-total_bytes // max_payload_bytes))
    payloads = -(-payloads // workers) * workers
    return min(max_payload_bytes, max(1, min_bytes, -(-total_bytes // payloads)))


NEWLINE = ord("\n")
Chunk = tuple[int, int, memoryview | bytes]  # index of the first record, how many records, whole lines


def count_lines(data: bytes | memoryview) -> int:
    """Newlines in `data` (a numpy pass: several times faster than bytes.count on megabytes)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE))


def _content_end(data: bytes) -> int:
    """The length of `data` without its trailing newlines."""
    if data.endswith(b"\n\n"):
        return len(data.rstrip(b"\n"))
    return len(data) - data.endswith(b"\n")


def plain_line_chunks(
    data: bytes, max_payload_bytes: int, target_bytes: int | None = None
) -> list[Chunk] | None:
    """MultiRecord without per-record work, when every line of `data` is a record (no blank line, no CR):
    whole lines up to the payload limit, each chunk ending with a newline. With `target_bytes`, a chunk ends
    at the first line end from that size on (still within the limit), so equal targets give equal chunks.
    Chunks are views of `data` (the last one a copy when `data` does not end with a newline). None when some
    line is not a record: the caller then splits records one by one."""
    end_of_records = _content_end(data)
    if not end_of_records or data[0] == NEWLINE or b"\r" in data:
        return None
    newline = np.frombuffer(data, dtype=np.uint8, count=end_of_records) == NEWLINE
    if (newline[1:] & newline[:-1]).any():
        return None
    total = end_of_records + 1  # with the last record's newline, whether `data` has it or not
    target = min(target_bytes or max_payload_bytes, max_payload_bytes)
    view = memoryview(data)
    chunks: list[Chunk] = []
    position, first = 0, 0
    while position < total:
        limit = min(position + max_payload_bytes, total)
        end = data.find(b"\n", position + target - 1, limit) + 1 if target < max_payload_bytes else 0
        if end <= position:
            end = limit
            if end < total:
                cut = data.rfind(b"\n", position, end)
                if cut < position:
                    raise TransformInputError(f"record {first + 1} is larger than MaxPayloadInMB")
                end = cut + 1
        count = int(np.count_nonzero(newline[position : end - 1])) + 1
        chunk = view[position:end] if end <= len(data) else bytes(view[position : end - 1]) + b"\n"
        chunks.append((first, count, chunk))
        first += count
        position = end
    return chunks


def batches(records: list[bytes], strategy: str, max_payload_bytes: int) -> Iterator[tuple[int, list[bytes]]]:
    """Yields (index of the first record, records) per request: one record, or as many as fit the payload."""
    if strategy == "SingleRecord":
        for i, record in enumerate(records):
            yield i, [record]
        return
    start, size = 0, 0
    for i, record in enumerate(records):
        if len(record) + 1 > max_payload_bytes:
            raise TransformInputError(f"record {i + 1} is larger than MaxPayloadInMB")
        if size + len(record) + 1 > max_payload_bytes and i > start:
            yield start, records[start:i]
            start, size = i, 0
        size += len(record) + 1
    if start < len(records):
        yield start, records[start:]


def join_outputs(
    inputs: list[bytes], outputs: list[bytes], join_source: str | None, output_filter: CsvFilter
) -> list[bytes]:
    joined = (
        [i + b"," + o for i, o in zip(inputs, outputs, strict=True)] if join_source == "Input" else outputs
    )
    if output_filter.selects_all:
        return joined
    return [output_filter.apply(r) for r in joined]
