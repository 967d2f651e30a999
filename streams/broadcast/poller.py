"""The listener poller (SPEC §9.2): every 30 s one round over every encoder of every
station. It asks the servers concurrently (one request per Icecast server, shared by its
mounts; one per Shoutcast sid; Icecast's client list per mount with admin credentials),
each with a short timeout and the whole round bounded, so one slow or dead server never
holds up the rest. Then, per encoder: one `ListenerSnapshot` (all of a round share
`round_at`), the source up/down log, listener sessions from the client list, plays
from title changes (stations with `plays_from_poller`), and the `stream_down` alert.

Only the HTTP requests run in the thread pool; every database write happens in the
calling thread after the answers are in. No IP, password or credential-bearing URL is
ever stored or logged: listeners are `identity_hash`es.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from echonest_analytics.locks import job_lock
from echonest_analytics.metrics import poller_failures_record
from streams.models import StreamProvider

from .alerts import alert_open, alert_resolve
from .encoder_status import (
    SOURCE_DOWN,
    ListenerClient,
    MalformedAnswer,
    SourceReading,
    icecast_listclients_parse,
    icecast_status_parse,
    shoutcast_stats_parse,
)
from .listener_rollup import listener_hours_follow
from .log import log_entry_write
from .models import (
    ENCODER_PROVIDERS,
    Alert,
    BroadcastLogEntry,
    ListenerSession,
    ListenerSnapshot,
    LogCategory,
    LogLevel,
    Play,
    Song,
    Station,
)
from .secrets import identity_hash

POLL_LOCK = "broadcast.poll-listeners"
POLL_INTERVAL_SECONDS = 30
# A listener seen again within two poll intervals is still in the same session.
SESSION_GAP = timedelta(seconds=2 * POLL_INTERVAL_SECONDS)
# `stream_down` opens once an encoder has been down in every poll for more than this.
STREAM_DOWN_AFTER = timedelta(seconds=30)
# Whatever has not answered by then counts as unreachable, so a round always ends well
# inside its interval (and before beat's 25 s expiry makes the next one stale).
ROUND_BUDGET_SECONDS = 20.0
POLL_WORKERS = 32
MAX_ANSWER_BYTES = 2 * 1024 * 1024
USER_AGENT = "EchoNest-ListenerPoller/1.0"

UNREACHABLE = "server_unreachable"
MALFORMED = "malformed_answer"
ANSWERING_AGAIN = "server_answering"
_POLL_EVENTS = (UNREACHABLE, MALFORMED, ANSWERING_AGAIN)


@dataclass
class PollSummary:
    round_at: datetime | None = None
    skipped: str = ""
    encoders: int = 0
    sources_up: int = 0
    failures: int = 0
    listeners: int = 0
    sessions_started: int = 0
    plays_started: int = 0
    plays_ended: int = 0
    alerts_opened: int = 0
    alerts_resolved: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["round_at"] = self.round_at.isoformat() if self.round_at else None
        return data


# --- asking the servers --------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    body: bytes = b""
    elapsed: float = 0.0  # seconds from the round's start to the answer
    failure: str = ""  # UNREACHABLE or MALFORMED
    detail: str = ""


def _base_url(encoder: StreamProvider) -> str:
    url = str((encoder.config or {}).get("url") or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return url


def _safe_url(url: str) -> str:
    """The URL without any user:password@ part, for log messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _http_get(
    url: str, *, params: dict, auth: tuple[str, str] | None, timeout: float, started: float
) -> _Answer:
    try:
        with requests.get(
            url,
            params=params,
            auth=auth,
            timeout=(timeout, timeout),
            stream=True,
            allow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as response:
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
            status = response.status_code
    # urllib3's errors surface unwrapped from the body read (a server that sends its
    # headers, then stalls); ValueError from an odd configured URL.
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        return _Answer(
            elapsed=time.monotonic() - started, failure=UNREACHABLE, detail=type(exc).__name__
        )
    elapsed = time.monotonic() - started
    if status != 200:
        return _Answer(elapsed=elapsed, failure=MALFORMED, detail=f"HTTP {status}")
    if len(body) > MAX_ANSWER_BYTES:
        return _Answer(elapsed=elapsed, failure=MALFORMED, detail="answer too large")
    return _Answer(body=body, elapsed=elapsed)


@dataclass
class _Server:
    """One request that answers for one or more encoders."""

    provider: str
    base_url: str
    encoders: list[StreamProvider] = field(default_factory=list)

    def status_request(self) -> tuple[str, dict]:
        if self.provider == StreamProvider.Provider.ICECAST:
            return f"{self.base_url}/status-json.xsl", {}
        return f"{self.base_url}/stats", {"sid": self.encoders[0].external_id, "json": "1"}


def _servers(encoders: list[StreamProvider]) -> tuple[list[_Server], list[StreamProvider]]:
    """Group the encoders by the request that answers for them; also the encoders
    without a usable server URL."""
    servers: dict[tuple, _Server] = {}
    unconfigured = []
    for encoder in encoders:
        base = _base_url(encoder)
        if not base:
            unconfigured.append(encoder)
            continue
        if encoder.provider == StreamProvider.Provider.ICECAST:
            key: tuple = (encoder.provider, base)
        else:
            key = (encoder.provider, base, encoder.external_id)
        servers.setdefault(key, _Server(provider=encoder.provider, base_url=base))
        servers[key].encoders.append(encoder)
    return list(servers.values()), unconfigured


def _admin_auth(encoder: StreamProvider) -> tuple[str, str] | None:
    config = encoder.config or {}
    user, password = config.get("admin_user"), config.get("admin_password")
    return (str(user), str(password)) if user and password else None


@dataclass
class _EncoderReading:
    encoder: StreamProvider
    reading: SourceReading
    elapsed: float
    failure: str = ""
    detail: str = ""
    clients: list[ListenerClient] | None = None
    clients_failure: str = ""


def _readings_fetch(encoders: list[StreamProvider]) -> list[_EncoderReading]:
    """Ask every server once (concurrently, bounded) and read each encoder's state."""
    timeout = float(settings.BROADCAST_POLL_TIMEOUT)
    servers, unconfigured = _servers(encoders)
    results: dict[int, _EncoderReading] = {
        e.pk: _EncoderReading(e, SOURCE_DOWN, 0.0, UNREACHABLE, "no server URL configured")
        for e in unconfigured
    }
    started = time.monotonic()
    # A status answer and then a client list, each within connect + read timeouts, with
    # room to spare; never past the round budget.
    deadline = started + min(ROUND_BUDGET_SECONDS, max(5 * timeout, 1.0))
    executor = ThreadPoolExecutor(
        max_workers=max(1, min(POLL_WORKERS, len(servers))), thread_name_prefix="listener-poll"
    )
    pending: dict[Future, tuple[str, _Server | StreamProvider]] = {}

    def submit(kind: str, target, url: str, params: dict, auth) -> None:
        future = executor.submit(
            _http_get, url, params=params, auth=auth, timeout=timeout, started=started
        )
        pending[future] = (kind, target)

    for server in servers:
        url, params = server.status_request()
        submit("status", server, url, params, None)
    try:
        while pending:
            done, _ = wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED
            )
            if not done:
                break
            for future in done:
                kind, target = pending.pop(future)
                answer = future.result()
                if kind == "status":
                    for reading in _server_readings(target, answer):
                        results[reading.encoder.pk] = reading
                        auth = _admin_auth(reading.encoder)
                        if (
                            reading.reading.source_up
                            and auth
                            and target.provider == StreamProvider.Provider.ICECAST
                        ):
                            submit(
                                "clients",
                                reading.encoder,
                                f"{target.base_url}/admin/listclients",
                                {"mount": reading.encoder.external_id},
                                auth,
                            )
                else:
                    _clients_read(results[target.pk], answer)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    late = time.monotonic() - started
    for kind, target in pending.values():
        if kind == "status":
            for encoder in target.encoders:
                results[encoder.pk] = _EncoderReading(
                    encoder, SOURCE_DOWN, late, UNREACHABLE, "no answer within the round"
                )
        else:
            results[target.pk].clients_failure = UNREACHABLE
    return [results[e.pk] for e in encoders]


