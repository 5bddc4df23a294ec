"""Who gets in and who may act: anonymous, non-staff, permissions, callables, own-tasks-only,
wrong methods, missing CSRF. Unauthorised requests get the login page or 403/404, never data."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from powercrud_async.models import AuditEntry
from tests.dashboard.conftest import client_for, user
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

PAGES = [
    "/tasks/",
    "/tasks/jobs/",
    "/tasks/jobs/secret-1/",
    "/tasks/locks/",
    "/tasks/audit/",
    "/tasks/export/?format=csv",
    "/tasks/export/?format=json",
    "/tasks/progress/?task_name=secret-1",
    "/sample/asynctaskrecord/",
    "/sample/asynctaskrecord/job/secret-1/",
]


@pytest.fixture
def secret(make_record: Any) -> AsyncTaskRecord:
    return make_record(
        task_name="secret-1", status="failed", message="Failed: top secret", user_label="alice"
    )


def leaks(response: Any) -> bool:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return b"secret-1" in body or b"top secret" in body


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_gets_the_login_page(url: str, secret: Any) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert not leaks(response)


def test_anonymous_htmx_requests_are_redirected_by_htmx(secret: Any) -> None:
    response = Client().get("/tasks/jobs/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pca-results")
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith("/admin/login/?next=")
    assert not leaks(response)


def test_anonymous_cannot_act(secret: Any) -> None:
    response = Client().post(
        "/tasks/actions/", {"action": "delete", "tasks": ["secret-1"], "confirmed": "1"}
    )
    assert response.status_code == 302 and AsyncTaskRecord.objects.exists()


@pytest.mark.parametrize("url", PAGES)
def test_non_staff_is_forbidden(url: str, secret: Any) -> None:
    response = client_for(user("mallory")).get(url)
    assert response.status_code == 403
    assert not leaks(response)


def test_non_staff_cannot_act(secret: Any) -> None:
    client = client_for(user("mallory"))
    response = client.post(
        "/tasks/actions/", {"action": "delete", "tasks": ["secret-1"], "confirmed": "1"}
    )
    assert response.status_code == 403 and AsyncTaskRecord.objects.exists()


def test_wrong_methods(staff_client: Any, secret: Any) -> None:
    assert staff_client.get("/tasks/actions/").status_code == 405
    assert staff_client.post("/tasks/jobs/").status_code == 405
    assert staff_client.post("/tasks/").status_code == 405
    assert staff_client.delete("/tasks/jobs/secret-1/").status_code == 405
    assert staff_client.head("/tasks/jobs/").status_code == 200


def test_actions_need_the_csrf_token(staff: Any, secret: Any) -> None:
    client = client_for(staff, enforce_csrf_checks=True)
    data = {"action": "delete", "tasks": ["secret-1"], "confirmed": "1"}
    assert client.post("/tasks/actions/", data).status_code == 403
    assert client.post("/tasks/actions/", data, HTTP_HX_REQUEST="true").status_code == 403
    assert AsyncTaskRecord.objects.exists()
    # With the token (as the page's forms and htmx's X-CSRFToken header send it) it goes through.
    client.get("/tasks/jobs/")
    token = client.cookies["csrftoken"].value
    assert client.post("/tasks/actions/", data, HTTP_X_CSRFTOKEN=token).status_code == 303
    assert not AsyncTaskRecord.objects.exists()


def test_a_permission_can_replace_staff(dashboard_settings: Any, secret: Any) -> None:
    dashboard_settings(
        VIEW_ACCESS="testapp.view_asynctaskrecord", ACTION_ACCESS="testapp.delete_asynctaskrecord"
    )
    viewer = user("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_asynctaskrecord"))
    client = client_for(viewer)
    response = client.get("/tasks/jobs/")
    assert response.status_code == 200 and leaks(response)
    html = response.content.decode()
    assert 'id="pca-bulk"' not in html and 'value="retry"' not in html  # no action buttons
    refused = client.post(
        "/tasks/actions/", {"action": "delete", "tasks": ["secret-1"], "confirmed": "1"}
    )
    assert refused.status_code == 403 and AsyncTaskRecord.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.action, entry.refused) == ("viewer", "delete", 1)
    assert entry.outcome == "Refused: no permission to act on jobs."
    # the staff default no longer applies
    assert client_for(user("boss", is_staff=True)).get("/tasks/jobs/").status_code == 403


def test_a_callable_rule(dashboard_settings: Any, secret: Any) -> None:
    dashboard_settings(VIEW_ACCESS="tests.dashboard.access.only_ops")
    assert client_for(user("ops")).get("/tasks/jobs/").status_code == 200
    assert client_for(user("someone", is_staff=True)).get("/tasks/jobs/").status_code == 403


def test_superuser_and_authenticated_rules(dashboard_settings: Any, secret: Any) -> None:
    dashboard_settings(VIEW_ACCESS="superuser")
    assert client_for(user("staffer", is_staff=True)).get("/tasks/").status_code == 403
    assert (
        client_for(user("root", is_staff=True, is_superuser=True)).get("/tasks/").status_code == 200
    )
    dashboard_settings(VIEW_ACCESS="authenticated")
    assert client_for(user("anyone")).get("/tasks/").status_code == 200


def test_bad_rules_are_configuration_errors(dashboard_settings: Any, staff_client: Any) -> None:
    dashboard_settings(VIEW_ACCESS="nobody")
    with pytest.raises(ImproperlyConfigured, match="Unknown dashboard access rule 'nobody'"):
        staff_client.get("/tasks/")
    dashboard_settings(VIEW_ACCESS="no.such.module.func")
    with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
        staff_client.get("/tasks/")


def test_own_tasks_only(dashboard_settings: Any, make_record: Any, staff_client: Any) -> None:
    dashboard_settings(
        VIEW_ACCESS="authenticated", ACTION_ACCESS="authenticated", OWN_TASKS_ONLY=True
    )
    account = user("alice")
    make_record(task_name="mine", user_label="alice", user_pk=str(account.pk), status="success")
    make_record(
        task_name="theirs",
        user_label="bob",
        user_pk="999",
        status="failed",
        message="Failed: bob's secret",
    )
    alice = client_for(account)
    listed = alice.get("/tasks/jobs/").content.decode()
    assert "mine" in listed and "theirs" not in listed and "bob&#x27;s secret" not in listed
    assert alice.get("/tasks/jobs/mine/").status_code == 200
    assert alice.get("/tasks/jobs/theirs/").status_code == 404  # someone else's task
    assert alice.get("/tasks/progress/?task_name=theirs").status_code == 404
    export = b"".join(alice.get("/tasks/export/?format=csv").streaming_content)
    assert b"mine" in export and b"theirs" not in export
    overview = alice.get("/tasks/").context["overview"]
    assert overview.counts["failed"] == 0 and overview.counts["succeeded"] == 1
    refused = alice.post(
        "/tasks/actions/",
        {"action": "delete", "tasks": ["theirs"], "confirmed": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert refused.context["summary"] == "Refused to delete the record of theirs: no such job."
    assert AsyncTaskRecord.objects.filter(task_name="theirs").exists()
    # staff still see everything
    assert "theirs" in staff_client.get("/tasks/jobs/").content.decode()


def test_audit_trail_of_a_non_staff_user_shows_only_their_entries(dashboard_settings: Any) -> None:
    dashboard_settings(VIEW_ACCESS="authenticated", OWN_TASKS_ONLY=True)
    alice = user("alice")
    AuditEntry.objects.create(
        username="alice", user_id=str(alice.pk), action="cancel", targets=["a"], outcome="ok"
    )
    AuditEntry.objects.create(
        username="bob", user_id="999", action="cancel", targets=["b"], outcome="ok"
    )
    entries = client_for(alice).get("/tasks/audit/").context["entries"]
    assert [e["entry"].username for e in entries] == ["alice"]


def test_inactive_users_are_refused(secret: Any) -> None:
    ghost = user("ghost", is_staff=True)
    client = client_for(ghost)
    ghost.is_active = False
    ghost.save()
    response = client.get("/tasks/jobs/")
    assert response.status_code in (302, 403) and not leaks(response)
