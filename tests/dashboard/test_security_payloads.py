"""Stored arguments from the attacker's side: a pickle planted in storage must never be
unpickled, and secrets passed to a job are masked wherever they are shown or exported."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory, override_settings

from powercrud_async.admin import AsyncTaskRecordAdmin
from powercrud_async.async_manager import AsyncManager
from powercrud_async.callables import dumps_call, loads_call, sign_blob
from powercrud_async.exceptions import TamperedPayload
from powercrud_async.models import AuditEntry, LiveTask
from powercrud_async.redaction import MASK
from powercrud_async.statuses import TaskStatus
from tests.dashboard.conftest import user
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "pca-flash"}
RAN: list[str] = []


def planted(marker: str) -> str:
    """What a planted pickle calls when it is unpickled."""
    RAN.append(marker)
    return marker


class Planted:
    def __reduce__(self) -> Any:
        return (planted, ("code ran in the web process",))


def failed_job(launch: Any, *args: Any, **kwargs: Any) -> str:
    key = launch("tests.testapp.tasks.add", *args, **kwargs)
    AsyncManager.resolve_manager(LiveTask.objects.get(task_name=key).manager_class).finish(
        key, TaskStatus.FAILED, error="ValueError: boom", reason="ValueError: boom"
    )
    return key


# -- 11: signed call payloads -----------------------------------------------------------------------
@pytest.mark.parametrize("forge", ["unsigned", "flipped", "other key"])
def test_a_planted_payload_is_refused_and_audited(
    staff_client: Any, launch: Any, forge: str
) -> None:
    RAN.clear()
    key = failed_job(launch, 1, 2)
    evil = pickle.dumps(((Planted(),), {}))
    if forge == "unsigned":
        blob = evil
    elif forge == "flipped":
        signed = sign_blob(evil)
        blob = signed[:10] + bytes([signed[10] ^ 1]) + signed[11:]  # one bit of the signature
    else:
        with override_settings(SECRET_KEY="an attacker's guess at the key"):
            blob = sign_blob(evil)
    LiveTask.objects.filter(task_name=key).update(call=blob)
    response = staff_client.post("/tasks/actions/", {"action": "retry", "tasks": [key]}, **HTMX)
    assert RAN == []
    line = response.context["lines"][0]
    assert line["result"] == "refused"
    assert ("failed its signature check" if forge != "unsigned" else "is not signed") in line[
        "detail"
    ]
    entry = AuditEntry.objects.get()
    assert entry.refused == 1 and entry.results[0][1] == "refused"
    assert LiveTask.objects.count() == 1  # nothing launched


def test_a_rotated_key_still_verifies_through_the_fallbacks(settings: Any) -> None:
    settings.SECRET_KEY = "old-key-" + "x" * 50
    blob = dumps_call((1,), {"a": 2})
    settings.SECRET_KEY = "new-key-" + "y" * 50
    with pytest.raises(TamperedPayload):
        loads_call(blob)
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "x" * 50]
    assert loads_call(blob) == ((1,), {"a": 2})


def test_a_signed_payload_retries(
    staff_client: Any, launch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    key = failed_job(launch, 1, 2)
    assert LiveTask.objects.get(task_name=key).call[:5] == b"pca1:"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/tasks/actions/", {"action": "retry", "tasks": [key]}, **HTMX)
    assert response.context["summary"] == "Retried 1 job."


# -- 10: redaction --------------------------------------------------------------------------------------
SECRETS = {
    "password": "hunter2",
    "api_key": "k-live-1",
    "note": "plain",
    "nested": {"Auth_Header": "Bearer zz"},
}


def shown(text: str) -> bool:
    return any(value in text for value in ("hunter2", "k-live-1", "Bearer zz"))


def test_sensitive_arguments_are_masked_everywhere(
    staff_client: Any, launch: Any, staff: Any
) -> None:
    key = failed_job(launch, 1, 2, task_kwargs=SECRETS)
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.kwargs_payload["password"] == MASK and record.kwargs_payload["note"] == "plain"
    assert record.kwargs_payload["nested"] == {"Auth_Header": MASK}
    detail = staff_client.get(f"/tasks/jobs/{key}/").content.decode()
    assert not shown(detail) and "plain" in detail
    assert (
        loads_call(LiveTask.objects.get(task_name=key).call)[1] == SECRETS
    )  # a retry runs as launched


def test_a_record_that_keeps_the_values_still_shows_them_masked(
    settings: Any, staff_client: Any, launch: Any, staff: Any
) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "KEEP_SENSITIVE_ARGUMENTS": True}
    key = failed_job(launch, 1, 2, task_kwargs=SECRETS)
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.kwargs_payload == SECRETS
    assert not shown(staff_client.get(f"/tasks/jobs/{key}/").content.decode())
    # the admin
    request = RequestFactory().get("/")
    request.user = user("root", is_staff=True, is_superuser=True)
    model_admin = AsyncTaskRecordAdmin(AsyncTaskRecord, admin.AdminSite(name="redaction"))
    fields = [
        name
        for _, options in model_admin.get_fieldsets(request, record)
        for name in options["fields"]
    ]
    assert "kwargs_payload" not in fields and "args_payload" not in fields  # never rendered raw
    shown_fields = [name for name in fields if name in ("task_keyword_arguments", "task_arguments")]
    html = " ".join(str(getattr(model_admin, name)(record)) for name in shown_fields)
    assert shown_fields and not shown(html) and MASK in html and "plain" in html
    # an export that includes the arguments
    from tests.dashboard.views import AsyncTaskRecordView

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AsyncTaskRecordView, "EXPORT_FIELDS", ("task_name", "kwargs_payload"))
        exported = b"".join(
            staff_client.get("/sample/asynctaskrecord/export/?format=json").streaming_content
        )
    assert b"plain" in exported and not shown(exported.decode())


def test_masking_can_be_switched_off(settings: Any, staff_client: Any, launch: Any) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "REDACT_ARGUMENTS": []}
    key = failed_job(launch, 1, 2, task_kwargs={"password": "hunter2"})
    assert "hunter2" in staff_client.get(f"/tasks/jobs/{key}/").content.decode()