def _server_readings(server: _Server, answer: _Answer) -> list[_EncoderReading]:
    def every(failure: str, detail: str) -> list[_EncoderReading]:
        return [
            _EncoderReading(e, SOURCE_DOWN, answer.elapsed, failure, detail)
            for e in server.encoders
        ]

    if answer.failure:
        return every(answer.failure, answer.detail)
    try:
        if server.provider == StreamProvider.Provider.ICECAST:
            by_mount = icecast_status_parse(answer.body)
            return [
                _EncoderReading(e, by_mount.get(e.external_id, SOURCE_DOWN), answer.elapsed)
                for e in server.encoders
            ]
        return [
            _EncoderReading(e, shoutcast_stats_parse(answer.body), answer.elapsed)
            for e in server.encoders
        ]
    except MalformedAnswer as exc:
        return every(MALFORMED, str(exc))


def _clients_read(result: _EncoderReading, answer: _Answer) -> None:
    if answer.failure:
        result.clients_failure = answer.failure
        return
    try:
        result.clients = icecast_listclients_parse(answer.body, mount=result.encoder.external_id)
    except MalformedAnswer:
        result.clients_failure = MALFORMED


# --- recording a round ---------------------------------------------------------------


def song_external_id_from_title(title: str) -> str:
    """A title-only song's id: `title:` + a short hash of the normalised "artist - title"
    (case, accents of spacing and surrounding blanks ignored), stable across polls."""
    normalised = re.sub(r"\s+", " ", title).strip().casefold()
    return "title:" + hashlib.sha256(normalised.encode()).hexdigest()[:16]


