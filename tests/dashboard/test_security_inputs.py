"""Hostile input from the attacker's side: dates at the edge of the calendar, an export over a
record model it does not fit, and task keys memcached cannot take."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core import checks
from django.http import QueryDict
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from powercrud_async.dashboard.query import ListState, filter_records
from powercrud_async.dashboard.records import RecordSchema
from tests.testapp.models import AsyncTaskRecord, CustomRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

#: The zones furthest from UTC on either side, and UTC.
ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"]
EDGES = ["0001-01-01", "0001-01-02", "9999-12-30", "9999-12-31"]


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# -- 4: dates out of range are a message, never a 500 ------------------------------------------------
@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("day", EDGES)
def test_calendar_edges_never_answer_500(
    staff_client: Any, make_record: Any, zone: str, param: str, day: str
) -> None:
    make_record(task_name="t1")
    with timezone.override(zone):
        listed = staff_client.get(f"/tasks/jobs/?{param}={day}")
        exported = staff_client.get(f"/tasks/export/?format=json&{param}={day}")
    assert listed.status_code == 200 and exported.status_code == 200
    state = listed.context["state"]
    dropped = (state.date_from or state.date_to) is None
    assert dropped == any("out of the range" in e for e in state.errors)
    body(exported)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(day=date(9999, 12, 31), zone="UTC", junk="")
@example(day=date(1, 1, 1), zone="Pacific/Kiritimati", junk="0001-01-01")
@given(
    day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    zone=st.sampled_from(ZONES),
    junk=st.text(max_size=30),
)
def test_any_date_filter_either_filters_or_says_why(
    db: Any, day: date, zone: str, junk: str
) -> None:
    schema = RecordSchema(AsyncTaskRecord)
    with timezone.override(zone):
        for query in (f"from={day.isoformat()}&to={day.isoformat()}", QueryDict(mutable=True)):
            if isinstance(query, QueryDict):
                query.update({"from": junk, "to": junk})
            else:
                query = QueryDict(query)
            state = ListState.from_query(
                query, sortable={"created"}, page_sizes=[25], default_per_page=25
            )
            list(filter_records(AsyncTaskRecord.objects.all(), state, schema, now=timezone.now()))
            for name, parsed in (("from", state.date_from), ("to", state.date_to)):
                if query.get(name, "").strip() and parsed is None:
                    assert state.errors  # a dropped date is always explained


# -- 8: export exactly the configured columns ---------------------------------------------------------
def test_export_of_a_record_model_with_no_export_columns_dumps_nothing(
    dashboard_settings: Any, staff_client: Any
) -> None:
    dashboard_settings(RECORD_MODEL="testapp.CustomRecord")
    CustomRecord.objects.create(key="k1", state="failed", note="the-private-note", who="alice")
    for fmt in ("csv", "json"):
        response = staff_client.get(f"/tasks/export/?format={fmt}")
        assert response.status_code == 500
        assert b"the-private-note" not in body(response) and b"not configured" in body(response)
    found = [m for m in checks.run_checks() if m.id == "powercrud_async.E040"]
    assert found and "testapp.CustomRecord" in found[0].msg


def test_export_writes_exactly_the_export_columns(staff_client: Any, make_record: Any) -> None:
    make_record(task_name="t1", kwargs_payload={"api_token": "tok-123"}, traceback="private frames")
    csv_text = body(staff_client.get("/tasks/export/?format=csv")).decode("utf-8-sig")
    header = csv_text.splitlines()[0].split(",")
    from powercrud_async.dashboard.export import EXPORT_FIELDS

    assert header == list(EXPORT_FIELDS)
    assert "tok-123" not in csv_text and "private frames" not in csv_text
    assert not [m for m in checks.run_checks() if m.id == "powercrud_async.E040"]


# -- 12: keys memcached cannot take ---------------------------------------------------------------------
@pytest.fixture
def memcached(memcached_server: Any) -> str:
    return str(memcached_server.location)


@pytest.mark.parametrize("key", ["has a space", "k" * 300, "tab\there", "new\nline"])
def test_progress_endpoint_takes_any_key_on_memcached(
    settings: Any, memcached: str, staff_client: Any, key: str
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "mc": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": memcached,
        },
    }
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "CACHE_NAME": "mc"}
    for client, url in ((Client(), "/async/progress/"), (staff_client, "/tasks/progress/")):
        response = client.get(url, {"task_name": key})
        assert response.status_code == 404
