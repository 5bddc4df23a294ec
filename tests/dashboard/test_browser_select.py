"""Select-all on phones: at 480 px the table header (and its select-all box) is folded away, so
the bulk bar offers "Select all on this page" instead."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.urls("tests.dashboard.urls"),
    pytest.mark.django_db(transaction=True),
]


def test_select_all_on_this_page_from_the_bulk_bar_on_a_phone(
    browse: Any, make_record: Any
) -> None:
    from playwright.sync_api import expect

    for _ in range(3):
        make_record(status="failed", error="ValueError: x")
    page = browse(480, 900)
    page.goto("/tasks/jobs/")
    rows = page.locator('#pca-results .pca-col-select input[name="tasks"]')
    expect(rows).to_have_count(3)
    folded = page.locator("table.pca-table--jobs thead").bounding_box()
    assert folded is not None and folded["width"] <= 1  # the header's select-all is out of reach
    select_page = page.get_by_role("checkbox", name="Select all on this page")
    expect(select_page).to_be_visible()
    select_page.check()
    expect(page.locator("[data-pca-selected]")).to_have_text("3 selected")
    for i in range(3):
        expect(rows.nth(i)).to_be_checked()
    expect(page.locator("#pca-bulk").get_by_role("button", name="Retry")).to_be_enabled()
    rows.nth(0).uncheck()
    expect(page.locator("[data-pca-selected]")).to_have_text("2 selected")
    assert select_page.evaluate("box => box.indeterminate && !box.checked")
    select_page.check()  # a partial selection: the box ticks every row again
    expect(page.locator("[data-pca-selected]")).to_have_text("3 selected")
    select_page.uncheck()
    expect(page.locator("[data-pca-selected]")).to_have_text("0 selected")


def test_the_bulk_bar_box_is_only_for_phones(browse: Any, make_record: Any) -> None:
    from playwright.sync_api import expect

    make_record(status="failed", error="ValueError: x")
    page = browse(1400, 1000)
    page.goto("/tasks/jobs/")
    expect(page.locator("thead [data-pca-select-all]")).to_be_visible()
    expect(page.locator(".pca-select-page")).to_be_hidden()
