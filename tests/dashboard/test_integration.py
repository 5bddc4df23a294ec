"""Mounting (namespaces, seed 000's subclass), configuration, record models, query counts, admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from powercrud_async.models import LiveTask, TaskLock
from tests.testapp.models import AsyncTaskRecord, CustomRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]


# -- mounting and namespaces ---------------------------------------------------------------------
def test_reverse_under_the_app_and_an_instance_namespace() -> None:
    assert reverse("powercrud_async_dashboard:tasks-overview") == "/tasks/"
    assert reverse("powercrud_async_dashboard:tasks-list") == "/tasks/jobs/"
    assert (
        reverse("powercrud_async_dashboard:tasks-detail", kwargs={"task_key": "k"})
        == "/tasks/jobs/k/"
    )
    assert reverse("ops:tasks-list") == "/ops/jobs/"
    assert reverse("async:asynctaskrecord-list") == "/sample/asynctaskrecord/"


def test_links_stay_in_the_namespace_the_request_came_through(
    staff_client: Any, make_record: Any
) -> None:
    make_record(task_name="k1")
    html = staff_client.get("/ops/jobs/").content.decode()
    assert (
        'href="/ops/jobs/k1/"' in html
        and 'action="/ops/actions/"' in html
        and 'href="/ops/"' in html
    )
    assert "/tasks/" not in html


def test_seed_000_subclass_runs_as_written(staff_client: Any, make_record: Any) -> None:
    """``class AsyncTaskRecordView(PowerCRUDMixin, CRUDView)`` with the seed's attributes."""
    from tests.dashboard.views import AsyncTaskRecordView

    assert AsyncTaskRecordView.url_base == "asynctaskrecord"
    make_record(
        task_name="k1",
        status="failed",
        message="Failed: ValueError: x",
        result_payload="ValueError: x",
    )
    response = staff_client.get("/sample/asynctaskrecord/")
    assert response.status_code == 200
    assert [c.key for c in response.context["columns"]] == ["task", "status", "user", "updated"]
    html = response.content.decode()
    # use_modal: the row link opens the detail in a dialog (and is a plain link without JS)
    assert (
        'href="/sample/asynctaskrecord/job/k1/" hx-get="/sample/asynctaskrecord/job/k1/" '
        'hx-target="#pca-modal-body"'
    ) in html
    assert '<dialog id="pca-modal"' in html
    modal = staff_client.get(
        "/sample/asynctaskrecord/job/k1/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-modal-body"
    )
    labels = [label for label, _, _ in modal.context["fields_rows"]]
    assert labels == [
        "Task name",
        "Status",
        "Message",
        "Progress payload",
        "Completed at",
        "Failed at",
    ]
    assert "<html" not in modal.content.decode()
    # every page of the subclass reverses inside its namespace
    for page in ("overview", "locks", "audit"):
        assert staff_client.get(reverse(f"async:asynctaskrecord-{page}")).status_code == 200
    assert 'href="/sample/asynctaskrecord/overview/"' in html


def test_mixins_module_is_a_facade() -> None:
    from powercrud_async import mixins
    from powercrud_async.dashboard.views import TaskDashboardMixin

    assert mixins.PowerCRUDMixin is TaskDashboardMixin
    assert {"PowerCRUDMixin", "TaskDashboardMixin"} <= set(mixins.__all__)


def test_seed_view_without_htmx(staff_client: Any, make_record: Any, settings: Any) -> None:
    from neapolitan.views import CRUDView

    from powercrud_async.mixins import PowerCRUDMixin

    class PlainView(PowerCRUDMixin, CRUDView):
        model = AsyncTaskRecord
        namespace = "async"  # reversing without a resolved request uses it
        use_htmx = False

    make_record(task_name="k1")
    request_factory = __import__("django.test", fromlist=["RequestFactory"]).RequestFactory()
    request = request_factory.get("/sample/asynctaskrecord/")
    from django.contrib.auth import get_user_model

    request.user = get_user_model().objects.get(username="ops")
    view = PlainView.page_view("list")
    response = view(request)
    response.render()
    html = response.content.decode()
    assert "hx-get" not in html and "htmx-2.min.js" not in html and "k1" in html


