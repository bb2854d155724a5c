"""``mlops traffic``: rows of the held-out data, optionally shifted, sent through the inference API.

Rows are taken in order and the list starts over when it runs out, so N rows follow the held-out data's own
distribution (a random draw from 30 rows would drift by chance); ``--shift FEATURE=DELTA`` adds DELTA to one
column, as a change in the world would.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .release import ReleaseError

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def feature_names_of(example: str) -> tuple[str, ...]:
    """The input columns of an example model (its slot in container/mlmodel/models), in order."""
    from mlmodel.models import slot_named

    return tuple(slot_named(example).feature_names)


ROUTE = "/v1/invokeSagemakerAPI"


def parse_shift(text: str, features: Sequence[str]) -> tuple[str, float]:
    """``FEATURE=DELTA`` (e.g. petal_width=+1.5) -> (feature, delta)."""
    name, sep, delta = text.partition("=")
    if not sep or not name:
        raise ReleaseError(f"--shift {text!r}: expected FEATURE=DELTA, e.g. petal_width=+1.5")
    if name not in features:
        raise ReleaseError(f"--shift {text!r}: no feature {name!r}; the features are {', '.join(features)}")
    try:
        return name, float(delta)
    except ValueError:
        raise ReleaseError(f"--shift {text!r}: DELTA {delta!r} is not a number") from None


def held_out_rows(path: Path) -> list[list[str]]:
    """The feature columns of a label-first CSV file (the held-out data's layout)."""
    rows = [line.split(",")[1:] for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ReleaseError(f"{path} has no rows to send")
    return rows


def traffic_rows(
    source: list[list[str]], count: int, features: Sequence[str], shifts: Sequence[tuple[str, float]] = ()
) -> list[str]:
    """``count`` CSV rows from ``source`` in order (starting over as needed), with each shift applied."""
    if count < 1:
        raise ReleaseError(f"--rows {count}: send at least one row")
    width = len(source[0])
    if len(features) != width:
        raise ReleaseError(
            f"the data has {width} feature columns but {len(features)} feature names were given"
        )
    columns = {name: features.index(name) for name, _ in shifts}
    rows = []
    for number in range(count):
        values = list(source[number % len(source)])
        for name, delta in shifts:
            values[columns[name]] = f"{float(values[columns[name]]) + delta:g}"
        rows.append(",".join(values))
    return rows


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Content-Type": "application/json", **({"x-api-key": api_key} if api_key else {})}


def post_row(url: str, row: str, headers: dict[str, str]) -> tuple[int, str]:
    """POSTs ``{"data": row}``: the status (0: no answer) and the result, or the error's first 200 characters."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the caller's API
        url, data=json.dumps({"data": row}).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")[:200]
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)
    try:
        return response.status, str(json.loads(body).get("result"))
    except (ValueError, AttributeError):  # not the API's JSON object
        return response.status, body.decode(errors="replace")[:200]


def send(api_url: str, rows: Sequence[str], api_key: str | None = None, workers: int = 8) -> dict:
    """POSTs each row as ``{"data": row}``; returns how many were answered and the answers' counts."""
    url, headers = api_url.rstrip("/") + ROUTE, _headers(api_key)

    def post(row: str) -> tuple[int, str]:
        return post_row(url, row, headers)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(post, rows))
    ok = [answer for status, answer in answers if status == 200]
    failed = [(status, answer) for status, answer in answers if status != 200]
    return {
        "sent": len(rows),
        "answered": len(ok),
        "failed": len(failed),
        "first_error": None if not failed else f"HTTP {failed[0][0]}: {failed[0][1]}",
        "predictions": dict(Counter(ok)),
    }


class SteadyTraffic:
    """Rows sent one at a time at `rate` per second until `stop()`, as users keep calling during an update;
    `stop()` returns how many were sent, answered (200) and failed, with the failures' statuses."""

    def __init__(self, api_url: str, rows: Sequence[str], rate: float, api_key: str | None = None) -> None:
        self._url = api_url.rstrip("/") + ROUTE
        self._rows = rows
        self._interval = 1.0 / rate
        self._headers = _headers(api_key)
        self._stop = threading.Event()
        self._statuses: Counter[int] = Counter()
        self._thread = threading.Thread(target=self._run, name="steady-traffic", daemon=True)

    def start(self) -> SteadyTraffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        number = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            status, _ = post_row(self._url, self._rows[number % len(self._rows)], self._headers)
            self._statuses[status] += 1
            number += 1
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=35)
        sent = sum(self._statuses.values())
        return {
            "sent": sent,
            "answered": self._statuses[200],
            "failed": sent - self._statuses[200],
            "failed_statuses": {str(code): n for code, n in sorted(self._statuses.items()) if code != 200},
        }
