"""The job list: search, filters, chips, sorting, pagination, URL state, HTMX fragments, escaping."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from powercrud_async.models import LiveTask
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.urls("tests.dashboard.urls"), pytest.mark.django_db]

LIST = "/tasks/jobs/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "pca-results"}


def keys_in(response: Any) -> list[str]:
    """Task keys of the rows, in order (from the row checkboxes)."""
    return re.findall(r'form="pca-bulk" name="tasks" value="([^"]+)"', response.content.decode())


@pytest.fixture
def some(make_record: Any) -> dict[str, AsyncTaskRecord]:
    now = timezone.now()
    return {
        "ok": make_record(
            task_name="ok-1",
            status="success",
            user_label="alice",
            duration=3.0,
            message="Completed",
            affected_objects="Project 7",
            percent=100.0,
        ),
        "bad": make_record(
            task_name="bad-1",
            status="failed",
            user_label="bob",
            duration=9.0,
            message="Failed: ValueError: boom",
            result_payload="ValueError: boom",
        ),
        "run": make_record(
            task_name="run-1",
            status="in_progress",
            user_label="carol",
            percent=42.0,
            message="step 4/10",
            started_at=now - timedelta(seconds=30),
        ),
        "wait": make_record(
            task_name="wait-1",
            status="pending",
            user_label="alice",
            message="Queued",
            func_path="billing.tasks.export_invoices",
        ),
        "gone": make_record(
            task_name="gone-1",
            status="cancelled",
            user_label="",
            cleaned_up=True,
            created_at=now - timedelta(days=3),
        ),
    }


def test_lists_every_job_newest_first(staff_client: Any, some: Any) -> None:
    response = staff_client.get(LIST)
    assert response.status_code == 200
    assert keys_in(response) == ["ok-1", "bad-1", "run-1", "wait-1", "gone-1"]
    html = response.content.decode()
    assert 'class="pca-badge pca-badge--failed"' in html and ">Failed<" in html
    assert '<progress max="100" value="42"' in html  # the running row's bar
    assert "ValueError</strong> boom" in html  # the failed row's error type and message
    assert "Live" in html and "data-pca-live" in html
    assert "htmx-2.min.js" in html and "X-CSRFToken" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=bad-1", ["bad-1"]),
        ("q=alice", ["ok-1", "wait-1"]),
        ("q=boom", ["bad-1"]),
        ("q=Project+7", ["ok-1"]),
        ("q=export_invoices", ["wait-1"]),
        ("q=alice+queued", ["wait-1"]),
        ("status=failed", ["bad-1"]),
        ("status=running", ["run-1"]),
        ("status=queued", ["wait-1"]),
        ("status=succeeded", ["ok-1"]),
        ("status=cancelled", ["gone-1"]),
        ("status=in_progress", ["run-1"]),
        ("user=alice", ["ok-1", "wait-1"]),
        ("user=ALICE", ["ok-1", "wait-1"]),
        ("cleaned=yes", ["gone-1"]),
        ("cleaned=no", ["ok-1", "bad-1", "run-1", "wait-1"]),
        ("window=24h", ["ok-1", "bad-1", "run-1", "wait-1", "gone-1"]),
    ],
)
def test_search_and_filters(staff_client: Any, some: Any, query: str, expected: list[str]) -> None:
    assert keys_in(staff_client.get(f"{LIST}?{query}")) == expected


def test_date_range_and_window(staff_client: Any, some: Any) -> None:
    today = timezone.localdate()
    assert keys_in(staff_client.get(f"{LIST}?from={today}")) == ["ok-1", "bad-1", "run-1", "wait-1"]
    old = today - timedelta(days=3)
    assert keys_in(staff_client.get(f"{LIST}?from={old}&to={old}")) == ["gone-1"]
    AsyncTaskRecord.objects.filter(task_name="gone-1").update(
        updated_at=timezone.now() - timedelta(days=2)
    )
    assert "gone-1" not in keys_in(staff_client.get(f"{LIST}?window=24h"))
    assert "gone-1" in keys_in(staff_client.get(f"{LIST}?window=7d"))


def test_bad_parameters_are_ignored_and_said(staff_client: Any, some: Any) -> None:
    response = staff_client.get(
        f"{LIST}?from=yesterday&sort=password&per_page=7&page=x&status=nope"
    )
    assert response.status_code == 200
    assert len(keys_in(response)) == 5
    html = response.content.decode()
    assert "Ignored the date &#x27;yesterday&#x27;: use YYYY-MM-DD." in html
    assert "Cannot sort by &#x27;password&#x27;." in html


def test_status_chips_count_across_statuses_with_other_filters(
    staff_client: Any, some: Any
) -> None:
    response = staff_client.get(f"{LIST}?user=alice&status=failed")
    chips = {c["slug"]: (c["count"], c["active"]) for c in response.context["chips"]}
    assert chips[""] == (2, False)
    assert chips["succeeded"] == (1, False) and chips["queued"] == (1, False)
    assert chips["failed"] == (0, True)
    assert keys_in(response) == []
    assert "No jobs match these filters." in response.content.decode()
    # Chip links keep the other filters.
    assert any(
        "user=alice" in c["url"] and "status=succeeded" in c["url"]
        for c in response.context["chips"]
    )


def test_needs_attention_counts_recent_failures_and_stuck_jobs(
    staff_client: Any, some: Any
) -> None:
    LiveTask.objects.create(
        task_name="run-1",
        status="in_progress",
        created_at=timezone.now() - timedelta(minutes=5),
        started_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now() - timedelta(minutes=4),
    )
    response = staff_client.get(f"{LIST}?status=attention")
    assert keys_in(response) == ["bad-1", "run-1"]
    assert "Worker died: no heartbeat" in response.content.decode()
    assert dict((c["slug"], c["count"]) for c in response.context["chips"])["attention"] == 2


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("task", ["bad-1", "gone-1", "ok-1", "run-1", "wait-1"]),
        ("-task", ["wait-1", "run-1", "ok-1", "gone-1", "bad-1"]),
        ("status", ["gone-1", "bad-1", "run-1", "wait-1", "ok-1"]),
        ("user", ["gone-1", "ok-1", "wait-1", "bad-1", "run-1"]),
        ("-duration", ["bad-1", "ok-1", "gone-1", "wait-1", "run-1"]),
        ("progress", ["run-1", "ok-1", "bad-1", "wait-1", "gone-1"]),
        ("created", ["gone-1", "wait-1", "run-1", "bad-1", "ok-1"]),
        ("-updated", ["gone-1", "wait-1", "run-1", "bad-1", "ok-1"]),
    ],
)
def test_sort_by_any_visible_column(
    staff_client: Any, some: Any, sort: str, expected: list[str]
) -> None:
    response = staff_client.get(f"{LIST}?sort={sort}")
    assert keys_in(response) == expected
    column = sort.lstrip("-")
    header = next(c for c in response.context["columns"] if c.key == column)
    assert header.sort_state == ("descending" if sort.startswith("-") else "ascending")
    assert f'aria-sort="{header.sort_state}"' in response.content.decode()


def test_every_visible_column_has_a_sort_link(staff_client: Any, some: Any) -> None:
    columns = staff_client.get(LIST).context["columns"]
    assert [c.key for c in columns] == [
        "task",
        "status",
        "progress",
        "user",
        "created",
        "updated",
        "duration",
    ]
    assert all(c.sort_url for c in columns)


def test_pagination_and_page_size(staff_client: Any, make_record: Any) -> None:
    for i in range(30):
        make_record(task_name=f"p-{i:02d}")
    first = staff_client.get(f"{LIST}?per_page=10")
    assert keys_in(first) == [f"p-{i:02d}" for i in range(10)]
    assert "Showing <strong>1–10</strong> of <strong>30</strong>" in first.content.decode()
    third = staff_client.get(f"{LIST}?per_page=10&page=3")
    assert keys_in(third) == [f"p-{i:02d}" for i in range(20, 30)]
    assert third.context["prev_url"] == f"{LIST}?per_page=10&page=2"
    assert third.context["next_url"] == ""
    beyond = staff_client.get(f"{LIST}?per_page=10&page=99")
    assert keys_in(beyond) == keys_in(third)  # past the end: the last page
    assert len(keys_in(staff_client.get(LIST))) == 25
    assert len(keys_in(staff_client.get(f"{LIST}?per_page=50"))) == 30


def test_links_carry_the_whole_state(staff_client: Any, some: Any) -> None:
    response = staff_client.get(f"{LIST}?q=a&status=failed&user=bob&sort=user&per_page=10")
    ctx = response.context
    assert ctx["self_url"] == f"{LIST}?q=a&status=failed&user=bob&sort=user&per_page=10"
    sort_urls = {c.key: c.sort_url for c in ctx["columns"]}
    assert sort_urls["user"] == f"{LIST}?q=a&status=failed&user=bob&sort=-user&per_page=10"
    assert (
        "q=a" in ctx["export_csv"]
        and "status=failed" in ctx["export_csv"]
        and "format=csv" in ctx["export_csv"]
    )
    html = response.content.decode()
    assert (
        'name="next" value="/tasks/jobs/?q=a&amp;status=failed&amp;user=bob&amp;sort=user&amp;per_page=10"'
        in html
    )
    assert [f["label"] for f in ctx["active_filters"]] == ["Search: a", "User: bob"]


def test_htmx_refresh_returns_only_the_results_and_keeps_the_url(
    staff_client: Any, some: Any
) -> None:
    poll = staff_client.get(f"{LIST}?q=bad", HTTP_HX_TRIGGER="pca-results", **HTMX)
    html = poll.content.decode()
    assert html.lstrip().startswith('<section id="pca-results"')
    assert 'hx-get="/tasks/jobs/?q=bad"' in html  # the poller keeps the filters
    assert "every 5s [pcaPoll(this)]" in html
    assert "HX-Push-Url" not in poll  # a refresh never adds history entries
    assert 'id="pca-filters"' not in html
    assert "Vary" in poll and "HX-Request" in poll["Vary"]

    navigate = staff_client.get(
        f"{LIST}?q=bad&status=&user=&page=1", HTTP_HX_TRIGGER="pca-filters", **HTMX
    )
    assert navigate["HX-Push-Url"] == f"{LIST}?q=bad"  # canonical, without empty parameters
    assert 'id="pca-filters"' not in navigate.content.decode()

    chip = staff_client.get(f"{LIST}?q=bad&status=failed", **HTMX)
    assert chip["HX-Push-Url"] == f"{LIST}?q=bad&status=failed"
    chip_html = chip.content.decode()
    assert 'id="pca-filters"' in chip_html and 'hx-swap-oob="true"' in chip_html
    assert '<input type="hidden" name="status" value="failed">' in chip_html


def test_history_restore_gets_the_full_page(staff_client: Any, some: Any) -> None:
    response = staff_client.get(LIST, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert "<html" in response.content.decode()


def test_refresh_interval_and_title_come_from_settings(
    staff_client: Any, some: Any, dashboard_settings: Any
) -> None:
    dashboard_settings(REFRESH_INTERVAL=2, TITLE="Ops jobs", PAGE_SIZE=10, PAGE_SIZES=[10, 20])
    html = staff_client.get(LIST).content.decode()
    assert "every 2s [pcaPoll(this)]" in html
    assert "<title>Jobs · Ops jobs</title>" in html
    assert '<option value="20">20</option>' in html
    dashboard_settings(REFRESH_INTERVAL=0)
    html = staff_client.get(LIST).content.decode()
    assert "pcaPoll" not in html and "data-pca-live " not in html


def test_configured_columns(staff_client: Any, some: Any, dashboard_settings: Any) -> None:
    dashboard_settings(COLUMNS=["task", "status", "affected", "func_path"])
    response = staff_client.get(LIST)
    assert [c.key for c in response.context["columns"]] == [
        "task",
        "status",
        "affected",
        "func_path",
    ]
    assert "Project 7" in response.content.decode()
    assert keys_in(staff_client.get(f"{LIST}?sort=func_path"))[0] == "wait-1"


def test_messages_are_escaped(staff_client: Any, make_record: Any) -> None:
    make_record(
        task_name="xss",
        status="failed",
        message="Failed: ValueError: <script>alert(1)</script>",
        result_payload="ValueError: <script>alert(1)</script>",
        user_label="<b>eve</b>",
    )
    html = staff_client.get(LIST).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;eve&lt;/b&gt;" in html


def test_empty_states_say_what_to_do(staff_client: Any) -> None:
    html = staff_client.get(LIST).content.decode()
    assert "No jobs yet." in html and "launch_async_task" in html


def test_the_page_works_without_javascript(
    staff_client: Any, some: Any, dashboard_settings: Any
) -> None:
    """Every control is a real link or form: filters GET, actions POST with a CSRF token."""
    html = staff_client.get(LIST).content.decode()
    assert (
        '<form id="pca-filters" class="pca-filters pca-card" method="get" action="/tasks/jobs/"'
        in html
    )
    assert 'href="/tasks/jobs/?status=failed"' in html
    assert '<form id="pca-bulk" class="pca-bulk" method="post" action="/tasks/actions/"' in html
    assert html.count('name="csrfmiddlewaretoken"') >= 2
    assert "<noscript>" in html


def test_a_form_submitted_without_javascript_lands_on_the_clean_url(
    staff_client: Any, some: Any
) -> None:
    response = staff_client.get(f"{LIST}?q=bad&user=&from=&to=&window=&cleaned=&per_page=25")
    assert response.status_code == 302 and response["Location"] == f"{LIST}?q=bad"
    assert staff_client.get(f"{LIST}?q=&status=").status_code == 302
    assert staff_client.get(f"{LIST}?from=nope&q=").status_code == 200  # keeps the error visible


def test_an_unknown_column_is_a_configuration_error(
    staff_client: Any, dashboard_settings: Any
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    dashboard_settings(COLUMNS=["task", "colour"])
    with pytest.raises(ImproperlyConfigured, match="Dashboard column 'colour' is neither"):
        staff_client.get(LIST)
