"""Which Chromium the browser tests drive: the one place that chooses, used by the tests and by scripts/test.

In order: Playwright's own Chromium (`playwright install chromium`, where it can download), the machine's
Google Chrome (GitHub's ubuntu-24.04 runner has one), Debian's chromium package. Ubuntu's `chromium` and
`chromium-browser` are snap wrappers that do not run headless in CI, so only a real binary counts.
    python tests/browser/browsers.py      prints the choice; exit 1 when there is none
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHROME_NAMES = ("google-chrome", "google-chrome-stable", "chrome")
DEBIAN_CHROMIUM = ("chromium",)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@dataclass(frozen=True)
class Browser:
    name: str
    path: str

    def describe(self) -> str:
        return f"{self.name} ({self.path})"


def playwright_chromium() -> str | None:
    """Where Playwright keeps its own Chromium (it may not be downloaded)."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            return playwright.chromium.executable_path
    except Exception:  # no playwright, or its driver cannot start here (e.g. a library it needs is missing)
        return None


def _real_binary(path: str | None) -> bool:
    return bool(path) and os.access(path, os.X_OK) and "/snap/" not in os.path.realpath(path)


def choose_browser(
    which: Callable[[str], str | None] = shutil.which,
    playwright_path: Callable[[], str | None] = playwright_chromium,
) -> Browser | None:
    bundled = playwright_path()
    if bundled and Path(bundled).is_file() and _real_binary(bundled):
        return Browser("Playwright's Chromium", bundled)
    for name in CHROME_NAMES:
        if _real_binary(found := which(name)):
            return Browser("Google Chrome", found)
    for name in DEBIAN_CHROMIUM:
        if _real_binary(found := which(name)):
            return Browser("Debian's chromium", found)
    return None


def main() -> int:
    browser = choose_browser()
    if browser is None:
        print("browser: none (no Playwright Chromium, Google Chrome or Debian chromium)", file=sys.stderr)
        return 1
    print(f"browser: {browser.describe()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
