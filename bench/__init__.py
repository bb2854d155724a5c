"""Benchmarks of the data path (batch transform, serving), the rehearsal and the image: `scripts/bench`."""
