"""The broadcast admin (SPEC §9.1, §10): every list and detail scoped to the user's
organizers, and secrets write-only — an ingest key shown once, the SAM URL and an
Icecast admin password never rendered back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from streams.broadcast.models import (
    Alert,
    BroadcastLogEntry,
    HealthSnapshot,
    ListenerSession,
    ListenerSnapshot,
    Play,
    Song,
    SongRequest,
    Station,
)
from streams.broadcast.secrets import station_ingest_key_matches
from streams.models import Organizer, Stream, StreamProvider

pytestmark = pytest.mark.django_db

T = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
ICECAST_PASSWORD = "hackme-icecast-admin"
SAM_URL = "mysql://sam:sam-db-password@10.0.0.5:3306/SAMDB"


def _station_side(slug: str) -> dict:
    organizer = Organizer.objects.create(name=f"{slug.title()} Radio", slug=slug)
    stream = Stream.objects.create(
        key=f"{slug}-fm", title=f"{slug.title()} FM", organizer=organizer, kind="audio"
    )
    station = Station.objects.create(stream=stream, sam_database_url=SAM_URL)
    encoder = StreamProvider.objects.create(
        stream=stream,
        provider="icecast",
        external_id="/live.mp3",
        config={
            "url": "http://127.0.0.1:9",
            "admin_user": "admin",
            "admin_password": ICECAST_PASSWORD,
        },
    )
    song = Song.objects.create(station=station, external_id="1", title=f"{slug} song")
    request = SongRequest.objects.create(station=station, external_id="r1", requested_at=T)
    return {
        "organizer": organizer,
        "stream": stream,
        "station": station,
        "listenersnapshot": ListenerSnapshot.objects.create(
            encoder=encoder, taken_at=T, round_at=T, listeners=3, source_up=True
        ),
        "listenersession": ListenerSession.objects.create(
            encoder=encoder, listener="ab" * 32, started_at=T, last_seen_at=T
        ),
        "play": Play.objects.create(station=station, song=song, started_at=T, source="push"),
        "songrequest": request,
        "broadcastlogentry": BroadcastLogEntry.objects.create(
            station=station, timestamp=T, level="info", category="audio", event="track_loaded"
        ),
        "healthsnapshot": HealthSnapshot.objects.create(
            station=station,
            taken_at=T,
            cpu_pct=1,
            memory_mb=1,
            ring_buffer_fill_deck_a=0.9,
            ring_buffer_fill_deck_b=0.9,
            decoder_latency_ms=1,
            stream_connected=True,
            db_connected=True,
            active_encoders=1,
            disk_free_mb=5000,
        ),
        "alert": Alert.objects.create(
            station=station, kind="disk_low", subject="disk", opened_at=T, message="low"
        ),
    }


MODELS = [
    "station",
    "listenersnapshot",
    "listenersession",
    "play",
    "songrequest",
    "broadcastlogentry",
    "healthsnapshot",
    "alert",
]


@pytest.fixture
def sides():
    return _station_side("alpha"), _station_side("beta")


@pytest.fixture
def member_of_alpha(django_user_model, sides) -> Client:
    user = django_user_model.objects.create_user("alpha-staff", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["broadcast", "streams"])
    )
    sides[0]["organizer"].members.add(user)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", MODELS)
def test_changelist_lists_only_the_members_stations_rows(member_of_alpha, sides, name):
    mine, _ = sides
    response = member_of_alpha.get(reverse(f"admin:broadcast_{name}_changelist"))
    assert response.status_code == 200
    assert {obj.pk for obj in response.context["cl"].result_list} == {mine[name].pk}
    assert "Beta FM" not in response.content.decode()


@pytest.mark.parametrize("name", MODELS)
def test_another_organizers_row_is_not_found(member_of_alpha, sides, name):
    mine, theirs = sides
    response = member_of_alpha.get(
        reverse(f"admin:broadcast_{name}_change", args=[theirs[name].pk])
    )
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == reverse("admin:index")
    own = member_of_alpha.get(reverse(f"admin:broadcast_{name}_change", args=[mine[name].pk]))
    assert own.status_code == 200


def test_station_page_never_shows_the_sam_url_or_the_icecast_password(client, superuser, sides):
    client.force_login(superuser)
    station = sides[0]["station"]
    html = client.get(reverse("admin:broadcast_station_change", args=[station.pk])).content
    assert b"sam-db-password" not in html
    assert ICECAST_PASSWORD.encode() not in html
    stream_page = client.get(reverse("admin:streams_stream_change", args=[station.stream.pk]))
    assert stream_page.status_code == 200
    assert ICECAST_PASSWORD.encode() not in stream_page.content
    assert b"********" in stream_page.content  # the mask stands in for it


def test_saving_the_stream_form_unchanged_keeps_the_masked_password(client, superuser, sides):
    client.force_login(superuser)
    stream = sides[0]["stream"]
    url = reverse("admin:streams_stream_change", args=[stream.pk])
    form = client.get(url).context["adminform"].form
    inline = client.get(url).context["inline_admin_formsets"][0].formset
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(key=stream.key, title=stream.title, organizer=stream.organizer_id)
    data.update(kind=stream.kind, status=stream.status)
    prefix = inline.prefix
    encoder = StreamProvider.objects.get(stream=stream)
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "1",
            f"{prefix}-0-id": str(encoder.pk),
            f"{prefix}-0-stream": str(stream.pk),
            f"{prefix}-0-provider": "icecast",
            f"{prefix}-0-external_id": "/live.mp3",
            f"{prefix}-0-config": (
                '{"url": "http://127.0.0.1:9", "admin_user": "admin", "admin_password": "********"}'
            ),
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    encoder.refresh_from_db()
    assert encoder.config["admin_password"] == ICECAST_PASSWORD


def test_rotating_the_ingest_key_shows_it_once_and_only_its_hash_is_kept(client, superuser, sides):
    client.force_login(superuser)
    station = sides[0]["station"]
    response = client.post(
        reverse("admin:broadcast_station_changelist"),
        {"action": "rotate_ingest_key", "_selected_action": [station.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1
    raw_key = messages[0].split(": ", 1)[1].split(" ", 1)[0]
    station.refresh_from_db()
    assert raw_key not in (station.ingest_key_hash, station.ingest_key_prefix)
    assert station_ingest_key_matches(station=station, raw_key=raw_key)
    again = client.get(reverse("admin:broadcast_station_change", args=[station.pk]))
    assert raw_key.encode() not in again.content
