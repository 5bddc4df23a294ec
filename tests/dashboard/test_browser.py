"""The dashboard in a real Chromium (Playwright) against ``live_server``, with a real qcluster
for the live-update tests. Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from typing import Any

import pytest

from tests.cluster import wait_until
from tests.dashboard import demo
from tests.dashboard.conftest import SCREENSHOTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.urls("tests.dashboard.urls"),
    pytest.mark.django_db(transaction=True),
]


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.parametrize("width,height", [(1400, 1000), (480, 900), (1280, 900)])
def test_screenshots(browse: Any, tracked: None, width: int, height: int) -> None:
    keys = demo.build()
    page = browse(width, height)
    pages = [
        ("overview", "/tasks/"),
        ("list", "/tasks/jobs/"),
        ("detail", f"/tasks/jobs/{keys['running']}/"),
        ("detail-failed", f"/tasks/jobs/{keys['failed']}/"),
        ("locks", "/tasks/locks/"),
        ("audit", "/tasks/audit/"),
    ]
    if width == 1280:
        pages = pages[1:2]
    for name, url in pages:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        shoot(page, f"{name}-{width}x{height}")


# -- live behaviour against a real qcluster -------------------------------------------------------
@pytest.fixture
def fast_dashboard(settings: Any, tracked: None) -> None:
    """Refresh every second so the tests stay short."""
    settings.POWERCRUD_SETTINGS = {
        **settings.POWERCRUD_SETTINGS,
        "DASHBOARD": {"REFRESH_INTERVAL": 1},
    }


@pytest.fixture
def cluster(qcluster: Any) -> Any:
    """The ``qcluster`` fixture, stopped by SIGTERM to its leader only: django-q2 then stops its
    workers itself in about two seconds (a signal to the whole group makes it hang)."""
    started: list[Any] = []

    def start(**env: str) -> Any:
        found = qcluster(**env)
        started.append(found)
        return found

    yield start
    for found in started:
        if found.proc.poll() is None:
            os.kill(found.proc.pid, signal.SIGTERM)
            try:
                found.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass  # the qcluster fixture kills the group


def launch(func: str, *args: Any, **kwargs: Any) -> str:
    from tests.dashboard.managers import DashboardManager

    return DashboardManager().launch_async_task(func, *args, **kwargs)


def test_new_job_appears_live_and_filters_survive(
    browse: Any, fast_dashboard: None, cluster: Any
) -> None:
    from playwright.sync_api import expect

    cluster()
    page = browse()
    page.goto("/tasks/jobs/")
    page.fill("#pca-q", "slow")
    expect(page).to_have_url(re.compile(r"/tasks/jobs/\?q=slow$"))
    page.evaluate("window.__no_reload = true")
    other = launch("tests.testapp.tasks.add", 1, 2)
    key = launch("tests.testapp.tasks.slow", 1.0, steps=4)
    row = page.locator("#pca-results tr", has_text=key[:8])
    expect(row).to_be_visible(timeout=20_000)
    assert page.evaluate("window.__no_reload") is True  # no reload happened
    expect(page.locator("#pca-q")).to_have_value("slow")
    expect(page).to_have_url(re.compile(r"\?q=slow$"))
    expect(page.locator("#pca-results", has_text=other[:8])).to_have_count(0)
    expect(row.locator(".pca-badge")).to_have_text(re.compile("Succeeded"), timeout=30_000)
    # Selecting a row pauses polling, and says so.
    row.locator("input[type=checkbox]").check()
    expect(page.locator("[data-pca-live-text]")).to_have_text(
        re.compile("Paused while 1 job is selected")
    )
    shoot(page, "list-live-1400x1000")


#: Counts, in the page, the progress endpoint's requests and its 286 ("stop polling") answers.
COUNT_PROGRESS = """
window.pcaProgress = {requests: 0, stopped: 0};
document.addEventListener("htmx:beforeRequest", function (e) {
  if (e.detail.pathInfo.requestPath.indexOf("/progress/") >= 0) window.pcaProgress.requests += 1;
});
document.addEventListener("htmx:afterRequest", function (e) {
  if (e.detail.pathInfo.requestPath.indexOf("/progress/") >= 0 && e.detail.xhr.status === 286) {
    window.pcaProgress.stopped += 1;
  }
});
"""


def test_detail_progress_advances_and_stops(
    browse: Any, fast_dashboard: None, cluster: Any, tmp_path: Any
) -> None:
    """The job advances only when the test opens its next gate, the test waits for the page to
    show each value, and the browser's clock is driven by hand to prove polling stopped, so no
    step depends on how fast the machine is."""
    from playwright.sync_api import expect

    key = launch("tests.testapp.tasks.gated_steps", str(tmp_path), 3)
    page = browse()
    page.clock.install()  # time still flows; run_for() below fires the timers of the next seconds at once
    page.add_init_script(COUNT_PROGRESS)
    page.goto(f"/tasks/jobs/{key}/")
    bar = page.locator("#pca-progress progress")
    badge = page.locator("#pca-progress .pca-badge")
    expect(badge).to_have_text(re.compile("Queued"))
    cluster()
    for step, percent in ((1, "33"), (2, "67")):
        (tmp_path / f"step-{step}").touch()
        expect(bar).to_have_attribute("value", percent, timeout=30_000)
        expect(badge).to_have_text(re.compile("Running"))
    (tmp_path / "step-3").touch()
    expect(badge).to_have_text(re.compile("Succeeded"), timeout=30_000)
    expect(bar).to_have_attribute("value", "100")
    # The endpoint answered 286: polling stops, and the rest of the page caught up.
    page.wait_for_function("window.pcaProgress.stopped > 0", timeout=30_000)
    expect(page.locator("#pca-detail-body .pca-timeline")).to_contain_text(
        "Complete", timeout=10_000
    )
    stopped_at = page.evaluate("window.pcaProgress.requests")
    page.clock.run_for(10_000)  # ten polling intervals' worth of timers, fired now
    assert page.evaluate("window.pcaProgress.requests") == stopped_at, (
        "progress polling must stop at the end"
    )
    expect(page.locator("#pca-detail-body")).to_contain_text("stepped")
    expect(page.locator("[data-pca-live]")).to_be_hidden()  # nothing live left to report
    shoot(page, "detail-finished-1400x1000")


def test_cancel_and_retry_from_the_ui(browse: Any, fast_dashboard: None, cluster: Any) -> None:
    from playwright.sync_api import expect

    from powercrud_async.models import LiveTask

    key = launch("tests.testapp.tasks.slow", 6.0, steps=60)
    cluster()
    wait_until(lambda: LiveTask.objects.get(task_name=key).status == "in_progress", timeout=30)
    page = browse()
    page.goto(f"/tasks/jobs/{key}/")
    page.get_by_role("button", name="Cancel job").click()
    confirm = page.locator("#pca-flash [data-pca-confirm]")
    expect(confirm).to_contain_text("Cancel 1 job?")
    expect(confirm).to_contain_text(key)
    confirm.get_by_role("button", name=re.compile("Yes, cancel 1 job")).click()
    expect(page.locator("#pca-flash .pca-report")).to_contain_text(
        re.compile("asked 1 running job to stop|cancelled 1 job", re.I)
    )
    expect(page.locator("#pca-progress .pca-badge")).to_have_text(
        re.compile("Cancelled"), timeout=20_000
    )
    retry = page.locator("#pca-detail-body").get_by_role("button", name="Retry")
    expect(retry).to_be_visible(timeout=10_000)
    retry.click()
    report = page.locator("#pca-flash .pca-report")
    expect(report).to_contain_text("Retried 1 job")
    report.get_by_role("link").last.click()
    expect(page.locator("#pca-detail-body")).to_contain_text("Retry of")
    new_key = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert new_key != key
    expect(page.locator(f"#pca-detail-body a[href$='/jobs/{key}/']")).to_be_visible()
    from powercrud_async.async_manager import AsyncManager

    AsyncManager.resolve_manager().cancel_task(new_key)  # don't leave a 6 s job running


def test_bulk_cancel(browse: Any, fast_dashboard: None) -> None:
    from playwright.sync_api import expect

    keys = [launch("tests.testapp.tasks.slow", 5.0) for _ in range(3)]
    done = launch("tests.testapp.tasks.add", 1, 1)
    from powercrud_async.async_manager import AsyncManager

    AsyncManager.resolve_manager().cancel_task(done)  # one that has already finished
    page = browse()
    page.goto("/tasks/jobs/?q=tests.testapp.tasks")
    for key in [*keys, done]:
        page.locator("#pca-results tr", has_text=key[:8]).locator("input[type=checkbox]").check()
    expect(page.locator("[data-pca-selected]")).to_have_text("4 selected")
    page.locator("#pca-bulk").get_by_role("button", name="Cancel").click()
    confirm = page.locator("#pca-flash [data-pca-confirm]")
    expect(confirm).to_contain_text("Cancel 4 jobs?")
    confirm.get_by_role("button", name=re.compile("Yes, cancel 4 jobs")).click()
    expect(page.locator("#pca-flash .pca-report")).to_contain_text(
        "Cancelled 3 jobs, 1 had already finished"
    )
    for key in keys:
        expect(
            page.locator("#pca-results tr", has_text=key[:8]).locator(".pca-badge")
        ).to_have_text(re.compile("Cancelled"))
    # the filter survived the action and the refresh
    expect(page).to_have_url(re.compile(r"\?q=tests.testapp.tasks$"))
    expect(page.locator("#pca-q")).to_have_value("tests.testapp.tasks")
    expect(page.locator("[data-pca-selected]")).to_have_text("0 selected")
    shoot(page, "list-bulk-1400x1000")


# -- without a cluster: JavaScript off, keyboard, names, the modal ---------------------------------
def test_readable_and_usable_without_javascript(browse: Any) -> None:
    from playwright.sync_api import expect

    keys = demo.build()
    page = browse(javascript=False)
    page.goto("/tasks/jobs/")
    # (Playwright's switch leaves the parser's scripting flag on, so <noscript> stays unrendered
    # here; the view tests check it is served.) The live indicator needs JavaScript to show.
    expect(page.locator("[data-pca-live]")).to_be_hidden()
    expect(page.locator("#pca-results tbody tr")).to_have_count(25)
    page.fill("#pca-q", "quarterly")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"\?q=quarterly$"))
    page.locator(".pca-chips").get_by_role("link", name=re.compile("^Failed")).click()
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))
    expect(page.locator("#pca-results tbody tr")).to_have_count(1)
    page.goto(f"/tasks/jobs/{keys['success']}/")
    expect(page.locator("#pca-detail-body")).to_contain_text("Timeline")
    page.get_by_role("button", name="Delete record").click()
    expect(page.get_by_role("heading", name="Delete 1 job record?")).to_be_visible()
    page.get_by_role("button", name="Yes, delete 1 record").click()
    expect(page).to_have_url(re.compile(r"/tasks/jobs/$"))
    expect(page.locator(".pca-messages")).to_contain_text("Deleted 1 job record.")


def test_keyboard_only_bulk_action(browse: Any) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse()
    page.goto("/tasks/jobs/?status=succeeded&per_page=10")

    def tab_to(selector: str, key: str = "Tab", limit: int = 80) -> None:
        for _ in range(limit):
            if page.evaluate(
                "(s) => document.activeElement && document.activeElement.matches(s)", selector
            ):
                return
            page.keyboard.press(key)
        raise AssertionError(f"could not reach {selector} with {key}")

    tab_to('#pca-results tbody input[name="tasks"]')
    page.keyboard.press("Space")
    expect(page.locator("[data-pca-selected]")).to_have_text("1 selected")
    tab_to('#pca-bulk button[value="delete"]', key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#pca-flash [data-pca-confirm]")).to_contain_text("Delete 1 job record?")
    expect(
        page.locator("#pca-flash button[type=submit]")
    ).to_be_focused()  # autofocus after the swap
    page.keyboard.press("Enter")
    expect(page.locator("#pca-flash .pca-report")).to_contain_text("Deleted 1 job record.")


def test_every_control_has_a_name(browse: Any) -> None:
    keys = demo.build()
    page = browse()
    unnamed_script = """() => [...document.querySelectorAll(
        'a[href], button, input:not([type=hidden]), select, textarea, summary')]
      .filter(el => {
        const label = el.getAttribute('aria-label') || (el.labels ? [...el.labels].map(l => l.textContent).join(' ') : '')
          || el.textContent || el.getAttribute('title') || el.getAttribute('placeholder') || '';
        return !label.trim();
      }).map(el => el.outerHTML.slice(0, 120))"""
    for url in (
        "/tasks/",
        "/tasks/jobs/",
        f"/tasks/jobs/{keys['failed']}/",
        "/tasks/locks/",
        "/tasks/audit/",
    ):
        page.goto(url)
        assert page.evaluate(unnamed_script) == [], url


def test_detail_opens_in_a_modal_for_the_seed_view(browse: Any) -> None:
    from playwright.sync_api import expect

    keys = demo.build()
    page = browse()
    page.goto("/sample/asynctaskrecord/")
    page.locator("#pca-results tr", has_text=keys["failed"][:8]).get_by_role("link").first.click()
    dialog = page.locator("dialog#pca-modal")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Open full page")
    expect(dialog.locator(".pca-error-summary")).to_contain_text("KeyError")
    shoot(page, "seed-modal-1400x1000")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/sample/asynctaskrecord/$"))
