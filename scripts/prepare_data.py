#!/usr/bin/env python3
"""Write an example's data set as train.csv and a held-out test.csv, label first, no header.

The split is seeded, so every run writes the same files. iris (the default; stratified, 120 training rows,
30 test rows): the class name, then four features, `setosa,5.1,3.5,1.4,0.2`. diabetes (--model diabetes;
354 and 88 rows): the disease progression, then ten features, `151,59,2,32.1,101,157,93.2,38,4,4.8598,87`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _use_project_venv() -> None:
    """Run again with the project's .venv when this interpreter lacks the project."""
    try:
        import sklearn  # noqa: F401 - the iris data ships inside it

        import mlops.data  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.is_file() and Path(sys.executable) != venv_python:
            os.execv(venv_python, [str(venv_python), *sys.argv])  # noqa: S606 - fixed argv, no shell
        sys.exit("error: scikit-learn is not installed: run scripts/test once, or pip install -e '.[model]'")


def main(argv: list[str] | None = None) -> int:
    from mlops.data import EXAMPLES, SEED, write_split

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default="data", help="directory to write train.csv and test.csv (default: data/)"
    )
    parser.add_argument("--model", choices=EXAMPLES, default="iris", help="which example (default: iris)")
    parser.add_argument("--test-size", type=float, default=0.2, help="held-out fraction (default: 0.2)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"split seed (default: {SEED})")
    args = parser.parse_args(argv)
    train, test = write_split(args.model, args.out, args.test_size, args.seed)
    for path in (train, test):
        rows = sum(1 for _ in path.open())
        print(f"wrote {path} ({rows} rows)")
    return 0


def write_iris_split(out_dir: str | Path, *args, **kwargs) -> tuple[Path, Path]:
    from mlops.data import write_iris_split as write

    return write(out_dir, *args, **kwargs)


def write_split(example: str, out_dir: str | Path, *args, **kwargs) -> tuple[Path, Path]:
    from mlops.data import write_split as write

    return write(example, out_dir, *args, **kwargs)


if __name__ == "__main__":
    _use_project_venv()
    raise SystemExit(main())
