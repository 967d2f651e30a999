"""`manage.py broadcast_station_key <stream key>`: a new push API key for a station (SPEC §9.1)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from streams.broadcast.models import Station
from streams.broadcast.secrets import station_ingest_key_rotate
from streams.models import Stream


class Command(BaseCommand):
    help = (
        "Make a new ingest key for the station of an audio stream (creating the station if "
        "needed) and print it once. Any earlier key stops working. The key alone goes to "
        "stdout, so `KEY=$(manage.py broadcast_station_key radio-one)` captures it."
    )

    def add_arguments(self, parser):
        parser.add_argument("stream_key", help="the key of the station's audio stream")

    def handle(self, *args, stream_key: str, **options):
        stream = Stream.objects.filter(key=stream_key).first()
        if stream is None:
            raise CommandError(f"No stream has the key {stream_key!r}.")
        if stream.kind != Stream.Kind.AUDIO:
            raise CommandError(
                f"Stream {stream_key!r} is a {stream.kind} stream; only an audio stream can "
                "be a broadcast station (set its kind to audio first)."
            )
        with transaction.atomic():
            station, created = Station.objects.get_or_create(stream=stream)
            raw_key = station_ingest_key_rotate(station=station)
        self.stderr.write(
            f"{'Created the station and made' if created else 'Made'} a new ingest key for "
            f"{stream_key!r}; any earlier key no longer works. It is shown only this once:"
        )
        self.stdout.write(raw_key)
