"""Small PNG charts for the approval mail and page: the confusion matrix as a heat map, the held-out accuracy of
the candidate beside the live model's. PNG because mail clients show inline PNG and not SVG; written with the
standard library (zlib) so the function's package stays small. The numbers stay in the HTML table and the
text part: the pictures carry no text.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

CELL = 40  # pixels per confusion-matrix cell
GRID = (187, 187, 187)
WHITE = (255, 255, 255)
BLUE = (33, 102, 172)  # the most rows of a true label
CANDIDATE = (46, 125, 50)
LIVE = (120, 120, 120)
BAR_WIDTH, BAR_HEIGHT, BAR_GAP = 320, 22, 10

Pixel = tuple[int, int, int]


def png(rows: Sequence[Sequence[Pixel]]) -> bytes:
    """An 8-bit RGB PNG of `rows` (each a list of (r, g, b))."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def shade(fraction: float) -> Pixel:
    """White for 0, the heat map's blue for 1."""
    fraction = min(max(fraction, 0.0), 1.0)
    return tuple(round(w + (b - w) * fraction) for w, b in zip(WHITE, BLUE, strict=True))  # type: ignore[return-value]


def row_fractions(matrix: Sequence[Sequence[float]]) -> list[list[float]]:
    """Each count as a share of its true label's rows: the diagonal is that label's recall."""
    return [[count / (sum(row) or 1) for count in row] for row in matrix]


def confusion_heatmap(matrix: Sequence[Sequence[float]]) -> bytes | None:
    if not matrix or not all(len(row) == len(matrix) for row in matrix):
        return None
    size = len(matrix) * CELL + 1
    fractions = row_fractions(matrix)
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            if y % CELL == 0 or x % CELL == 0:
                row.append(GRID)
            else:
                row.append(shade(fractions[y // CELL][x // CELL]))
        rows.append(row)
    return png(rows)


def accuracy_bars(candidate: float | None, live: float | None) -> bytes | None:
    """One bar per model, the candidate's first, on a 0 to 1 scale."""
    bars = [(value, colour) for value, colour in ((candidate, CANDIDATE), (live, LIVE)) if _number(value)]
    if not bars:
        return None
    height = len(bars) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    rows = [[WHITE] * BAR_WIDTH for _ in range(height)]
    for index, (value, colour) in enumerate(bars):
        top = BAR_GAP + index * (BAR_HEIGHT + BAR_GAP)
        length = round(BAR_WIDTH * min(max(float(value), 0.0), 1.0))
        for y in range(top, top + BAR_HEIGHT):
            rows[y][:length] = [colour] * length
    for y in range(height):  # the scale's 0 and 1
        rows[y][0] = rows[y][BAR_WIDTH - 1] = GRID
    return png(rows)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
