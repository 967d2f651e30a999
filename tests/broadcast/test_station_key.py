"""`manage.py broadcast_station_key <stream key>` (SPEC §9.1): a new ingest key for the
station of an audio stream, made on demand, printed once, replacing any earlier key."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from streams.broadcast.models import Station
from streams.models import Organizer, Stream

from .factories_push import log_item, push, push_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer(db) -> Organizer:
    return Organizer.objects.create(name="Nightjar", slug="nightjar")


@pytest.fixture
def audio_stream(organizer) -> Stream:
    return Stream.objects.create(
        key="nightjar-fm", title="Nightjar FM", organizer=organizer, kind=Stream.Kind.AUDIO
    )


def station_key(stream_key: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("broadcast_station_key", stream_key, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_the_printed_key_is_the_only_output_and_pushes_for_the_station(client, audio_stream):
    raw_key, note = station_key("nightjar-fm")

    assert raw_key.startswith("enb_") and "\n" not in raw_key
    assert "shown only this once" in note and raw_key not in note
    response = push(client, "nightjar-fm", raw_key, push_batch(log=[log_item()]))
    assert response.status_code == 202, response.content


def test_the_station_is_created_when_the_stream_has_none(audio_stream):
    assert not Station.objects.exists()

    _, note = station_key("nightjar-fm")

    station = Station.objects.get()
    assert (station.stream, station.timezone) == (audio_stream, "UTC")
    assert note.startswith("Created the station")


def test_only_the_hash_of_the_key_is_stored(audio_stream):
    raw_key, _ = station_key("nightjar-fm")

    station = Station.objects.get()
    assert station.ingest_key_hash and raw_key not in station.ingest_key_hash
    assert station.ingest_key_prefix == raw_key[:12]


def test_a_new_key_replaces_the_earlier_one(client, audio_stream):
    first, _ = station_key("nightjar-fm")
    second, note = station_key("nightjar-fm")

    assert first != second
    assert note.startswith("Made a new ingest key")
    assert Station.objects.count() == 1
    assert push(client, "nightjar-fm", first, push_batch(log=[log_item()])).status_code == 401
    assert push(client, "nightjar-fm", second, push_batch(log=[log_item()])).status_code == 202


def test_an_unknown_stream_is_a_clear_error(audio_stream):
    with pytest.raises(CommandError, match="No stream has the key 'no-such-stream'"):
        station_key("no-such-stream")
    assert not Station.objects.exists()


def test_a_video_stream_cannot_be_a_station(organizer):
    Stream.objects.create(key="launch-party", title="Launch party", organizer=organizer)

    with pytest.raises(CommandError, match="'launch-party' is a video stream; only an audio"):
        station_key("launch-party")
    assert not Station.objects.exists()
