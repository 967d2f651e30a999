"""SPEC §9.4 reports: CSV and a server-rendered PDF from the same printable page."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from streams.broadcast.selectors import local_today
from tests.broadcast.staff_support import (
    make_encoder,
    make_station,
    play,
    request,
    song,
    staff_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    station = make_station()
    make_encoder(station)
    tune = song(station, "4711", "Nightcall Zebra", artist="Kavinsky")
    play(station, tune, timezone.now() - timedelta(minutes=30))
    request(
        station,
        "r1",
        timezone.now() - timedelta(minutes=40),
        "played",
        song=tune,
        played_at=timezone.now(),
    )
    client.force_login(staff_user())
    client.station = station
    return client


def pdf_text(content: bytes) -> str:
    assert shutil.which("pdftotext"), "pdftotext missing: apt-get install poppler-utils"
    result = subprocess.run(["pdftotext", "-", "-"], input=content, capture_output=True, check=True)
    return " ".join(result.stdout.decode().split())  # table cells wrap words


@pytest.mark.parametrize(
    "path, title",
    [
        ("daily-broadcast?date={today}", "Daily broadcast report"),
        ("song-history?song_id=4711", "Song play history"),
        ("request-log?from={today}&to={today}", "Request log report"),
    ],
)
def test_pdf_has_the_title_and_the_song(staff, path, title):
    today = local_today(station=staff.station).isoformat()
    answer = staff.get(
        f"/admin/broadcast/night-radio/reports/{path.format(today=today)}&format=pdf"
    )
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/pdf"
    assert answer["Content-Disposition"].startswith("attachment;")
    assert answer.content.startswith(b"%PDF")
    text = pdf_text(answer.content)
    assert title in text
    assert "Nightcall Zebra" in text


@pytest.mark.parametrize("kind", ["listener-trend?period=month", "stream-uptime?"])
def test_pdf_of_the_other_reports(staff, kind):
    answer = staff.get(f"/admin/broadcast/night-radio/reports/{kind}&format=pdf")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    assert "report" in pdf_text(answer.content).lower()


def test_daily_broadcast_csv_has_summary_and_sections(staff):
    today = local_today(station=staff.station).isoformat()
    answer = staff.get(
        f"/admin/broadcast/night-radio/reports/daily-broadcast?date={today}&format=csv"
    )
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert {"section", "label", "value"} <= set(rows[0])
    assert {"label": "Plays", "value": "1"}.items() <= rows[0].items()
    assert any(r["section"] == "Top songs" and r["title"] == "Nightcall Zebra" for r in rows)


def test_daily_broadcast_json_and_page(staff):
    today = local_today(station=staff.station).isoformat()
    body = staff.get(
        f"/admin/broadcast/night-radio/reports/daily-broadcast?date={today}",
        HTTP_ACCEPT="application/json",
    ).json()
    assert body["kind"] == "daily-broadcast" and body["params"] == {"date": today}
    assert [s["title"] for s in body["sections"]] == ["Top songs", "Listener peaks", "Events"]
    page = staff.get(
        f"/admin/broadcast/night-radio/reports/daily-broadcast?date={today}",
        HTTP_ACCEPT="text/html",
    )
    assert b"Daily broadcast report" in page.content and b"Download PDF" in page.content


def test_unknown_song_is_404_and_bad_date_400(staff):
    assert (
        staff.get(
            "/admin/broadcast/night-radio/reports/song-history?song_id=nope&format=json"
        ).status_code
        == 404
    )
    assert (
        staff.get(
            "/admin/broadcast/night-radio/reports/daily-broadcast?date=2026-02-30&format=json"
        ).status_code
        == 400
    )
