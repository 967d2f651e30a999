"""Demo playback traffic for `manage.py seed_demo`: four streams of two organizers and
60 days of simulated viewers up to now, sent through the real ingestion service
(`playback_batch_ingest`) and then aggregated (`stream_stats_recompute`), so every
figure on the dashboards comes out of the production pipeline.

The audience is deterministic (a seeded RNG per stream; days counted back from
today, UTC) and shaped like a real one: each stream has its busy hours (evenings
for video, late nights for the radio) and its own weekend level, grows over the
period, and `launch-party` premiered LAUNCH_DAYS_AGO days ago with a spike of
viewers. Regulars come back; sessions run from a few seconds to over an hour; a
few percent of sessions rebuffer now and then (mobile more than desktop, a poor
connection much more) or hit an error; a few bots crawl too (stored, never counted).
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from django.conf import settings
from django.db import transaction

from analytics.demo import demo_hour_weights

from .aggregation import stream_stats_recompute
from .enrichment import device_from_user_agent
from .ingest import MAX_EVENTS_PER_BATCH, playback_batch_ingest
from .models import Organizer, PlaybackEvent, Stream, StreamProvider
from .session_rules import GAP_CAP_HEARTBEATS

DEMO_SEED = 2026
DEMO_DAYS = 60
LAUNCH_DAYS_AGO = 10
LAUNCH_HOUR = 19  # UTC: the premiere of launch-party
DAY_SECONDS = 86400

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
        # `length`: the video's seconds, as Bunny's video object has it (audience retention).
        {"library_id": "12345", "length": 2400},
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


_USER_AGENTS = {
    "windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "linux": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
    "ipad": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "tv": "Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/5.0 Chrome/94.0 TV Safari/537.36",
}
VIDEO_USER_AGENTS = [
    (30, "windows"),
    (14, "mac"),
    (3, "linux"),
    (24, "iphone"),
    (17, "android"),
    (7, "ipad"),
    (5, "tv"),
]
AUDIO_USER_AGENTS = [
    (18, "windows"),
    (8, "mac"),
    (2, "linux"),
    (34, "iphone"),
    (30, "android"),
    (5, "ipad"),
    (3, "tv"),
]
BOT_USER_AGENTS = [
    (3, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (1, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
]
COUNTRIES = [
    (28, "US"),
    (12, "DE"),
    (11, "GB"),
    (8, "IN"),
    (7, "BR"),
    (5, "FR"),
    (5, "CA"),
    (4, "NG"),
    (4, "JP"),
    (3, "AU"),
    (3, "MX"),
    (2, "NL"),
    (2, "SE"),
    (4, ""),  # no country header and no GeoIP match
]


@dataclass(frozen=True)
class _Quality:
    """How a device class plays: rebuffer chance per heartbeat, error chance per session."""

    buffer_per_heartbeat: float
    error_per_session: float


DEVICE_QUALITY = {
    "desktop": _Quality(0.03, 0.012),
    "mobile": _Quality(0.08, 0.03),
    "tablet": _Quality(0.06, 0.02),
    "tv": _Quality(0.05, 0.035),
}
ERROR_CODES = [(5, "NETWORK"), (2, "MEDIA_ERR_DECODE"), (2, "MANIFEST_LOAD"), (1, "DRM")]

# Session lengths in minutes: (weight, shortest, longest). Most viewings are short,
# a few last the whole show.
VIDEO_MINUTES = [(45, 0.2, 2), (30, 2, 6), (17, 6, 15), (6, 15, 35), (2, 35, 70)]
AUDIO_MINUTES = [(35, 0.3, 3), (30, 3, 10), (24, 10, 25), (9, 25, 45), (2, 45, 80)]
PREMIERE_MINUTES = [(30, 0.5, 5), (45, 5, 20), (25, 20, 40)]


@dataclass(frozen=True)
class Audience:
    """One stream's viewers: how many, when, on what and for how long."""

    sessions: float  # sessions on a weekday at the start of the period
    weekend: float  # factor on Saturdays and Sundays
    peak_hour: float  # busiest UTC hour on a weekday
    weekend_peak_hour: float
    spread: float  # hours either side of the peak that are still busy
    regulars: int  # viewers who come back
    user_agents: list[tuple[int, str]]
    minutes: list[tuple[int, float, float]]


