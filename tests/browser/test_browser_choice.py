"""Which browser the browser tests drive, given what the machine has (stand-in executables here)."""

import pytest
from browsers import choose_browser


@pytest.fixture
def machine(tmp_path):
    def make(*names: str, snap: tuple[str, ...] = ()) -> dict[str, str]:
        paths = {}
        for name in names:
            path = tmp_path / name
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
            paths[name] = str(path)
        for name in snap:  # Ubuntu's chromium: a wrapper that starts the snap
            (tmp_path / "snap" / "bin").mkdir(parents=True, exist_ok=True)
            target = tmp_path / "snap" / "bin" / name
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
            (tmp_path / name).symlink_to(target)
            paths[name] = str(tmp_path / name)
        return paths

    return make


def test_playwrights_own_chromium_comes_first_when_it_was_downloaded(machine):
    paths = machine("playwright-chrome", "google-chrome", "chromium")
    chosen = choose_browser(paths.get, lambda: paths["playwright-chrome"])
    assert (chosen.name, chosen.path) == ("Playwright's Chromium", paths["playwright-chrome"])


def test_the_runners_google_chrome_is_next(machine, tmp_path):
    paths = machine("google-chrome", "chromium")
    chosen = choose_browser(paths.get, lambda: str(tmp_path / "never-downloaded" / "chrome"))
    assert (chosen.name, chosen.path) == ("Google Chrome", paths["google-chrome"])


def test_debians_chromium_when_there_is_nothing_else(machine):
    paths = machine("chromium")
    chosen = choose_browser(paths.get, lambda: None)
    assert (chosen.name, chosen.path) == ("Debian's chromium", paths["chromium"])


def test_ubuntus_snap_wrapper_is_not_a_browser_for_the_tests(machine):
    paths = machine(snap=("chromium",))
    assert choose_browser(paths.get, lambda: None) is None
