"""Demo playback traffic for `manage.py seed_demo`: streams of two organizers and a day
of simulated viewers, sent through the real ingestion service and then aggregated."""

from __future__ import annotations

import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from django.conf import settings
from django.db import transaction

from .aggregation import stream_stats_recompute
from .enrichment import device_from_user_agent
from .ingest import playback_batch_ingest
from .models import Organizer, PlaybackEvent, Stream, StreamProvider

DEMO_SEED = 2026
DEMO_VIEWERS = 160
HEARTBEAT = 15

USER_AGENTS = [
    (
        6,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    ),
    (
        2,
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    ),
    (
        5,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    (
        4,
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
    ),
    (
        2,
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    (
        1,
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/5.0 Chrome/94.0 TV Safari/537.36",
    ),
    (1, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
]
COUNTRIES = [(9, "US"), (6, "DE"), (5, "GB"), (4, "IN"), (3, "BR"), (2, "NG"), (2, "JP"), (1, "")]

DEMO_STREAMS = [
    # key, title, organizer slug, kind, status, provider, external id, config
    (
        "launch-party",
        "Launch party live",
        "nightjar",
        "video",
        "live",
        "hls",
        "/static/demo/hls/stream.m3u8",
        {},
    ),
    (
        "studio-session",
        "Studio session #12",
        "nightjar",
        "video",
        "ended",
        "bunny_stream",
        "5f2c9d1e-7a3b-4c8d-9e0f-1a2b3c4d5e6f",
        {"library_id": "12345"},
    ),
    (
        "behind-the-scenes",
        "Behind the scenes",
        "nightjar",
        "video",
        "ended",
        "youtube",
        "dQw4w9WgXcQ",
        {},
    ),
    (
        "late-night-radio",
        "Late night radio",
        "wavelength",
        "audio",
        "live",
        "icecast",
        "https://radio.example.com/live",
        {},
    ),
]


DEMO_HLS_PLAYLIST = "stream.m3u8"


def demo_hls_generate(*, directory: Path, seconds: int = 30, segment_seconds: int = 1) -> Path:
    """Write a short HLS VOD (ffmpeg test pattern and a sine tone) into `directory`.

    The files are generated, never committed: the demo stream "launch-party" plays
    them from /static/demo/hls/, and the browser tests make their own copy.
    Raises FileNotFoundError when ffmpeg is not installed.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("ffmpeg")
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / DEMO_HLS_PLAYLIST
    fps = 25
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size=640x360:rate={fps}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-profile:v",
        "baseline",
        "-pix_fmt",
        "yuv420p",
        # A keyframe at every segment boundary, so segments are exactly segment_seconds.
        "-g",
        str(fps * segment_seconds),
        "-keyint_min",
        str(fps * segment_seconds),
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "hls",
        "-hls_time",
        str(segment_seconds),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        str(directory / "segment_%03d.ts"),
        str(playlist),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)  # noqa: S603
    return playlist


def _demo_hls_ensure() -> str:
    directory = Path(settings.DEMO_HLS_DIR)
    if (directory / DEMO_HLS_PLAYLIST).is_file():
        return f"demo HLS video in {directory}"
    try:
        demo_hls_generate(directory=directory)
    except FileNotFoundError:
        return (
            "ffmpeg not found: the launch-party watch page has no video "
            "(install ffmpeg and run seed_demo again)"
        )
    except subprocess.SubprocessError as exc:
        return f"ffmpeg could not make the demo HLS video: {exc}"
    return f"demo HLS video written to {directory} (restart the server to serve it)"


def _weighted(rng: random.Random, options: list[tuple[int, str]]) -> str:
    return rng.choices([v for _, v in options], weights=[w for w, _ in options])[0]


def _streams() -> list[Stream]:
    organizers = {
        "nightjar": Organizer.objects.get_or_create(
            slug="nightjar", defaults={"name": "Nightjar Records"}
        )[0],
        "wavelength": Organizer.objects.get_or_create(
            slug="wavelength", defaults={"name": "Wavelength Radio"}
        )[0],
    }
    streams = []
    for key, title, org, kind, status, provider, external_id, config in DEMO_STREAMS:
        stream, created = Stream.objects.get_or_create(
            key=key,
            defaults={"title": title, "organizer": organizers[org], "kind": kind, "status": status},
        )
        if created:
            StreamProvider.objects.create(
                stream=stream,
                provider=provider,
                external_id=external_id,
                config=config,
                is_primary=True,
            )
        streams.append(stream)
    return streams


def _viewer_events(rng: random.Random, start: datetime, end: datetime) -> list[dict]:
    """One viewing: play, heartbeats, maybe buffering, a pause, an error; then ended or gone."""
    minutes = rng.choice([2, 5, 8, 15, 25, 40, 70])
    t, stop = start, min(start + timedelta(minutes=minutes), end)
    events = [{"type": "play", "videoTime": 0.0, "ts": t}]
    video = 0.0
    while t < stop:
        roll = rng.random()
        if roll < 0.04:
            events.append({"type": "buffer_start", "videoTime": video, "ts": t})
            t += timedelta(seconds=rng.uniform(1, 8))
            events.append({"type": "buffer_end", "videoTime": video, "ts": t})
        elif roll < 0.05:
            events.append(
                {
                    "type": "error",
                    "videoTime": video,
                    "ts": t,
                    "extra": {"code": rng.choice(["NETWORK", "DECODE"])},
                }
            )
        elif roll < 0.06:
            events.append({"type": "pause", "videoTime": video, "ts": t})
            t += timedelta(seconds=rng.uniform(10, 120))
            events.append({"type": "play", "videoTime": video, "ts": t})
        t += timedelta(seconds=HEARTBEAT)
        video += HEARTBEAT
        events.append({"type": "heartbeat", "videoTime": video, "ts": t})
    if rng.random() < 0.5:
        events.append({"type": "ended", "videoTime": video, "ts": t})
    return [e for e in events if e["ts"] <= end]


def seed_playback_demo(*, reset: bool = False) -> str:
    hls_note = _demo_hls_ensure()
    streams = _streams()
    if reset:
        Stream.objects.filter(pk__in=[s.pk for s in streams]).delete()
        streams = _streams()
    elif PlaybackEvent.objects.filter(stream__in=streams).exists():
        return f"{len(streams)} streams (traffic already loaded); {hls_note}"
    rng = random.Random(DEMO_SEED)
    end = datetime.now(UTC).replace(microsecond=0)
    begin = end - timedelta(hours=24)
    encoder = msgspec.json.Encoder()
    total = 0
    for viewer in range(DEMO_VIEWERS):
        stream = rng.choices(streams, weights=[6, 3, 2, 2])[0]
        user_agent = _weighted(rng, USER_AGENTS)
        country = _weighted(rng, COUNTRIES)
        client_id = f"demo-{viewer:04d}"
        for _ in range(rng.choice([1, 1, 1, 2])):
            start = begin + timedelta(seconds=rng.uniform(0, 24 * 3600 - 120))
            events = _viewer_events(rng, start, end)
            for i in range(0, len(events), 20):
                body = encoder.encode(
                    {
                        "streamId": stream.key,
                        "clientId": client_id,
                        "events": [{**e, "ts": e["ts"].isoformat()} for e in events[i : i + 20]],
                    }
                )
                with transaction.atomic():
                    total += playback_batch_ingest(
                        body=body,
                        country=country,
                        device=device_from_user_agent(user_agent),
                        received_at=end,
                    ).ingested
    summary = stream_stats_recompute(full=True)
    return (
        f"{len(streams)} streams, {total} events from {DEMO_VIEWERS} viewers, "
        f"{summary.sessions} sessions aggregated; {hls_note}"
    )
