"""`scripts/screenshots` takes the docs' pictures from a real rehearsal: the approval mail, its page, the decision
and the "is live" mail, as PNG files of the width it asks for."""

import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
NAMES = ["approval-mail.png", "approval-page.png", "approval-decided.png", "live-mail.png"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_screenshots_of_a_real_rehearsal_land_where_the_docs_link_them(tmp_path):
    done = subprocess.run(
        [sys.executable, "scripts/screenshots.py", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(NAMES)
    for name in NAMES:
        width, height = png_size(tmp_path / name)
        assert width == 900 and height > 300, (name, width, height)
        assert name in done.stdout
    # The committed pictures are the ones the pages show.
    pages = (REPO / "docs" / "pipeline.md").read_text() + (REPO / "README.md").read_text()
    for name in NAMES:
        assert f"images/{name}" in pages and (REPO / "docs" / "images" / name).is_file()