AUDIENCES = {
    "launch-party": Audience(22, 1.3, 20.5, 18, 3.0, 360, VIDEO_USER_AGENTS, VIDEO_MINUTES),
    "studio-session": Audience(15, 0.7, 19.5, 15, 3.5, 240, VIDEO_USER_AGENTS, VIDEO_MINUTES),
    "behind-the-scenes": Audience(11, 1.2, 21, 16, 4.0, 180, VIDEO_USER_AGENTS, VIDEO_MINUTES),
    "late-night-radio": Audience(12, 1.25, 23.5, 0.5, 2.5, 150, AUDIO_USER_AGENTS, AUDIO_MINUTES),
}

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


@dataclass
class _Viewer:
    client_id: str
    user_agent: str
    device: str
    country: str
    poor_connection: bool
    viewings: list[tuple[datetime, datetime]]  # to keep one viewer's sessions apart
    events: list[dict]


def _viewer_new(rng: random.Random, audience: Audience) -> _Viewer:
    user_agent = _USER_AGENTS[_weighted(rng, audience.user_agents)]
    return _Viewer(
        client_id=f"c-{rng.getrandbits(40):010x}",
        user_agent=user_agent,
        device=device_from_user_agent(user_agent),
        country=_weighted(rng, COUNTRIES),
        poor_connection=rng.random() < 0.06,
        viewings=[],
        events=[],
    )


def _viewing_events(
    rng: random.Random, viewer: _Viewer, start: datetime, minutes: float, *, stress: float
) -> list[dict]:
    """One viewing: play, heartbeats, now and then a rebuffer or a pause, maybe an error;
    then ended, or the tab is simply closed."""
    quality = DEVICE_QUALITY[viewer.device]
    startup_ms = round(min(15000, rng.lognormvariate(6.6, 0.5) * stress))
    t = start
    events = [{"type": "play", "videoTime": 0.0, "ts": t, "extra": {"startupMs": startup_ms}}]
    if rng.random() < 0.02:  # gave up while the first frame was still loading
        # No first frame, so no startup time: what the SDK sends on page hide.
        return [{"type": "play", "videoTime": 0.0, "ts": t}]
    buffer_chance = quality.buffer_per_heartbeat * stress * (5 if viewer.poor_connection else 1)
    stop = start + timedelta(minutes=minutes)
    error_at = None
    if rng.random() < quality.error_per_session * stress:
        error_at = start + (stop - start) * rng.random()
    # The demo players beat at the longest gap still credited in full (SPEC §6.2: a gap
    # counts up to GAP_CAP_HEARTBEATS intervals): the same watch time from half the rows,
    # which keeps the seed fast.
    heartbeat = GAP_CAP_HEARTBEATS * settings.HEARTBEAT_INTERVAL
    video = 0.0
    while t < stop:
        roll = rng.random()
        if roll < buffer_chance:
            events.append({"type": "buffer_start", "videoTime": video, "ts": t})
            t += timedelta(seconds=min(25.0, rng.lognormvariate(1.3, 0.7)))
            events.append({"type": "buffer_end", "videoTime": video, "ts": t})
        elif roll < buffer_chance + 0.006:
            events.append({"type": "pause", "videoTime": video, "ts": t})
            t += timedelta(seconds=rng.uniform(10, 180))
            events.append({"type": "play", "videoTime": video, "ts": t})
        t += timedelta(seconds=heartbeat)
        video += heartbeat
        events.append({"type": "heartbeat", "videoTime": video, "ts": t})
        if error_at is not None and t >= error_at:
            fatal = rng.random() < 0.4
            code = _weighted(rng, ERROR_CODES)
            events.append(
                {
                    "type": "error",
                    "videoTime": video,
                    "ts": t,
                    "extra": {"code": code, "fatal": fatal},
                }
            )
            error_at = None
            if fatal:
                return events
    if rng.random() < 0.4:
        events.append({"type": "ended", "videoTime": video, "ts": t})
    return events


