"""The sample project through its real views, URLs, manager and commands (seed 000 §6: the
``SampleAsyncDashboardTests`` of the sample recap)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, TransactionTestCase
from django_q.models import OrmQ

from powercrud_async.async_context import task_context
from powercrud_async.async_manager import AsyncManager
from powercrud_async.launch import AsyncMixin
from powercrud_async.models import LiveTask, TaskLock
from sample.async_manager import SampleAsyncManager
from sample.models import AsyncTaskRecord, Book, Chapter
from tests.sample.conftest import ROOT, run_queued

PASSWORD = "pw-for-tests"


def seed(username: str = "demo") -> User:
    call_command(
        "demo_setup",
        "--skip-migrate",
        "--username",
        username,
        "--password",
        PASSWORD,
        stdout=StringIO(),
    )
    return User.objects.get(username=username)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def books_with_chapters(count: int) -> list[Book]:
    return list(Book.objects.filter(chapters__isnull=False).distinct().order_by("pk")[:count])


class SampleAsyncDashboardTests(TransactionTestCase):
    """Launch through the sample's book views; the lifecycle lands in ``sample.AsyncTaskRecord``."""

    def setUp(self) -> None:
        self.user = seed()
        self.client = Client()
        self.client.force_login(self.user)

    def bulk(self, action: str, books: list[Book], **extra: Any) -> Any:
        data = {
            "action": action,
            "selected": [b.pk for b in books],
            "next": "/sample/book/",
            **extra,
        }
        return self.client.post("/sample/book/bulk/", data, follow=True)

    def test_default_manager_is_the_sample_manager(self) -> None:
        manager = AsyncManager.resolve_manager(None)
        self.assertIsInstance(manager, SampleAsyncManager)
        self.assertEqual(manager.format_user(None), "Anonymous")
        self.assertEqual(manager.format_user(self.user), "demo")
        self.assertEqual(manager.format_affected(["a", "b"]), "a, b")
        self.assertEqual(manager.format_affected(None), "")

    def test_bulk_update_runs_nested_saves_under_one_locked_task(self) -> None:
        books = books_with_chapters(3)
        chapter_ids = set(Chapter.objects.filter(book__in=books).values_list("pk", flat=True))
        prices = {b.pk: b.price for b in books}
        response = self.bulk("update", books, price_percent="10")
        task = LiveTask.objects.get()
        key = task.task_name
        self.assertEqual(response.redirect_chain, [(f"/sample/book/?watch={key}", 302)])
        [message] = messages_of(response)
        self.assertIn(f"Started task {key}: update in background for 3 books.", message)
        self.assertEqual(
            AsyncTaskRecord.objects.get(task_name=key).label, "Update in background for 3 books"
        )
        self.assertIn(f'href="/sample/async-dashboard/jobs/{key}/"', message)
        self.assertEqual(task.manager_class, "sample.async_manager.SampleAsyncManager")
        self.assertEqual(
            set(TaskLock.objects.filter(task_name=key).values_list("object_pk", flat=True)),
            {str(b.pk) for b in books},
        )
        record = AsyncTaskRecord.objects.get(task_name=key)
        self.assertEqual((record.status, record.user_label), ("pending", "demo"))
        self.assertEqual(record.affected_objects, ", ".join(sorted(b.title for b in books)))

        acquired: list[tuple[str, dict[str, Any]]] = []
        real = SampleAsyncManager.acquire_or_raise

        def spy(manager: Any, task_name: str, normalized: Any) -> None:
            acquired.append((task_name, {k: set(v) for k, v in normalized.items()}))
            real(manager, task_name, normalized)

        with mock.patch.object(SampleAsyncManager, "acquire_or_raise", spy):
            run_queued()
        # Each book's save() locked its chapters under the bulk task: no child jobs.
        self.assertEqual({name for name, _ in acquired}, {key})
        self.assertEqual(
            set().union(*(ids["sample.chapter"] for _, ids in acquired)),
            {str(c) for c in chapter_ids},
        )
        self.assertFalse(OrmQ.objects.exists())
        self.assertEqual(LiveTask.objects.count(), 1)
        record.refresh_from_db()
        self.assertEqual(record.status, "success")
        self.assertEqual(record.result_payload["updated"], 3)
        for book in Book.objects.filter(pk__in=prices):
            self.assertEqual(
                book.price, (prices[book.pk] * Decimal("1.1")).quantize(Decimal("0.01"))
            )
            self.assertEqual(book.revision, 1)
        self.assertFalse(Chapter.objects.filter(pk__in=chapter_ids, revision=0).exists())
        self.assertFalse(TaskLock.objects.exists())
        self.assertEqual(AsyncManager.resolve_manager(None).get_status(key), "success")

    def test_overlapping_bulk_action_is_refused_naming_the_holder(self) -> None:
        books = books_with_chapters(4)
        self.bulk("update", books[:2])
        first = LiveTask.objects.get().task_name
        response = self.bulk("delete", books[1:])
        [message] = messages_of(response)
        # Books by title (not "book 9"), the holder linked, how far it has got.
        self.assertEqual(
            f'Not started: “{books[1].title}” is locked by <a href="/sample/async-dashboard/jobs/{first}/">'
            f"task {first[:8]}…</a>, queued. Try again when that task has finished.",
            message,
        )
        self.assertEqual(LiveTask.objects.count(), 1)
        self.assertEqual(Book.objects.filter(pk__in=[b.pk for b in books]).count(), 4)
        # The refusal is shown escaped-safe in the page (a real link, not markup as text).
        self.assertContains(
            response, f'<a href="/sample/async-dashboard/jobs/{first}/">task {first[:8]}'
        )

    def test_book_list_marks_locked_rows_with_progress_and_a_link(self) -> None:
        books = books_with_chapters(2)
        self.bulk("update", books)
        key = LiveTask.objects.get().task_name
        AsyncManager.resolve_manager(None).update_progress(key, "working", current=7, total=20)
        response = self.client.get("/sample/book/")
        self.assertContains(response, f"locked by task {key[:8]}…, 35%", count=2)
        self.assertContains(response, f'href="/sample/async-dashboard/jobs/{key}/"')
        self.assertContains(response, 'hx-trigger="every 2s')  # refreshes while rows are locked
        partial = self.client.get("/sample/book/", HTTP_HX_REQUEST="true")
        self.assertTemplateUsed(partial, "sample/partials/book_table.html")
        self.assertNotContains(partial, "<html")
        run_queued()
        after = self.client.get("/sample/book/")
        self.assertNotContains(after, "locked by task")
        self.assertNotContains(after, 'hx-trigger="every 2s')

    def test_progress_endpoint_and_watch_panel(self) -> None:
        books = books_with_chapters(1)
        self.bulk("update", books)
        key = LiveTask.objects.get().task_name
        page = self.client.get(f"/sample/book/?watch={key}")
        self.assertContains(page, f"/sample/async/progress/?task_name={key}")
        polled = self.client.get(f"/sample/async/progress/?task_name={key}", HTTP_HX_REQUEST="true")
        self.assertEqual(polled.status_code, 200)
        self.assertContains(polled, "Queued")
        run_queued()
        done = self.client.get(f"/sample/async/progress/?task_name={key}", HTTP_HX_REQUEST="true")
        self.assertEqual(done.status_code, 286)  # htmx stops polling
        self.assertContains(done, "Succeeded", status_code=286)
        page = self.client.get(f"/sample/book/?watch={key}")
        self.assertNotContains(page, 'hx-trigger="every 1s"')

    def test_dashboard_shows_the_record(self) -> None:
        self.bulk("update", books_with_chapters(2))
        key = LiveTask.objects.get().task_name
        run_queued()
        listing = self.client.get("/sample/async-dashboard/jobs/")
        self.assertContains(listing, key[:8])
        detail = self.client.get(f"/sample/async-dashboard/jobs/{key}/")
        self.assertContains(detail, key)
        self.assertContains(detail, "bulk_update_books")

    def test_seed_000_dashboard_declaration(self) -> None:
        """``sample.views.AsyncTaskRecordCRUDView`` (seed 000 section 3) serves the same records."""
        from powercrud_async.mixins import AsyncMixin as ReExported
        from powercrud_async.mixins import PowerCRUDMixin
        from sample.views import AsyncTaskRecordCRUDView

        self.assertIs(ReExported, AsyncMixin)
        self.assertTrue(issubclass(AsyncTaskRecordCRUDView, PowerCRUDMixin))
        self.bulk("update", books_with_chapters(1))
        key = LiveTask.objects.get().task_name
        run_queued()
        self.assertContains(self.client.get("/sample/asynctaskrecord/"), key[:8])
        self.assertContains(self.client.get(f"/sample/asynctaskrecord/job/{key}/"), key)

    def test_bulk_delete_removes_books_and_chapters(self) -> None:
        books = books_with_chapters(2)
        self.bulk("delete", books)
        run_queued()
        self.assertFalse(Book.objects.filter(pk__in=[b.pk for b in books]).exists())
        self.assertFalse(Chapter.objects.filter(book_id__in=[b.pk for b in books]).exists())
        record = AsyncTaskRecord.objects.get()
        self.assertEqual((record.status, record.result_payload), ("success", {"deleted": 2}))

    def test_editing_a_book_launches_its_chapter_job_and_locked_books_refuse_edits(self) -> None:
        book = books_with_chapters(1)[0]
        data = {"title": book.title, "author": book.author_id, "year": 1900, "price": "3.00"}
        response = self.client.post(f"/sample/book/{book.pk}/edit/", data, follow=True)
        task = LiveTask.objects.get()
        self.assertEqual(task.func_path, "sample.jobs.refresh_book")
        self.assertEqual(task.label, f"Refresh the chapters of {Book.objects.get(pk=book.pk)}")
        self.assertIn(f"task {task.task_name}", messages_of(response)[0])
        response = self.client.post(
            f"/sample/book/{book.pk}/edit/", {**data, "year": 1901}, follow=True
        )
        # Refused on the form itself: the reason, and what was typed is kept.
        self.assertEqual(response.status_code, 200)
        self.assertIn(
            f"is locked by task {task.task_name}", str(response.context["form"].non_field_errors())
        )
        self.assertContains(response, 'value="1901"')
        self.assertEqual(Book.objects.get(pk=book.pk).year, 1900)
        response = self.client.post(f"/sample/book/{book.pk}/delete/", follow=True)
        self.assertTrue(Book.objects.filter(pk=book.pk).exists())
        run_queued()
        self.assertEqual(
            Book.objects.get(pk=book.pk).chapters.filter(revision=1).count(), book.chapters.count()
        )
        self.assertEqual(AsyncTaskRecord.objects.get().status, "success")

    def test_save_inside_a_job_does_chapter_work_now_without_new_jobs(self) -> None:
        book = books_with_chapters(1)[0]
        manager = AsyncManager.resolve_manager(None)
        with (
            mock.patch.object(SampleAsyncManager, "launch_async_task") as launch,
            mock.patch.object(SampleAsyncManager, "acquire_or_raise") as acquire,
            mock.patch.object(SampleAsyncManager, "update_progress") as progress,
        ):
            with task_context("outer-task", manager=manager):
                book.save()
        launch.assert_not_called()
        acquire.assert_called_once()
        self.assertEqual(acquire.call_args.args[0], "outer-task")
        chapters = book.chapters.count()
        self.assertEqual(progress.call_count, chapters)
        self.assertEqual(
            progress.call_args.args[:2],
            ("outer-task", f"{book.title}: chapter {chapters}/{chapters}"),
        )
        self.assertEqual(book.chapters.filter(revision=1).count(), chapters)
        self.assertFalse(OrmQ.objects.exists())


