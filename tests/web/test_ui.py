"""The web UI in a real browser (Debian's chromium, headless, driven by Playwright) against a real
`roost demo` server: keys from the printed link, search with filters and a cited answer, chat
streamed token by token, the training runs, revoking a firehose consumer, keyboard navigation.
Screenshots of every section, at desktop and phone widths, go to test-artifacts/web/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.web.browser import CHROMIUM, MISSING, launch

if TYPE_CHECKING:
    from tests.web.demo_session import DemoHome, DemoServer

pytest_plugins = ["tests.web.demo_session"]
pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(MISSING)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    with sync_api.sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(
    browser: Any, demo_home: DemoHome, launch_demo: Callable[[Path], DemoServer]
) -> Iterator[DemoServer]:
    running = launch_demo(demo_home.ws.home)
    yield running
    running.stop()


@pytest.fixture
def page(browser: Any, server: DemoServer) -> Iterator[Any]:
    """The page opened from the link `roost demo` printed (keys in its #fragment)."""
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(f"{server.url}/#key={server.api_key}&admin={server.admin_key}")
    opened.wait_for_selector("#keys-label:has-text('Keys (2)')")
    yield opened
    context.close()
    assert not errors, f"errors in the page: {errors}"


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_keys_leave_the_address_bar_and_stay_in_the_tab(page: Any, server: DemoServer) -> None:
    assert "key=" not in page.url and page.url.endswith("#search")
    assert page.evaluate("sessionStorage.getItem('roost.apiKey')") == server.api_key
    assert page.evaluate("localStorage.length") == 0
    # nothing the server printed after its welcome carries a key
    assert server.output.count(server.api_key) == 3


def test_search_shows_filtered_results_and_an_answer_citing_them(page: Any) -> None:
    page.wait_for_selector("#trending .chip")
    page.locator("#trending .chip").first.click()
    page.wait_for_selector("#results li")
    assert page.locator("#results li").count() > 0
    page.wait_for_selector("#answer[aria-busy='false']")
    cites = page.locator("#answer .cite")
    assert cites.count() > 0, page.inner_text("#answer")
    for href in cites.evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert page.locator(f"#answer [id='{href[1:]}']").count() == 1  # every citation is a listed post
    cites.first.click()
    assert page.evaluate("document.activeElement.id").startswith("cite-")
    shoot(page, "search-desktop")
    # a filter narrows every result: Spanish only
    page.select_option("select[name=lang]", "es")
    page.locator("input[name=answer]").uncheck()
    page.fill("#q", "")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results[aria-busy='false'] li")
    languages = page.locator("#results .post-head .badge[title=language]").all_inner_texts()
    assert languages and set(languages) == {"es"}


def test_chat_streams_the_reply_token_by_token(page: Any) -> None:
    page.click("#tab-chat")
    # Record every length the reply's text passes through while it streams.
    page.evaluate(
        """() => {
        window.seen = [];
        new MutationObserver(() => {
          const reply = document.querySelector('#messages .msg.assistant:last-child');
          if (reply) window.seen.push(reply.textContent.length);
        }).observe(document.getElementById('messages'),
                   {childList: true, subtree: true, characterData: true});
    }"""
    )
    page.fill("#chat-input", "what is everyone talking about today?")
    page.keyboard.press("Enter")
    reply = page.locator("#messages .msg.assistant[data-done]")
    reply.wait_for(timeout=90_000)
    assert "error" not in (reply.get_attribute("class") or ""), reply.inner_text()
    chunks = int(reply.get_attribute("data-chunks"))
    lengths = sorted({n for n in page.evaluate("window.seen") if n > 0})
    assert chunks >= 2 and len(lengths) >= 2, (chunks, lengths, reply.inner_text())
    assert "tokens in" in page.inner_text("#chat-meta")
    shoot(page, "chat-desktop")


def test_ads_studio_writes_checked_copy_shows_targets_and_a_simulated_day(page: Any) -> None:
    page.click("#tab-ads")
    page.wait_for_selector(".campaign-list button[aria-pressed='true']")
    # the simulated day the demo ran: tiles, the two charts and a row per campaign
    page.wait_for_selector("#panel-ads svg[role=img]")
    assert page.locator("#panel-ads svg[role=img]").count() == 2
    assert page.locator("#panel-ads table tbody tr").count() >= 4
    # the live conversations the chosen campaign would be shown next to (posts of the last day)
    page.wait_for_selector("#panel-ads .posts .post")
    # a brief in; variants out, each passed one holding the rules, each rejected one saying why
    page.fill("#panel-ads input[name=must_include]", "comfort")
    page.fill("#panel-ads input[name=banned]", "cheap")
    page.click("#panel-ads button[type=submit]")
    page.wait_for_selector("#panel-ads .variants li", timeout=90_000)
    passed = page.locator("#panel-ads .variant.ok > div:first-child").all_inner_texts()
    reasons = [v.locator(".why li").count() for v in page.locator("#panel-ads .variant.rejected").all()]
    assert passed or reasons
    for text in passed:
        assert "comfort" in text.lower() and "cheap" not in text.lower() and "https://" in text
    assert all(count >= 1 for count in reasons)
    shoot(page, "ads-desktop")


def test_training_shows_each_runs_curve_speed_and_mfu(page: Any) -> None:
    page.click("#tab-training")
    page.wait_for_selector("#runs button")
    assert set(page.locator("#runs .run-name").all_inner_texts()) == {"demo", "demo-chat"}
    page.wait_for_selector("#run-detail svg[role=img]")
    tiles = page.inner_text("#run-detail .tiles")
    assert "MFU" in tiles and "Tokens / s" in tiles
    page.locator("#runs button", has_text="demo").last.click()
    assert "Loss of demo:" in page.locator("#run-detail svg[role=img]").first.get_attribute("aria-label")
    shoot(page, "training-desktop")


def test_the_admin_revokes_a_consumer_and_its_stream_ends(
    page: Any, server: DemoServer, demo_home: DemoHome
) -> None:
    page.click("#tab-firehose")
    row = page.locator("#fh-consumers tr[data-consumer='acme-research']")
    row.locator(".badge.good").wait_for()
    page.wait_for_function(
        "() => document.querySelector(\"#fh-consumers tr[data-consumer='acme-research'] td:nth-of-type(3)\")"
        ".textContent.trim() !== '0'",
        timeout=30_000,
    )
    shoot(page, "firehose-desktop")
    row.get_by_role("button", name="Revoke acme-research").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    row.locator(".badge.bad").wait_for()
    assert "Revoked acme-research: 1 stream(s) closed" in page.inner_text("#notice")
    # its key no longer opens a stream, and the consumer heard why its stream ended
    key = (demo_home.ws.home / "demo" / "keys" / "acme-research.key").read_text().strip()
    refused = httpx.get(f"{server.url}/firehose/stream", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403 and refused.json()["error"] == "credential_revoked"
    deadline = time.monotonic() + 10
    while "consumer acme-research was revoked" not in server.output and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "consumer acme-research was revoked" in server.output


def test_tabs_follow_the_keyboard(page: Any) -> None:
    page.focus("#tab-search")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-chat"
    assert page.is_visible("#panel-chat") and not page.is_visible("#panel-search")
    page.keyboard.press("End")
    assert page.get_attribute("#tab-firehose", "aria-selected") == "true"
    page.keyboard.press("Home")
    assert page.url.endswith("#search")


def test_without_keys_the_page_asks_for_them(browser: Any, server: DemoServer) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(server.url)
    assert "API key" in page.inner_text("#notice")
    page.click("#keys-button")
    page.fill("#api-key", server.api_key)
    page.get_by_role("button", name="Save").click()
    assert page.inner_text("#keys-label") == "Keys (1)"
    page.click("#tab-firehose")
    assert page.is_visible("#firehose-locked")
    context.close()


def test_every_section_fits_a_phone(browser: Any, server: DemoServer) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server.url}/#key={server.api_key}&admin={server.admin_key}")
    for tab in ("search", "chat", "ads", "training", "firehose"):
        page.goto(f"{server.url}/#{tab}")
        page.wait_for_timeout(800)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{tab} is {width}px wide on a {PHONE['width']}px screen"
        shoot(page, f"{tab}-phone")
    context.close()
