"""The model image's size and how long a rebuild takes when every layer is cached (Docker or podman)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from mlops.local import images

TAG = f"{images.MODEL_IMAGE}:bench"
# Tags the test suite and the local runtime build from the same Dockerfile: their layers are our cache.
WARM_TAGS = (TAG, f"{images.MODEL_IMAGE}:test", f"{images.MODEL_IMAGE}:latest")


def _build() -> float:
    started = time.perf_counter()
    images.build_image(TAG, quiet=True, log=lambda message: None)
    return time.perf_counter() - started


def measure(rebuilds: int, quick: bool, log: Callable[[str], None]) -> dict:
    try:
        engine = images.engine()
    except images.ImageError as error:
        return {"skipped": str(error)}
    warm = images.image_exists(engine.base_image) and any(images.image_exists(tag) for tag in WARM_TAGS)
    if quick and not warm:
        return {
            "skipped": "quick mode: the model image was never built here, so a build would make the base "
            "image and install every package (minutes); the full mode builds it"
        }
    # Quick mode knows the layers are cached: its one build is the rebuild.
    first = None if quick else _build()
    if first is not None:
        log(f"  image build (layers {'cached' if warm else 'not cached'} before): {first:.1f} s")
    times = []
    for _ in range(rebuilds):
        times.append(_build())
        log(f"  image cached rebuild: {times[-1]:.1f} s")
    size = images.image_size_bytes(TAG)
    base = images.image_size_bytes(engine.base_image)
    return {
        "tag": TAG,
        "size_mb": round(size / 1e6, 1),
        "added_to_base_mb": round((size - base) / 1e6, 1),
        "engine": engine.name,
        "base_image": engine.base_image,
        "first_build_seconds": round(first, 2) if first is not None else None,
        "first_build_had_cache": warm,
        "cached_rebuild_seconds": {
            "min": round(min(times), 2),
            "median": round(statistics.median(times), 2),
            "runs": len(times),
        }
        if times
        else None,
    }