def _song_for_title(*, station: Station, title: str) -> Song:
    artist, sep, name = title.partition(" - ")
    if not sep:
        artist, name = "", title
    song, _ = Song.objects.get_or_create(
        station=station,
        external_id=song_external_id_from_title(title),
        defaults={"title": name.strip()[:500], "artist": artist.strip()[:500]},
    )
    return song


def _play_end(play: Play, *, at: datetime) -> None:
    play.played_ms = max(0, (at - play.started_at) // timedelta(milliseconds=1))
    play.save(update_fields=["played_ms"])


def _plays_follow(
    *,
    encoder: StreamProvider,
    station: Station,
    reading: SourceReading,
    taken_at: datetime,
    previous: ListenerSnapshot | None,
    station_total: int,
    summary: PollSummary,
) -> None:
    """A title change ends the encoder's open play and starts the next; the source going
    down (or the title going blank) only ends it."""
    open_play = (
        Play.objects.filter(encoder=encoder, played_ms__isnull=True)
        .select_related("song")
        .order_by("-started_at")
        .first()
    )
    title = reading.title if reading.source_up else ""
    song_id = song_external_id_from_title(title) if title else ""
    if open_play is not None and open_play.song.external_id == song_id:
        return
    if open_play is not None:
        # After a gap in polling the change happened somewhere unobserved: end the play
        # at the last poll that still saw it rather than crediting it the gap.
        ended_at = taken_at
        if previous is not None and taken_at - previous.taken_at > SESSION_GAP:
            ended_at = max(previous.taken_at, open_play.started_at)
        _play_end(open_play, at=ended_at)
        summary.plays_ended += 1
    if title:
        Play.objects.create(
            station=station,
            song=_song_for_title(station=station, title=title),
            started_at=taken_at,
            listeners_at_start=station_total,
            source=Play.Source(encoder.provider),
            encoder=encoder,
        )
        summary.plays_started += 1


def _sessions_follow(
    *,
    encoder: StreamProvider,
    station: Station,
    clients: list[ListenerClient],
    taken_at: datetime,
    summary: PollSummary,
) -> None:
    """Extend each listener's open session (seen within SESSION_GAP) or start one from
    the server's connected-for seconds, never before that listener's previous session."""
    connected: dict[str, ListenerClient] = {}
    for client in clients:
        listener = identity_hash(station=station, ip=client.ip, user_agent=client.user_agent)
        known = connected.get(listener)
        if known is None or client.connected_seconds > known.connected_seconds:
            connected[listener] = client
    if not connected:
        return
    open_ids = set(
        ListenerSession.objects.filter(
            encoder=encoder,
            listener__in=connected,
            last_seen_at__gte=taken_at - SESSION_GAP,
            last_seen_at__lte=taken_at,
        ).values_list("listener", flat=True)
    )
    if open_ids:
        ListenerSession.objects.filter(
            encoder=encoder,
            listener__in=open_ids,
            last_seen_at__gte=taken_at - SESSION_GAP,
            last_seen_at__lte=taken_at,
        ).update(last_seen_at=taken_at)
    new_ids = [listener for listener in connected if listener not in open_ids]
    if not new_ids:
        return
    earlier = dict(
        ListenerSession.objects.filter(encoder=encoder, listener__in=new_ids)
        .values("listener")
        .annotate(last=Max("last_seen_at"))
        .values_list("listener", "last")
    )
    sessions = []
    for listener in new_ids:
        client = connected[listener]
        started_at = taken_at - timedelta(seconds=client.connected_seconds)
        if listener in earlier:
            started_at = max(started_at, min(earlier[listener], taken_at))
        sessions.append(
            ListenerSession(
                encoder=encoder,
                listener=listener,
                client_ref=client.client_ref,
                started_at=started_at,
                last_seen_at=taken_at,
            )
        )
    ListenerSession.objects.bulk_create(sessions)
    summary.sessions_started += len(sessions)


def _log_once(
    *,
    station: Station,
    subject: str,
    event: str,
    family: tuple[str, ...],
    level: str,
    message: str,
    metadata: dict,
    at: datetime,
) -> None:
    """Log `event` unless it is the encoder's latest of its `family` already: a server
    down for hours is one entry when it fails and one when it answers again, not one
    every 30 s."""
    latest = (
        BroadcastLogEntry.objects.filter(
            station=station, category=LogCategory.STREAM, encoder=subject, event__in=family
        )
        .order_by("-timestamp", "-id")
        .values_list("event", flat=True)
        .first()
    )
    if latest == event:
        return
    if event in (ANSWERING_AGAIN, "listclients_answering") and latest is None:
        return  # nothing had failed
    log_entry_write(
        station=station,
        level=level,
        category=LogCategory.STREAM,
        event=event,
        message=message,
        metadata=metadata,
        encoder=subject,
        timestamp=at,
    )


def _down_since(*, encoder: StreamProvider, round_at: datetime) -> datetime | None:
    """The round of the first down snapshot since the encoder was last up."""
    snapshots = ListenerSnapshot.objects.filter(encoder=encoder, round_at__lte=round_at)
    last_up = (
        snapshots.filter(source_up=True)
        .order_by("-taken_at")
        .values_list("taken_at", flat=True)
        .first()
    )
    downs = snapshots.filter(source_up=False)
    if last_up is not None:
        downs = downs.filter(taken_at__gt=last_up)
    return downs.order_by("taken_at").values_list("round_at", flat=True).first()


def _encoder_round_record(
    *,
    result: _EncoderReading,
    station: Station,
    round_at: datetime,
    previous: ListenerSnapshot | None,
    station_total: int,
    stream_down_open: bool,
    summary: PollSummary,
) -> None:
    encoder, reading = result.encoder, result.reading
    taken_at = round_at + timedelta(seconds=result.elapsed)
    subject = encoder.external_id[:200]
    server = _safe_url(_base_url(encoder)) or "(no URL)"
    ListenerSnapshot.objects.create(
        encoder=encoder,
        taken_at=taken_at,
        round_at=round_at,
        listeners=reading.listeners,
        server_peak=reading.server_peak,
        source_up=reading.source_up,
        bitrate=reading.bitrate,
        title=reading.title[:500],
    )
    if reading.source_up:
        summary.sources_up += 1
        summary.listeners += reading.listeners

    if result.failure:
        summary.failures += 1
        unreachable = result.failure == UNREACHABLE
        _log_once(
            station=station,
            subject=subject,
            event=result.failure,
            family=_POLL_EVENTS,
            level=LogLevel.ERROR if unreachable else LogLevel.WARN,
            message=(
                f"{encoder.get_provider_display()} server {server} "
                + ("did not answer" if unreachable else "gave an answer the poller cannot read")
                + f" ({result.detail}); counted as source down."
            ),
            metadata={"server": server, "detail": result.detail, "provider": encoder.provider},
            at=taken_at,
        )
    elif previous is not None and not previous.source_up:
        _log_once(
            station=station,
            subject=subject,
            event=ANSWERING_AGAIN,
            family=_POLL_EVENTS,
            level=LogLevel.INFO,
            message=f"{encoder.get_provider_display()} server {server} answers again.",
            metadata={"server": server, "provider": encoder.provider},
            at=taken_at,
        )

    if previous is not None and previous.source_up != reading.source_up:
        log_entry_write(
            station=station,
            level=LogLevel.INFO if reading.source_up else LogLevel.WARN,
            category=LogCategory.STREAM,
            event="source_up" if reading.source_up else "source_down",
            message=f"Source on {subject} is {'up' if reading.source_up else 'down'}.",
            metadata={"server": server, "provider": encoder.provider},
            encoder=subject,
            timestamp=taken_at,
        )

    if result.clients is not None:
        _sessions_follow(
            encoder=encoder,
            station=station,
            clients=result.clients,
            taken_at=taken_at,
            summary=summary,
        )
    if _admin_auth(encoder) and reading.source_up:
        failed = result.clients_failure
        _log_once(
            station=station,
            subject=subject,
            event="listclients_failed" if failed else "listclients_answering",
            family=("listclients_failed", "listclients_answering"),
            level=LogLevel.WARN if failed else LogLevel.INFO,
            message=(
                f"The client list of {subject} on {server} could not be read ({failed}); "
                "listener sessions are not followed meanwhile."
                if failed
                else f"The client list of {subject} on {server} is read again."
            ),
            metadata={"server": server, "detail": failed},
            at=taken_at,
        )

    if station.plays_from_poller:
        _plays_follow(
            encoder=encoder,
            station=station,
            reading=reading,
            taken_at=taken_at,
            previous=previous,
            station_total=station_total,
            summary=summary,
        )

    if reading.source_up:
        if stream_down_open:
            alert_resolve(
                station=station, kind=Alert.Kind.STREAM_DOWN, subject=subject, at=round_at
            )
            summary.alerts_resolved += 1
    elif not stream_down_open:
        since = _down_since(encoder=encoder, round_at=round_at)
        if since is not None and round_at - since > STREAM_DOWN_AFTER:
            opened = alert_open(
                station=station,
                kind=Alert.Kind.STREAM_DOWN,
                subject=subject,
                message=f"Stream {subject} of {station} down since {since:%Y-%m-%d %H:%M:%S} UTC.",
                at=round_at,
            )
            summary.alerts_opened += opened is not None


def _previous_snapshots(
    encoders: list[StreamProvider], *, round_at: datetime
) -> dict[int, ListenerSnapshot]:
    """Each encoder's latest snapshot before this round, in two queries."""
    latest = (
        ListenerSnapshot.objects.filter(encoder=OuterRef("pk"), round_at__lt=round_at)
        .order_by("-taken_at")
        .values("pk")[:1]
    )
    pairs = (
        StreamProvider.objects.filter(pk__in=[e.pk for e in encoders])
        .annotate(snapshot_id=Subquery(latest))
        .values_list("pk", "snapshot_id")
    )
    by_encoder = {pk: snapshot_id for pk, snapshot_id in pairs if snapshot_id}
    snapshots = ListenerSnapshot.objects.in_bulk(list(by_encoder.values()))
    return {pk: snapshots[snapshot_id] for pk, snapshot_id in by_encoder.items()}


def _round_poll(*, round_at: datetime) -> PollSummary:
    started = time.monotonic()
    summary = PollSummary(round_at=round_at)
    # An encoder whose config says `"poll": false` keeps its history but is not asked.
    encoders = [
        encoder
        for encoder in StreamProvider.objects.filter(
            provider__in=ENCODER_PROVIDERS, stream__station__isnull=False
        )
        .select_related("stream__station")
        .order_by("pk")
        if (encoder.config or {}).get("poll", True) is not False
    ]
    # One Station object per station, so a listener secret made on first use is made once.
    stations: dict[int, Station] = {}
    for encoder in encoders:
        stations.setdefault(encoder.stream.station.pk, encoder.stream.station)
    summary.encoders = len(encoders)
    if not encoders:
        return summary

    readings = _readings_fetch(encoders)

    station_totals: dict[int, int] = defaultdict(int)
    for result in readings:
        station_totals[result.encoder.stream.station.pk] += result.reading.listeners
    previous = _previous_snapshots(encoders, round_at=round_at)
    stream_down_open = set(
        Alert.objects.filter(
            station__in=stations, kind=Alert.Kind.STREAM_DOWN, resolved_at__isnull=True
        ).values_list("station_id", "subject")
    )
    for result in readings:
        station = stations[result.encoder.stream.station.pk]
        with transaction.atomic():
            _encoder_round_record(
                result=result,
                station=station,
                round_at=round_at,
                previous=previous.get(result.encoder.pk),
                station_total=station_totals[station.pk],
                stream_down_open=(station.pk, result.encoder.external_id[:200]) in stream_down_open,
                summary=summary,
            )
    poller_failures_record(
        (stations[r.encoder.stream.station.pk].key, r.encoder.external_id[:200], r.failure)
        for r in readings
        if r.failure
    )
    listener_hours_follow(stations=list(stations.values()), now=round_at)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def listeners_poll(*, now: datetime | None = None) -> PollSummary:
    """One poll round over every encoder (SPEC §9.2); skipped while another round runs.
    `now` is the round's instant (tests pass a clock; answers are timed from it)."""
    with job_lock(POLL_LOCK, ttl=2 * POLL_INTERVAL_SECONDS) as acquired:
        if not acquired:
            return PollSummary(skipped="another poll round holds the lock")
        return _round_poll(round_at=now or timezone.now())