def _bot_events(rng: random.Random, start: datetime) -> list[dict]:
    """A crawler rendering the watch page: a play and a few heartbeats."""
    heartbeat = settings.HEARTBEAT_INTERVAL
    events = [{"type": "play", "videoTime": 0.0, "ts": start}]
    for n in range(1, rng.randint(1, 4) + 1):
        ts = start + timedelta(seconds=n * heartbeat)
        events.append({"type": "heartbeat", "videoTime": float(n * heartbeat), "ts": ts})
    return events


class _Traffic:
    """One stream's simulated audience over the demo period."""

    def __init__(self, *, key: str, audience: Audience, now: datetime) -> None:
        self.key = key
        self.audience = audience
        self.now = now
        self.rng = random.Random(f"{DEMO_SEED}:{key}")
        self.regulars = [_viewer_new(self.rng, audience) for _ in range(audience.regulars)]
        # Pareto loyalty: a few regulars watch most days, most only now and then.
        loyalty = [self.rng.paretovariate(1.3) for _ in self.regulars]
        self.cum_loyalty = [sum(loyalty[: n + 1]) for n in range(len(loyalty))]
        self.one_off: list[_Viewer] = []
        self.bots: list[_Viewer] = []
        self.viewings = 0

    def viewers(self) -> list[_Viewer]:
        return [v for v in (*self.regulars, *self.one_off, *self.bots) if v.events]

    def simulate(self) -> None:
        today = self.now.date()
        for offset in range(DEMO_DAYS - 1, -1, -1):
            day = today - timedelta(days=offset)
            self._day(day, offset)

    def _day(self, day, offset: int) -> None:
        rng, audience = self.rng, self.audience
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        progress = (DEMO_DAYS - 1 - offset) / (DEMO_DAYS - 1)
        weekend = day.weekday() >= 5
        level = audience.sessions * (0.55 + 0.65 * progress)
        if weekend:
            level *= audience.weekend
        launch = self.key == "launch-party"
        if launch and offset < LAUNCH_DAYS_AGO:  # the premiere's afterglow fades
            level *= 1 + 1.2 * math.exp(-(LAUNCH_DAYS_AGO - offset) / 3)
        sessions = max(4, round(level * rng.uniform(0.8, 1.2)))
        peak = audience.weekend_peak_hour if weekend else audience.peak_hour
        hours = demo_hour_weights(peak=peak, spread=audience.spread * (1.3 if weekend else 1.0))
        # Regulars who know the stream by now: the audience grows over the period.
        known = max(20, round(len(self.regulars) * (0.35 + 0.65 * progress)))
        for _ in range(sessions):
            hour = rng.choices(range(24), weights=hours)[0]
            start = day_start + timedelta(seconds=(hour + rng.random()) * 3600)
            minutes = self._minutes(audience.minutes)
            self._viewing(start, minutes, known=known, stress=1.0)
        if launch and offset == LAUNCH_DAYS_AGO:
            premiere = day_start + timedelta(hours=LAUNCH_HOUR)
            for _ in range(round(5 * level)):
                start = premiere + timedelta(seconds=rng.gauss(300, 900))
                minutes = self._minutes(PREMIERE_MINUTES)
                # The premiere drew newcomers, and its load showed in the player.
                self._viewing(start, minutes, known=len(self.regulars), stress=1.5, newcomer=0.5)
        if offset == 0:
            # A few viewers are watching right now: today is never empty, not even just
            # after midnight, and the live viewer count has someone to show.
            elapsed = (self.now - day_start).total_seconds()
            for _ in range(2):
                start = self.now - timedelta(seconds=rng.uniform(1, max(1, min(elapsed, 1200))))
                minutes = self._minutes(audience.minutes)
                self._viewing(max(start, day_start), minutes, known=known, stress=1.0)
        for _ in range(rng.choice([0, 1, 1, 2])):
            user_agent = _weighted(rng, BOT_USER_AGENTS)
            bot = _Viewer(
                client_id=f"bot-{rng.getrandbits(40):010x}",
                user_agent=user_agent,
                device=device_from_user_agent(user_agent),
                country="US",
                poor_connection=False,
                viewings=[],
                events=[],
            )
            start = day_start + timedelta(seconds=rng.uniform(0, DAY_SECONDS - 60))
            if start < self.now:
                bot.events = [e for e in _bot_events(rng, start) if e["ts"] <= self.now]
                self.bots.append(bot)

    def _minutes(self, lengths: list[tuple[int, float, float]]) -> float:
        _, low, high = self.rng.choices(lengths, weights=[w for w, _, _ in lengths])[0]
        return self.rng.uniform(low, high)

    def _viewing(
        self, start: datetime, minutes: float, *, known: int, stress: float, newcomer: float = 0.08
    ) -> None:
        if start >= self.now:
            return  # later today
        end = start + timedelta(minutes=minutes)
        viewer = self._viewer_free(start, end, known=known, newcomer=newcomer)
        viewer.viewings.append((start, end))
        events = _viewing_events(self.rng, viewer, start, minutes, stress=stress)
        viewer.events.extend(e for e in events if e["ts"] <= self.now)
        self.viewings += 1

    def _viewer_free(
        self, start: datetime, end: datetime, *, known: int, newcomer: float
    ) -> _Viewer:
        """A viewer not already watching then: viewings of one client closer than the
        session timeout would merge into one session."""
        rng = self.rng
        margin = timedelta(seconds=settings.SESSION_TIMEOUT + 60)
        if rng.random() >= newcomer:
            for _ in range(4):
                n = rng.choices(range(known), cum_weights=self.cum_loyalty[:known])[0]
                viewer = self.regulars[n]
                if all(end + margin < s or e + margin < start for s, e in viewer.viewings):
                    return viewer
        viewer = _viewer_new(rng, self.audience)
        self.one_off.append(viewer)
        return viewer