# -- record models ----------------------------------------------------------------------------------
def test_the_packaged_dashboard_needs_a_record_model(staff_client: Any, settings: Any) -> None:
    settings.POWERCRUD_SETTINGS = {
        k: v for k, v in settings.POWERCRUD_SETTINGS.items() if k != "ASYNC_MANAGER_DEFAULT"
    }
    with pytest.raises(ImproperlyConfigured, match="no record model"):
        staff_client.get("/tasks/jobs/")


def test_record_model_from_settings(
    staff_client: Any, dashboard_settings: Any, settings: Any, make_record: Any
) -> None:
    settings.POWERCRUD_SETTINGS = {
        k: v for k, v in settings.POWERCRUD_SETTINGS.items() if k != "ASYNC_MANAGER_DEFAULT"
    }
    dashboard_settings(RECORD_MODEL="testapp.AsyncTaskRecord")
    make_record(task_name="k1")
    assert "k1" in staff_client.get("/tasks/jobs/").content.decode()
    dashboard_settings(RECORD_MODEL="testapp.Nope")
    with pytest.raises(ImproperlyConfigured, match="not an installed model"):
        staff_client.get("/tasks/jobs/")


def test_a_bespoke_record_model_through_the_field_map(staff_client: Any, settings: Any) -> None:
    settings.POWERCRUD_SETTINGS = {
        **settings.POWERCRUD_SETTINGS,
        "ASYNC_MANAGER_DEFAULT": {"manager_class": "tests.testapp.managers.CustomFieldsManager"},
    }
    CustomRecord.objects.create(key="c1", state="failed", note="Failed: KeyError: 'k'", who="zoe")
    CustomRecord.objects.create(key="c2", state="success", note="done", who="yan")
    response = staff_client.get("/tasks/jobs/?status=failed")
    assert [c.key for c in response.context["columns"]] == ["task", "status", "progress", "user"]
    html = response.content.decode()
    # the rows listed, not the page text (a random CSRF token may contain "c2")
    assert [row.key for row in response.context["page_obj"]] == ["c1"]
    assert "zoe" in html and "KeyError" in html
    assert staff_client.get("/tasks/jobs/c1/").status_code == 200
    assert staff_client.get("/tasks/").status_code == 200
    assert staff_client.get("/tasks/jobs/?sort=user&q=yan").status_code == 200


# -- configuration ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"REFRESH_INTERVALL": 3},
            "unknown key 'REFRESH_INTERVALL'. Did you mean 'REFRESH_INTERVAL'?",
        ),
        ({"PAGE_SIZE": 0}, "expected a positive integer"),
        ({"PAGE_SIZES": [10, "x"]}, "expected a list of positive integers"),
        ({"OWN_TASKS_ONLY": "yes"}, "expected bool"),
        ({"COLUMNS": []}, "non-empty list of column names"),
        ({"REFRESH_INTERVAL": True}, "expected int or float"),
    ],
)
def test_bad_dashboard_settings_are_named(
    dashboard_settings: Any, options: dict[str, Any], message: str
) -> None:
    from powercrud_async.dashboard.config import dashboard_config

    dashboard_settings(**options)
    with pytest.raises(ImproperlyConfigured, match=message.replace("?", r"\?").replace("[", r"\[")):
        dashboard_config()


def test_defaults() -> None:
    from powercrud_async.dashboard.config import dashboard_config

    config = dashboard_config()
    assert config["VIEW_ACCESS"] == config["ACTION_ACCESS"] == "staff"
    assert (
        config["REFRESH_INTERVAL"] == 5
        and config["PAGE_SIZE"] == 25
        and not config["OWN_TASKS_ONLY"]
    )


