"""The newcomer walk in a real Chromium against a live server and a real qcluster: log in,
launch a bulk update, watch its progress bar advance and finish, find it in the dashboard."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from sample.models import Book
from tests.sample.conftest import ROOT
from tests.services import missing

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        missing("chromium")
    # Playwright's sync API keeps an event loop around; the test's own ORM calls are synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS) / f"sample-{name}.png"), full_page=True)


def test_newcomer_walk(live_server: Any, sample_qcluster: Any, page: Any) -> None:
    from playwright.sync_api import expect

    call_command(
        "demo_setup",
        "--skip-migrate",
        "--username",
        "walker",
        "--password",
        "walk-pass",
        stdout=StringIO(),
    )
    cluster = sample_qcluster(SAMPLE_WORK_DELAY="0.3")
    books = list(Book.objects.filter(chapters__isnull=False).distinct().order_by("title")[:3])

    # Log in from the home page.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="What to try")).to_be_visible()
    page.get_by_role("link", name="Log in").first.click()
    page.fill("#id_username", "walker")
    page.fill("#id_password", "walk-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out walker")).to_be_visible()

    # Select three books and launch the bulk update.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Books").click()
    for book in books:
        page.get_by_label(f"Select {book.title}", exact=True).check()
    expect(page.locator("#selection-count")).to_have_text("3 selected:")
    page.get_by_role("button", name="Update in background").click()
    expect(page.locator(".message.success")).to_contain_text("Started task")
    key = parse_qs(urlsplit(page.url).query)["watch"][0]
    assert len(key) == 36

    # The progress bar advances, never backwards, and finishes. The page records every value it
    # shows (a MutationObserver), so nothing depends on how often the test looks.
    page.evaluate(
        """() => {
            window.__seen = []; window.__locked = 0;
            const record = () => {
                const bar = document.querySelector('#watch-progress progress');
                const value = bar && bar.getAttribute('value');
                if (value) window.__seen.push(parseFloat(value));
                const rows = document.querySelectorAll('#book-table tr.locked').length;
                window.__locked = Math.max(window.__locked, rows);
            };
            record();
            new MutationObserver(record).observe(
                document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )
    page.wait_for_function("() => window.__seen.some(v => v > 0 && v < 100)", timeout=60_000)
    shot(page, "progress")
    page.wait_for_function(
        """() => ['success', 'failed', 'cancelled'].includes(
            document.querySelector('#watch-progress .pca-progress')?.dataset.status)""",
        timeout=60_000,
    )
    status = page.locator("#watch-progress .pca-progress").get_attribute("data-status") or ""
    seen: list[float] = page.evaluate("() => window.__seen")
    locked_rows: int = page.evaluate("() => window.__locked")
    assert status == "success", cluster.output()[-3000:]
    assert seen == sorted(seen), seen
    assert any(0 < v < 100 for v in seen), seen
    assert seen[-1] == 100
    assert locked_rows == 3  # the table marked the rows while they were locked
    expect(page.locator("#watch-progress")).to_contain_text("Succeeded")
    # Once nothing is locked the table stops refreshing itself and shows the rows idle.
    expect(page.locator("#book-table tr.locked")).to_have_count(0, timeout=10_000)

    # The record is in the dashboard.
    page.get_by_role("link", name="Follow the task").click()
    expect(page.locator("body")).to_contain_text(key)
    expect(page.locator("body")).to_contain_text("Succeeded")
    shot(page, "dashboard-detail")
    page.goto(f"{live_server.url}/sample/async-dashboard/jobs/")
    expect(page.locator("body")).to_contain_text(key[:8])
    shot(page, "dashboard-list")
    assert {b.revision for b in Book.objects.filter(pk__in=[b.pk for b in books])} == {1}


@pytest.fixture
def sized(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``sized(width, height)`` opens a page at that viewport (one Chromium for the test)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        missing("chromium")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )

        def open_page(width: int, height: int) -> Any:
            page = browser.new_context(viewport={"width": width, "height": height}).new_page()
            page.set_default_timeout(20_000)
            return page

        try:
            yield open_page
        finally:
            browser.close()


@pytest.mark.parametrize("width,height", [(1400, 1000), (480, 900)])
def test_refusals_name_books_keep_typing_and_clear_when_the_job_ends(
    live_server: Any, sized: Any, width: int, height: int
) -> None:
    """No qcluster: the holding job stays queued until the test runs it, so nothing races."""
    from playwright.sync_api import expect

    from sample.models import AsyncTaskRecord
    from tests.sample.conftest import run_queued

    call_command(
        "demo_setup",
        "--skip-migrate",
        "--username",
        "walker",
        "--password",
        "walk-pass",
        stdout=StringIO(),
    )
    books = list(Book.objects.filter(chapters__isnull=False).distinct().order_by("title")[:3])
    page = sized(width, height)
    page.goto(f"{live_server.url}/accounts/login/?next=/sample/book/")
    page.fill("#id_username", "walker")
    page.fill("#id_password", "walk-pass")
    page.get_by_role("button", name="Log in").click()
    for book in books[:2]:
        page.get_by_label(f"Select {book.title}", exact=True).check()
    page.get_by_role("button", name="Update in background").click()
    expect(page.locator(".message.success")).to_contain_text("Started task")
    # An overlapping job is refused, naming the locked book by its title.
    page.goto(f"{live_server.url}/sample/book/")
    for book in books[1:]:
        page.get_by_label(f"Select {book.title}", exact=True).check()
    page.get_by_role("button", name="Delete in background").click()
    refusal = page.locator("#refusals .message.error")
    expect(refusal).to_contain_text(f"Not started: “{books[1].title}” is locked by task")
    expect(refusal).not_to_contain_text(f"book {books[1].pk}")
    shot(page, f"refusal-{width}x{height}")
    # A locked book's page speaks of the whole job, not of the book it is working on.
    page.goto(f"{live_server.url}/sample/book/{books[0].pk}/")
    banner = page.locator(".message.warning")
    expect(banner).to_contain_text("locked by task")
    other_titles = [b.title for b in Book.objects.exclude(pk=books[0].pk)]
    assert not any(title in banner.inner_text() for title in other_titles)
    # A refused edit keeps what was typed.
    page.goto(f"{live_server.url}/sample/book/{books[0].pk}/edit/")
    page.fill("#id_year", "1777")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main form")).to_contain_text("Not saved:")
    expect(page.locator("#id_year")).to_have_value("1777")
    # Back on the list the refusal shows while the rows are locked, and goes once the job ends.
    page.goto(f"{live_server.url}/sample/book/")
    for book in books[1:]:
        page.get_by_label(f"Select {book.title}", exact=True).check()
    page.get_by_role("button", name="Delete in background").click()
    expect(refusal).to_be_visible()
    for book in books[1:]:
        page.get_by_label(
            f"Select {book.title}", exact=True
        ).uncheck()  # selection pauses refreshes
    run_queued()
    assert AsyncTaskRecord.objects.filter(status="success").count() == 1
    expect(page.locator("#book-table tr.locked")).to_have_count(0, timeout=10_000)
    expect(page.locator("#refusals .message")).to_have_count(0)
    # "Rebuild in background" says what it started.
    page.goto(f"{live_server.url}/sample/book/{books[2].pk}/")
    page.get_by_role("button", name="Rebuild in background").click()
    expect(page.locator(".message.success")).to_contain_text(
        f"Rebuilding “{books[2].title}” in background."
    )
