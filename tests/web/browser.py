"""Debian's chromium, headless, under Playwright: the one browser the web tests and the README's
screenshots use. Playwright is pointed at the system's binary and never downloads one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches out to the network: no component updates, sync or QUIC.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"


def launch(playwright: Any) -> Any:
    """A headless chromium browser from `playwright` (a started `sync_playwright()`)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(MISSING)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
