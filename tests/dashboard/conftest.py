from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.testapp.models import AsyncTaskRecord

DASHBOARD_MANAGER = "tests.dashboard.managers.DashboardManager"


@pytest.fixture(autouse=True)
def tracked(settings: Any) -> None:
    """The project default manager tracks ``testapp.AsyncTaskRecord`` (seed 000 section 1)."""
    settings.POWERCRUD_SETTINGS = {
        **settings.POWERCRUD_SETTINGS,
        "ASYNC_MANAGER_DEFAULT": {"manager_class": DASHBOARD_MANAGER},
    }


@pytest.fixture
def staff(db: Any) -> Any:
    return get_user_model().objects.create_user("ops", "ops@example.com", "pw", is_staff=True)


@pytest.fixture
def staff_client(staff: Any) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def make_record(db: Any) -> Callable[..., AsyncTaskRecord]:
    counter = {"n": 0}

    def make(**fields: Any) -> AsyncTaskRecord:
        counter["n"] += 1
        now = timezone.now()
        values: dict[str, Any] = {
            "task_name": f"task-{counter['n']:04d}",
            "status": "success",
            "func_path": "tests.testapp.tasks.add",
            "user_label": "alice",
            "message": "Completed",
            "created_at": now - timedelta(minutes=counter["n"]),
        }
        values.update(fields)
        return AsyncTaskRecord.objects.create(**values)

    return make


BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = (
    __import__("pathlib").Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)


@pytest.fixture(scope="module")
def chromium() -> Any:
    """One headless Chromium per module (Debian's, driven by Playwright).

    Playwright's sync API keeps an event loop running in this thread while it is open, so the
    tests' own synchronous ORM calls need ``DJANGO_ALLOW_ASYNC_UNSAFE`` for that long.
    """
    import os
    import shutil

    from tests.services import missing

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright")
    executable = shutil.which("chromium")
    if executable is None:
        missing("chromium")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=BROWSER_ARGS, timeout=30_000
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browse(chromium: Any, live_server: Any, staff: Any) -> Callable[..., Any]:
    """A logged-in page at a viewport size: ``page = browse(1400, 1000)``."""
    from django.conf import settings as dj_settings

    contexts: list[Any] = []
    client = Client()
    client.force_login(staff)
    session = client.cookies[dj_settings.SESSION_COOKIE_NAME].value

    def open_page(width: int = 1400, height: int = 1000, *, javascript: bool = True) -> Any:
        context = chromium.new_context(
            viewport={"width": width, "height": height},
            base_url=live_server.url,
            java_script_enabled=javascript,
        )
        context.add_cookies(
            [{"name": dj_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: pytest.fail(f"unexpected window dialog: {dialog.message}"))
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def dashboard_settings(settings: Any) -> Callable[..., None]:
    """``dashboard_settings(OWN_TASKS_ONLY=True)`` merges into ``POWERCRUD_SETTINGS["DASHBOARD"]``."""

    def apply(**options: Any) -> None:
        current = dict(settings.POWERCRUD_SETTINGS)
        current["DASHBOARD"] = {**current.get("DASHBOARD", {}), **options}
        settings.POWERCRUD_SETTINGS = current

    return apply


@pytest.fixture
def launch(tracked: None, django_capture_on_commit_callbacks: Any) -> Callable[..., str]:
    """Launch through the tracking manager and run the on-commit enqueue now (no cluster)."""
    from tests.dashboard.managers import DashboardManager

    def run(func: str, *args: Any, **kwargs: Any) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            return DashboardManager().launch_async_task(func, *args, **kwargs)

    return run


def user(username: str, **flags: Any) -> Any:
    return get_user_model().objects.create_user(username, f"{username}@example.com", "pw", **flags)


def client_for(account: Any, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(account)
    return client
