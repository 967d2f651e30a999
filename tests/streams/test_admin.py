"""The Django admin of the playback side: every list loads over real data, rows written
by ingestion and jobs are read-only, and raw event lists never count the whole table."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from streams.aggregation import stream_stats_recompute
from streams.models import PlaybackBatch, PlaybackEvent, StreamStats, ViewerSession

from .conftest import ev, heartbeats

pytestmark = pytest.mark.django_db

CHANGELISTS = {
    "stream": "/admin/streams/stream/",
    "viewersession": "/admin/streams/viewersession/",
    "streamstats": "/admin/streams/streamstats/",
    "playbackevent": "/admin/streams/playbackevent/",
    "playbackbatch": "/admin/streams/playbackbatch/",
}
READ_ONLY = {
    "playbackevent": PlaybackEvent,
    "viewersession": ViewerSession,
    "streamstats": StreamStats,
    "playbackbatch": PlaybackBatch,
}


@pytest.fixture
def admin_browser(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def watched(stream, second_stream, send_batch):
    """Two clients on launch-party (one with an error), one on after-party; aggregated."""
    send_batch("c-1", heartbeats(0, 15, 30, 45))
    send_batch(
        "c-2", [ev("play", 0), ev("buffer_start", 10), ev("buffer_end", 15), ev("error", 20)]
    )
    send_batch("c-3", heartbeats(0, 15), stream_key="after-party")
    assert stream_stats_recompute().ran
    assert PlaybackEvent.objects.count() == 10
    assert ViewerSession.objects.count() == 3
    assert StreamStats.objects.count() == 2
    assert PlaybackBatch.objects.count() == 3


@pytest.mark.parametrize("name", sorted(CHANGELISTS))
def test_changelist_loads_for_a_superuser_over_real_data(admin_browser, watched, name):
    response = admin_browser.get(CHANGELISTS[name])
    assert response.status_code == 200
    cl = response.context["cl"]
    assert (
        cl.result_count
        == {
            "stream": 2,
            "viewersession": 3,
            "streamstats": 2,
            "playbackevent": 10,
            "playbackbatch": 3,
        }[name]
    )
    assert len(cl.result_list) == cl.result_count


def test_stream_changelist_shows_titles_and_keys(admin_browser, watched):
    html = admin_browser.get(CHANGELISTS["stream"]).content.decode()
    assert "Launch party" in html
    assert "after-party" in html


def test_stream_change_page_has_the_provider_inline(admin_browser, watched, stream):
    response = admin_browser.get(f"/admin/streams/stream/{stream.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="providers-TOTAL_FORMS"' in html
    # The existing HLS provider is one of the inline's forms.
    assert "https://cdn.example/launch.m3u8" in html
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.initial_form_count() == 1


def test_stream_add_page_loads_with_the_provider_inline(admin_browser, watched):
    response = admin_browser.get("/admin/streams/stream/add/")
    assert response.status_code == 200
    assert 'name="providers-TOTAL_FORMS"' in response.content.decode()


@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_rows_written_by_ingestion_and_jobs_cannot_be_added(admin_browser, watched, name):
    model = READ_ONLY[name]
    before = model.objects.count()
    response = admin_browser.get(f"{CHANGELISTS[name]}add/")
    assert response.status_code == 403
    assert admin_browser.post(f"{CHANGELISTS[name]}add/", {}).status_code == 403
    assert model.objects.count() == before
    # And the list offers no "Add" button.
    changelist = admin_browser.get(CHANGELISTS[name]).content.decode()
    assert f"{CHANGELISTS[name]}add/" not in changelist


@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_rows_written_by_ingestion_and_jobs_cannot_be_changed_or_deleted(
    admin_browser, watched, name
):
    model = READ_ONLY[name]
    row = model.objects.order_by("pk").first()
    change_url = f"{CHANGELISTS[name]}{row.pk}/change/"
    page = admin_browser.get(change_url)
    assert page.status_code == 200  # staff may look …
    assert 'type="submit"' not in page.content.decode().split('id="content-main"')[1]
    assert admin_browser.post(change_url, {}).status_code == 403  # … not touch
    delete = admin_browser.post(f"{CHANGELISTS[name]}{row.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize(
    ("name", "list_filter", "matching"),
    [
        ("playbackevent", {"type__exact": "error"}, 1),
        ("playbackbatch", {"pending__exact": "0"}, 3),
        ("viewersession", {"device__exact": "desktop"}, 3),
    ],
)
def test_large_table_list_does_not_show_the_full_result_count(
    admin_browser, watched, name, list_filter, matching
):
    response = admin_browser.get(CHANGELISTS[name], list_filter)
    assert response.status_code == 200
    cl = response.context["cl"]
    assert cl.result_count == matching
    assert cl.model_admin.show_full_result_count is False
    assert cl.full_result_count is None


def test_filtered_event_list_runs_no_count_over_the_whole_table(admin_browser, watched):
    table = PlaybackEvent._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        response = admin_browser.get(CHANGELISTS["playbackevent"], {"type__exact": "heartbeat"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 6  # 4 + 2 heartbeats
    counts = [
        q["sql"]
        for q in queries.captured_queries
        if re.search(r"COUNT\(", q["sql"], re.I) and table in q["sql"]
    ]
    assert counts, "the filtered list counts its own rows"
    assert all(" WHERE " in sql.upper() for sql in counts), counts


def test_event_list_is_paged_by_100(admin_browser, watched):
    response = admin_browser.get(CHANGELISTS["playbackevent"])
    assert response.context["cl"].list_per_page == 100
