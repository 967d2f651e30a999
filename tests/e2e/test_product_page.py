"""The staff product analytics page in a real browser: reached from the admin index,
its funnel step list edited with the page's script (add a step, remove one) and sent
with the GET form, the retention grid shaded, and screenshots in both themes and at
phone width (420 px) saved to var/screenshots/ for a person to look at.

Data (stored the real way, counted back from today): alice and bob view a page, then
act 10 and 20 minutes later; alice converts an hour after acting. So the funnel
page_view → action → conversion reads 2, 2, 1 users.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from analytics.services import NewEvent, events_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def product_events():
    now = datetime.now(UTC)
    base = (now - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    rows = [
        ("page_view", "alice", "pricing", base),
        ("action", "alice", "signup", base + timedelta(minutes=10)),
        ("conversion", "alice", "checkout", base + timedelta(minutes=70)),
        ("page_view", "bob", "pricing", base + timedelta(hours=1)),
        ("action", "bob", "signup", base + timedelta(hours=1, minutes=20)),
    ]
    events_store(
        events=[
            NewEvent(uuid=uuid4(), event_type=t, user_id=u, feature=f, occurred_at=at)
            for t, u, f, at in rows
        ],
        received_at=now,
    )


def funnel_users(page) -> list[str]:
    return page.locator("#funnel-table tbody tr td:nth-child(2)").all_inner_texts()


def test_product_page_funnel_editing_retention_and_themes(
    page, live_server, staff_login, screenshot, product_events
):
    staff_login()
    page.click("#analytics-dashboards a:has-text('Product analytics')")
    page.wait_for_url(f"{live_server.url}/admin/analytics/product")
    assert page.locator("#product-kpis").is_visible()
    assert page.locator("svg[role=img]").count() == 4
    # The script turned the steps field into one input per step.
    inputs = page.locator(".step-list input.step-input")
    assert inputs.count() == 3
    assert funnel_users(page) == ["2", "2", "1"]

    # Remove "action", then add it back as a feature-narrowed step after page_view.
    page.click("button[aria-label='Remove step 2']")
    assert inputs.count() == 2
    page.click("button[aria-label='Add a step']")
    inputs.nth(2).fill("action:signup")
    page.click("#product-filters input[type=submit]")
    page.wait_for_load_state("load")
    assert "steps=page_view%2Cconversion%2Caction%3Asignup" in page.url
    assert page.locator("#funnel-table code").all_inner_texts() == [
        "page_view",
        "conversion",
        "action:signup",
    ]
    assert funnel_users(page) == ["2", "1", "0"]  # bob never converts; alice acted before

    page.goto(f"{live_server.url}/admin/analytics/product?period=day&cohorts=3")
    shaded = page.locator("#retention-grid td.share")
    assert shaded.count() == 6  # 3 + 2 + 1 cells
    colour = shaded.first.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")

    screenshot("product-page-light")
    page.emulate_media(color_scheme="dark")
    screenshot("product-page-dark")
    page.set_viewport_size({"width": 420, "height": 900})
    page.emulate_media(color_scheme="light")
    screenshot("product-page-420")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, f"the page scrolls sideways at phone width ({width} px)"