# -- query counts -----------------------------------------------------------------------------------
def fill(n: int, offset: int = 0) -> None:
    now = timezone.now()
    statuses = ["success", "failed", "in_progress", "pending", "cancelled"]
    AsyncTaskRecord.objects.bulk_create(
        [
            AsyncTaskRecord(
                task_name=f"q-{offset + i}",
                status=statuses[i % 5],
                user_label=f"user{i % 3}",
                message="m",
                percent=float(i % 100),
                created_at=now - timedelta(minutes=i),
                completed_at=now - timedelta(minutes=i) if i % 5 == 0 else None,
                failed_at=now - timedelta(minutes=i) if i % 5 == 1 else None,
            )
            for i in range(n)
        ]
    )
    LiveTask.objects.bulk_create(
        [
            LiveTask(
                task_name=f"q-{offset + i}",
                status="in_progress",
                created_at=now,
                started_at=now,
                heartbeat_at=now - timedelta(minutes=10 if (i // 5) % 2 == 0 else 0),
            )
            for i in range(n)
            if i % 5 == 2
        ]
    )
    TaskLock.objects.bulk_create(
        [
            TaskLock(
                model_label="testapp.project",
                object_pk=str(offset + i),
                task_name=f"q-{offset + i}",
                expires_at=now + timedelta(hours=1),
            )
            for i in range(n)
            if i % 5 == 2
        ]
    )


def count_queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/tasks/jobs/",
        "/tasks/jobs/?q=user&sort=-progress",
        "/tasks/jobs/?status=attention",
        "/tasks/",
        "/sample/asynctaskrecord/",
    ],
)
def test_query_count_does_not_grow_with_rows(staff_client: Any, url: str) -> None:
    fill(5)
    few = count_queries(staff_client, url)
    fill(120, offset=1000)
    many = count_queries(staff_client, url)
    assert few == many, f"{url}: {few} queries with 5 rows, {many} with 125"


def test_query_count_does_not_grow_with_page_size(staff_client: Any) -> None:
    fill(120)
    small = count_queries(staff_client, "/tasks/jobs/?per_page=10")
    large = count_queries(staff_client, "/tasks/jobs/?per_page=100")
    assert small == large
    assert small <= 8, f"{small} queries for a list page"


# -- admin ------------------------------------------------------------------------------------------
@pytest.fixture
def record_admin() -> Any:
    """Register the record model (as the admin's autodiscovery would with these settings) and
    rebuild the admin URLs; undone afterwards."""
    import importlib
    import sys

    from django.contrib import admin
    from django.urls import clear_url_caches

    from powercrud_async.admin import register_record_admin

    registered = register_record_admin()
    importlib.reload(
        sys.modules.get("tests.dashboard.urls") or importlib.import_module("tests.dashboard.urls")
    )
    clear_url_caches()
    yield admin.site._registry.get(AsyncTaskRecord)
    if registered:
        admin.site.unregister(AsyncTaskRecord)
    importlib.reload(sys.modules["tests.dashboard.urls"])
    clear_url_caches()


def test_record_model_in_the_admin_read_only(record_admin: Any, make_record: Any) -> None:
    from powercrud_async.admin import AsyncTaskRecordAdmin, register_record_admin
    from tests.dashboard.conftest import client_for, user

    assert isinstance(record_admin, AsyncTaskRecordAdmin)
    assert register_record_admin() is False  # never twice
    client = client_for(user("root", is_staff=True, is_superuser=True))
    record = make_record(task_name="adm-1", status="failed", message="<script>x</script>")
    changelist = client.get("/admin/testapp/asynctaskrecord/?status__exact=failed&q=adm")
    html = changelist.content.decode()
    assert changelist.status_code == 200 and "adm-1" in html
    assert 'href="/tasks/jobs/adm-1/"' in html  # straight to the dashboard
    assert client.get(f"/admin/testapp/asynctaskrecord/{record.pk}/change/").status_code == 200
    assert (
        "&lt;script&gt;x&lt;/script&gt;"
        in client.get(f"/admin/testapp/asynctaskrecord/{record.pk}/change/").content.decode()
    )
    assert client.get("/admin/testapp/asynctaskrecord/add/").status_code == 403
    assert (
        client.post(
            f"/admin/testapp/asynctaskrecord/{record.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert AsyncTaskRecord.objects.filter(pk=record.pk).exists()
    for path in (
        "/admin/powercrud_async/livetask/",
        "/admin/powercrud_async/tasklock/",
        "/admin/powercrud_async/auditentry/",
        "/admin/powercrud_async/taskevent/",
        "/admin/powercrud_async/tasklogentry/",
    ):
        assert client.get(path).status_code == 200, path


def test_admin_registration_can_be_switched_off(dashboard_settings: Any) -> None:
    from powercrud_async.admin import register_record_admin

    dashboard_settings(ADMIN=False)
    assert register_record_admin() is False
