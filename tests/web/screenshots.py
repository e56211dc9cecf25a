"""The README's screenshots (docs/images/<section>.png), taken by Playwright in Debian's chromium
from a real `roost demo` serving HOME on a free port, each section shown doing its work: a search
with its cited answer, a streamed chat reply, the ads studio's checked variants and simulated day,
the training runs, the firehose's live rate and consumers.

    .venv/bin/python -m tests.web.screenshots [HOME]    # default ./roost-home; builds it if needed

For pictures worth showing, HOME is a demo built with the default budget (`make demo` builds
./roost-home); the tests' tiny build works too, with a model that has learned little.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tests.web.browser import launch
from tests.web.demo_session import DemoServer, start_demo

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
VIEWPORT = {"width": 1280, "height": 860}
QUESTION = "what is everyone talking about today?"


def shoot(page: Any, name: str, *, full_page: bool = False) -> None:
    path = IMAGES / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


def search(page: Any) -> None:
    page.click("#tab-search")
    page.locator("#trending .chip").first.click()
    page.wait_for_selector("#results[aria-busy='false'] li")
    page.wait_for_selector("#answer[aria-busy='false'] .cited", timeout=120_000)
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "search")


def chat(page: Any) -> None:
    page.click("#tab-chat")
    page.fill("#chat-input", QUESTION)
    page.keyboard.press("Enter")
    page.locator("#messages .msg.assistant[data-done]").wait_for(timeout=120_000)
    shoot(page, "chat")


def ads(page: Any) -> None:
    page.click("#tab-ads")
    page.wait_for_selector("#panel-ads svg[role=img]")
    page.wait_for_selector("#panel-ads .posts .post", timeout=60_000)
    page.fill("#panel-ads input[name=audience]", "weekend runners")
    page.fill("#panel-ads input[name=must_include]", "comfort")
    page.fill("#panel-ads input[name=banned]", "cheap")
    page.click("#panel-ads button[type=submit]")
    page.wait_for_selector("#panel-ads .variants li", timeout=120_000)
    shoot(page, "ads", full_page=True)


def training(page: Any) -> None:
    page.click("#tab-training")
    page.wait_for_selector("#runs button")
    page.locator("#runs button", has_text="pretraining").first.click()
    page.wait_for_selector("#run-detail svg[role=img]")
    shoot(page, "training", full_page=True)


def firehose(page: Any) -> None:
    page.click("#tab-firehose")
    page.wait_for_selector("#fh-consumers tbody tr")
    page.wait_for_timeout(12_000)  # six polls: the rate chart has a line to show
    shoot(page, "firehose", full_page=True)


def take(server: DemoServer) -> None:
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{server.url}/#key={server.api_key}&admin={server.admin_key}")
        page.wait_for_selector("#keys-label:has-text('Keys (2)')")
        for section in (search, chat, ads, training, firehose):
            section(page)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("home", nargs="?", default="roost-home", type=Path)
    home = parser.parse_args().home.resolve()
    server = start_demo(home, timeout=1800)  # reuses a built home's stages; builds one that is not
    try:
        take(server)
    finally:
        code = server.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