def _batches(viewer: _Viewer) -> Iterator[list[dict]]:
    """A viewer's events in time order, up to the ingestion limit per request."""
    events = sorted(viewer.events, key=lambda e: e["ts"])
    for i in range(0, len(events), MAX_EVENTS_PER_BATCH):
        yield events[i : i + MAX_EVENTS_PER_BATCH]


def seed_playback_demo(*, reset: bool = False) -> str:
    hls_note = _demo_hls_ensure()
    streams = _streams()
    if reset:
        Stream.objects.filter(pk__in=[s.pk for s in streams]).delete()
        streams = _streams()
    elif PlaybackEvent.objects.filter(stream__in=streams).exists():
        return f"{len(streams)} streams (traffic already loaded); {hls_note}"
    now = datetime.now(UTC).replace(microsecond=0)
    encoder = msgspec.json.Encoder()
    events = viewings = 0
    # One transaction: an interrupted seed leaves no half-loaded traffic behind (the next
    # run would take it for loaded), and SQLite commits once instead of per batch.
    with transaction.atomic():
        for stream in streams:
            traffic = _Traffic(key=stream.key, audience=AUDIENCES[stream.key], now=now)
            traffic.simulate()
            viewings += traffic.viewings
            for viewer in traffic.viewers():
                for batch in _batches(viewer):
                    # Sent a moment after its last event, as the SDK flushes.
                    received_at = min(now, batch[-1]["ts"] + timedelta(seconds=2))
                    body = encoder.encode(
                        {"streamId": stream.key, "clientId": viewer.client_id, "events": batch}
                    )
                    events += playback_batch_ingest(
                        body=body,
                        country=viewer.country,
                        device=viewer.device,
                        received_at=received_at,
                    ).ingested
    summary = stream_stats_recompute()
    aggregated = (
        f"{summary.sessions} sessions over {summary.stream_days} stream-days aggregated"
        if summary.ran
        else "aggregation left to the scheduled job (another run holds its lock)"
    )
    return (
        f"{len(streams)} streams, {events} events from {viewings} viewings over "
        f"{DEMO_DAYS} days; {aggregated}; {hls_note}"
    )
