"""Headless Chromium (Debian's, `make chromium`) for the tests that look at a page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is missing: `make chromium` installs it (make test-all does)"
    return path


def flags(profile: Path, window: str = "1300,4200") -> list[str]:
    """A quiet headless browser with its own profile, console messages on stderr, 10 s of
    virtual time for the page's scripts."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        f"--window-size={window}",
    ]


def dump_dom(url: str, profile: Path) -> subprocess.CompletedProcess:
    """The page's DOM once its scripts ran (stdout), the browser's log (stderr)."""
    command = [chromium(), *flags(profile), "--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def screenshot(url: str, path: Path, profile: Path, window: str = "1300,4200") -> Path:
    subprocess.run(
        [chromium(), *flags(profile, window), f"--screenshot={path}", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return path