# --- access ----------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_pages_need_login_and_permissions() -> None:
    seed()
    client = Client()
    assert client.get("/").status_code == 200
    assert client.get("/sample/book/")["Location"].startswith("/accounts/login/")
    assert client.post("/sample/book/bulk/", {"action": "update"})["Location"].startswith(
        "/accounts/login/"
    )
    viewer = User.objects.create_user("viewer", password=PASSWORD)
    viewer.user_permissions.add(Permission.objects.get(codename="view_book"))
    client.force_login(viewer)
    assert client.get("/sample/book/").status_code == 200
    book = Book.objects.first()
    assert book is not None
    response = client.post("/sample/book/bulk/", {"action": "delete", "selected": [book.pk]})
    assert response.status_code == 403
    assert client.get(f"/sample/book/{book.pk}/edit/").status_code == 403
    assert client.get("/sample/book/bulk/").status_code == 405
    assert not LiveTask.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_non_staff_users_follow_their_task_on_the_sample_task_page() -> None:
    seed()
    editor = User.objects.create_user("editor", password=PASSWORD)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_book", "change_book"])
    )
    client = Client()
    client.force_login(editor)
    book = books_with_chapters(1)[0]
    response = client.post(
        "/sample/book/bulk/", {"action": "update", "selected": [book.pk]}, follow=True
    )
    key = LiveTask.objects.get().task_name
    assert f'href="/sample/tasks/{key}/"' in messages_of(response)[0]
    assert b"Task dashboard" not in response.content
    page = client.get(f"/sample/tasks/{key}/")
    assert page.status_code == 200 and b"Queued" in page.content
    other = User.objects.create_user("other", password=PASSWORD)
    other.user_permissions.add(Permission.objects.get(codename="view_book"))
    client.force_login(other)
    assert client.get(f"/sample/tasks/{key}/").status_code == 404
    assert client.get(f"/sample/book/?watch={key}").context["watch"] is None
    assert client.get(f"/sample/async/progress/?task_name={key}").status_code == 404
    client.force_login(User.objects.get(username="demo"))  # staff
    assert client.get(f"/sample/tasks/{key}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_login_and_logout_pages() -> None:
    seed()
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/", {"username": "demo", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert b"Log out demo" in home.content
    assert (
        client.post(
            "/accounts/logout/", {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}
        ).status_code
        == 302
    )
    assert b"Log in" in client.get("/").content


# --- the other launch sites (seed 002 §3) -------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_admin_actions_launch_and_refuse() -> None:
    seed()
    client = Client()
    client.force_login(User.objects.get(username="demo"))
    books = books_with_chapters(3)
    changelist = "/admin/sample/book/"
    response = client.post(
        changelist,
        {
            "action": "bulk_update_books_async",
            "index": 0,
            "_selected_action": [b.pk for b in books[:2]],
        },
        follow=True,
    )
    key = LiveTask.objects.get().task_name
    assert messages_of(response) == [
        f"Started task {key}: Update selected books in background for 2 books."
    ]
    assert (
        AsyncTaskRecord.objects.get(task_name=key).label
        == "Update selected books in background for 2 books"
    )
    response = client.post(
        changelist,
        {"action": "rebuild_books", "index": 0, "_selected_action": [b.pk for b in books[1:]]},
        follow=True,
    )
    [message] = messages_of(response)
    assert (
        message.startswith("Not started: Another task already processes these books: ")
        and key in message
    )
    assert LiveTask.objects.count() == 1
    response = client.post(
        changelist,
        {"action": "rebuild_books", "index": 0, "_selected_action": [books[2].pk]},
        follow=True,
    )
    assert LiveTask.objects.count() == 2
    rebuilt = LiveTask.objects.exclude(task_name=key).get()
    assert rebuilt.func_path == "sample.jobs.rebuild_books"
    run_queued()
    assert AsyncTaskRecord.objects.get(task_name=rebuilt.task_name).result_payload == {
        "books": [books[2].pk],
        "extra": {"extra": "info"},
    }


@pytest.mark.django_db(transaction=True)
def test_refresh_books_command_and_rebuild_view() -> None:
    seed()
    flagged = set(Book.objects.filter(needs_refresh=True).values_list("pk", flat=True))
    assert flagged
    out = StringIO()
    call_command("refresh_books", stdout=out)
    task = LiveTask.objects.get()
    assert f"Launched task {task.task_name} for {len(flagged)} books." in out.getvalue()
    assert task.user_id is None
    assert {int(pk) for pk in TaskLock.objects.values_list("object_pk", flat=True)} == flagged
    with pytest.raises(CommandError, match=task.task_name):
        call_command("refresh_books", stdout=StringIO())
    run_queued()
    assert not Book.objects.filter(needs_refresh=True).exists()
    assert AsyncTaskRecord.objects.get(task_name=task.task_name).user_label == "Anonymous"
    out = StringIO()
    call_command("refresh_books", stdout=out)
    assert "nothing was launched" in out.getvalue()

    client = Client()
    client.force_login(User.objects.get(username="demo"))
    book = Book.objects.first()
    assert book is not None
    assert client.get(f"/sample/book/{book.pk}/rebuild/").status_code == 405  # POST only
    response = client.post(f"/sample/book/{book.pk}/rebuild/", follow=True)
    rebuild = (
        LiveTask.objects.filter(func_path="sample.jobs.rebuild_books")
        .latest("created_at")
        .task_name
    )
    assert response.redirect_chain == [(f"/sample/book/?watch={rebuild}", 302)]
    assert messages_of(response) == [
        f"Rebuilding “{book.title}” in background. "
        f'<a href="/sample/async-dashboard/jobs/{rebuild}/">Follow the task</a>.'
    ]
    assert LiveTask.objects.filter(func_path="sample.jobs.rebuild_books").count() == 2
    assert AsyncTaskRecord.objects.get(task_name=rebuild).label == "Rebuild 1 book"
    response = client.post(f"/sample/book/{book.pk}/rebuild/", follow=True)
    assert messages_of(response)[0].startswith(
        "Not started: Another task already processes these books"
    )


# --- commands ----------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_demo_setup_is_idempotent() -> None:
    out = StringIO()
    call_command("demo_setup", "--skip-migrate", stdout=out)
    assert "username: demo" in out.getvalue() and "password: demo-password" in out.getvalue()
    counts = (Book.objects.count(), Chapter.objects.count(), User.objects.count())
    assert counts[0] >= 20 and counts[1] > counts[0]
    out = StringIO()
    call_command("demo_setup", "--skip-migrate", stdout=out)
    assert (Book.objects.count(), Chapter.objects.count(), User.objects.count()) == counts
    assert "(0 books and 0 chapters added now)" in out.getvalue()
    assert Client().login(username="demo", password="demo-password")
    assert not LiveTask.objects.exists()  # seeding launches nothing
    from django_q.models import Schedule

    cleanup, audit = Schedule.objects.order_by("pk")
    assert (cleanup.func, cleanup.minutes) == (
        "powercrud_async.schedules.cleanup_async_artifacts",
        1,
    )
    assert (audit.func, audit.minutes) == ("powercrud_async.schedules.run_scheduled", 30)


@pytest.mark.django_db(transaction=True)
def test_demo_jobs_launches_the_scripted_mix() -> None:
    seed()
    out = StringIO()
    call_command("demo_jobs", "--long-steps", "2", "--pause", "0.01", stdout=out)
    text = out.getvalue()
    assert "conflict (refused)   Not started: book" in text
    assert "ConflictError.holders=" in text
    statuses = dict(LiveTask.objects.values_list("func_path", "status").filter(status="cancelled"))
    assert statuses == {"sample.jobs.reindex_library": "cancelled"}
    run_queued()
    by_func: dict[str, set[str]] = {}
    for func, status in LiveTask.objects.values_list("func_path", "status"):
        by_func.setdefault(func, set()).add(status)
    assert by_func == {
        "sample.jobs.count_words": {"success"},
        "sample.jobs.import_catalogue": {"failed"},
        "sample.jobs.reindex_library": {"success", "cancelled"},
        "sample.jobs.bulk_update_books": {"success"},
        "sample.jobs.audit_prices": {"success"},
    }
    assert AsyncTaskRecord.objects.count() == LiveTask.objects.count() == 7
    failed = AsyncTaskRecord.objects.get(func_path="sample.jobs.import_catalogue")
    assert "HTTP 503" in failed.message or "HTTP 503" in json.dumps(failed.result_payload)


@pytest.mark.django_db(transaction=True)
def test_demo_jobs_runs_without_the_optional_redis_package() -> None:
    """A fresh ``pip install -e .`` has no ``redis``: cancelling must not need it."""
    seed()
    blocked = {"redis": None, "django_q.brokers.redis_broker": None}
    with mock.patch.dict(sys.modules, blocked):
        with pytest.raises(ImportError):
            import django_q.brokers.redis_broker  # noqa: F401
        out = StringIO()
        call_command("demo_jobs", "--long-steps", "2", "--pause", "0.01", stdout=out)
    assert "(cancelled)" in out.getvalue()


# --- settings: the production tier from environment variables ---------------------------------------
def settings_with(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, sample.settings as s; print(json.dumps({'db': s.DATABASES['default'], "
        "'cache': s.CACHES['default'], 'pcrud': s.POWERCRUD_SETTINGS, 'q': s.Q_CLUSTER}, default=str))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_embedded_default_settings() -> None:
    s = settings_with({})
    assert s["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert (
        s["db"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        and s["db"]["OPTIONS"]["timeout"] >= 20
    )
    assert "journal_mode=WAL" in s["db"]["OPTIONS"]["init_command"]
    assert (
        s["cache"]["BACKEND"].endswith("DatabaseCache")
        and s["cache"]["OPTIONS"]["MAX_ENTRIES"] >= 10_000
    )
    assert s["q"]["orm"] == "default" and s["q"]["timeout"] < s["q"]["retry"]
    assert s["pcrud"].get("LOCK_STORE", "database") == "database"
    assert s["pcrud"]["ASYNC_MANAGER_DEFAULT"] == {
        "manager_class": "sample.async_manager.SampleAsyncManager"
    }


def test_production_tier_from_urls() -> None:
    s = settings_with(
        {
            "DATABASE_URL": "postgres://app:p%40ss@db.internal:6543/library?sslmode=require",
            "REDIS_URL": "redis://cache.internal:6380/2",
        }
    )
    assert s["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert (
        s["db"]["NAME"],
        s["db"]["USER"],
        s["db"]["PASSWORD"],
        s["db"]["HOST"],
        s["db"]["PORT"],
    ) == ("library", "app", "p@ss", "db.internal", "6543")
    assert s["db"]["OPTIONS"] == {"sslmode": "require"}
    assert s["cache"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6380/2",
    }
    assert (
        s["pcrud"]["LOCK_STORE"] == "redis"
        and s["pcrud"]["REDIS_URL"] == "redis://cache.internal:6380/2"
    )
    assert s["q"]["redis"] == "redis://cache.internal:6380/2" and "orm" not in s["q"]


def test_bad_urls_are_clear_errors() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from sample.env import check_redis_url, database_from_url

    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must start with"):
        database_from_url("mysql://x/y")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        database_from_url("postgres://host:5432/")
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL must start with"):
        check_redis_url("http://cache")


@pytest.mark.django_db(transaction=True)
def test_restarting_the_sample_keeps_the_demo_password_and_the_session() -> None:
    call_command("demo_setup", "--skip-migrate", stdout=StringIO())
    client = Client()
    assert client.login(username="demo", password="demo-password")
    assert client.get("/sample/book/").status_code == 200
    out = StringIO()
    call_command("demo_setup", "--skip-migrate", "--password", "another", stdout=out)  # a restart
    assert "password unchanged" in out.getvalue()
    assert client.get("/sample/book/").status_code == 200  # still logged in
    assert Client().login(username="demo", password="demo-password")
    call_command(
        "demo_setup",
        "--skip-migrate",
        "--reset-password",
        "--password",
        "another",
        stdout=StringIO(),
    )
    assert Client().login(username="demo", password="another")


@pytest.mark.django_db(transaction=True)
def test_home_page_prints_the_command_that_works() -> None:
    client = Client()
    client.force_login(seed())
    html = client.get("/").content.decode()
    prefix = (
        os.path.relpath(sys.executable, ROOT)
        if Path(sys.executable).is_relative_to(ROOT)
        else sys.executable
    )
    assert f'<code id="demo-jobs-command">{prefix} manage.py demo_jobs</code>' in html
    # ... and it runs: this interpreter has Django, from the project folder.
    done = subprocess.run(
        [*prefix.split(), "manage.py", "help", "demo_jobs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "sample.settings"},
    )
    assert done.returncode == 0, done.stderr
