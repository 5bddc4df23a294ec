"""The dashboard tells the truth at a glance, checked in a real Chromium at 1400×1000 and 480×900:
the live pill, filter combinations, lock release, deleted jobs, the detail page, stuck queues,
menus and bulk actions, log times and the favicon."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dashboard import demo
from tests.dashboard.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.urls("tests.dashboard.urls"),
              pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("width,height", [(1400, 1000), (480, 900)])


def shoot(page: Any, name: str, *, full: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)


def console_errors(page: Any) -> list[str]:
    found: list[str] = []
    page.on("console", lambda msg: found.append(msg.text) if msg.type in ("error", "warning") else None)
    return found


@pytest.fixture
def fast(dashboard_settings: Any) -> None:
    dashboard_settings(REFRESH_INTERVAL=1)


# -- 2: every filter combination gives the list its URL says -----------------------------------
@SIZES
def test_search_then_chip_gives_the_list_the_url_says(browse: Any, tracked: None, width: int, height: int) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse(width, height)
    errors = console_errors(page)
    page.goto("/tasks/jobs/")
    page.fill("#pca-q", "quarterly")
    expect(page).to_have_url(re.compile(r"\?q=quarterly$"))
    page.locator("#pca-chip-failed").click()
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))
    page.wait_for_load_state("networkidle")
    rows = page.locator("#pca-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".pca-badge")).to_have_text(re.compile("Failed"))
    expect(page.locator("#pca-q")).to_have_value("quarterly")
    assert not [e for e in errors if "oob" in e.lower()], errors


def test_typing_then_clicking_a_chip_at_once_keeps_both(browse: Any, tracked: None) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse()
    page.goto("/tasks/jobs/")
    page.fill("#pca-q", "quarterly")
    page.locator("#pca-chip-failed").click()  # before the search's own request went out
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    expect(page.locator("#pca-results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))


# -- 1: the live pill tells the truth ------------------------------------------------------------
RECORD_PILL = """() => { window.__pill = [];
  document.addEventListener('htmx:afterSettle', (e) => {
    if (e.detail.target && e.detail.target.hasAttribute('data-pca-region'))
      window.__pill.push(document.querySelector('[data-pca-live-text]').textContent);
  }); }"""


@SIZES
@pytest.mark.parametrize("url", ["/tasks/", "/tasks/jobs/"])
def test_live_pill_resets_on_every_refresh_and_says_stale_on_failure(
        browse: Any, fast: None, url: str, width: int, height: int) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse(width, height)
    page.goto(url)
    page.evaluate(RECORD_PILL)
    page.wait_for_function("() => window.__pill.length >= 4", timeout=20_000)
    texts = page.evaluate("window.__pill")
    assert all(t == "Live · updated just now" for t in texts), texts
    pill = page.locator("[data-pca-live]")
    expect(pill).to_have_attribute("data-state", "live")
    # The server stops answering: the pill turns stale instead of claiming to be live.
    page.route(re.compile(r".*/tasks/.*"), lambda route: route.fulfill(status=500, body="down"))
    expect(pill).to_have_attribute("data-state", "stale", timeout=10_000)
    expect(pill).to_contain_text("Stale · refresh failed")
    shoot(page, f"live-stale-{width}x{height}")
    page.unroute(re.compile(r".*/tasks/.*"))
    expect(pill).to_have_attribute("data-state", "live", timeout=10_000)
