"""The load the fault tests put on a live server: playback batches (100 events, a batchId,
one clientId per batch, so a batch's rows are countable) and telemetry batches (events
with uuids), posted by a background sender that records every answer."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .servers import Gunicorn

PLAYBACK_PATH = "/analytics/events"
TELEMETRY_PATH = "/api/analytics/event"
PLAYBACK_EVENTS = 100
TELEMETRY_EVENTS = 10


@dataclass
class Batch:
    kind: str  # "playback" or "telemetry"
    key: str  # the playback batchId (and clientId), or the telemetry batch's tag
    body: bytes
    uuids: list[str] = field(default_factory=list)


def playback_batch(stream_key: str, n: int) -> Batch:
    batch_id = str(uuid.uuid4())
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    events = [
        {
            "type": "play" if i == 0 else "heartbeat",
            "videoTime": 15.0 * i,
            "ts": (t0 + timedelta(seconds=15 * i)).isoformat(),
        }
        for i in range(PLAYBACK_EVENTS)
    ]
    body = {
        "streamId": stream_key,
        "clientId": f"f-{batch_id}",
        "batchId": batch_id,
        "events": events,
    }
    return Batch("playback", batch_id, json.dumps(body).encode())


def telemetry_batch(n: int) -> Batch:
    uuids = [str(uuid.uuid4()) for _ in range(TELEMETRY_EVENTS)]
    events = [
        {"event_type": "page_view", "user_id": f"u{n}", "feature": "faults", "uuid": u}
        for u in uuids
    ]
    return Batch("telemetry", uuids[0], json.dumps({"events": events}).encode(), uuids)


@dataclass
class Answer:
    batch: Batch
    status: int | None  # None: no HTTP answer at all (reset, refused, timeout)
    retry_after: str | None
    error: str = ""
    at: float = 0.0


class Sender:
    """Posts playback and telemetry batches in turn, one at a time per thread, until
    stopped or `limit` batches are sent; with `retry`, a refused batch is resent with the
    same body (same batchId / uuids) after its Retry-After, as the SDKs do."""

    def __init__(
        self,
        server: Gunicorn,
        stream_key: str,
        *,
        threads: int = 2,
        limit: int = 3000,
        retry: bool = False,
        retry_for: float = 60.0,
    ) -> None:
        self.server = server
        self.stream_key = stream_key
        self.limit = limit
        self.retry = retry
        self.retry_for = retry_for
        self.answers: list[Answer] = []
        self.accepted: list[Batch] = []  # each batch once, when it was answered 2xx
        self.given_up: list[Batch] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.count = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Sender:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 90) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=timeout)
        assert not any(t.is_alive() for t in self.threads), "a sender thread hangs"

    def answered(self) -> int:
        with self.lock:
            return len(self.answers)

    def _next(self) -> Batch | None:
        with self.lock:
            if self.count >= self.limit:
                return None
            self.count += 1
            n = self.count
        return playback_batch(self.stream_key, n) if n % 2 else telemetry_batch(n)

    def _post(self, batch: Batch) -> Answer:
        path = PLAYBACK_PATH if batch.kind == "playback" else TELEMETRY_PATH
        try:
            status, headers, _ = self.server.post_json(path, batch.body)
        except OSError as exc:
            return Answer(batch, None, None, f"{exc.__class__.__name__}: {exc}", time.monotonic())
        return Answer(batch, status, headers.get("retry-after"), at=time.monotonic())

    def _run(self) -> None:
        while not self.stopping.is_set():
            batch = self._next()
            if batch is None:
                return
            first_try = time.monotonic()
            while True:
                answer = self._post(batch)
                with self.lock:
                    self.answers.append(answer)
                if answer.status is not None and 200 <= answer.status < 300:
                    with self.lock:
                        self.accepted.append(batch)
                    break
                if not self.retry or time.monotonic() - first_try > self.retry_for:
                    with self.lock:
                        self.given_up.append(batch)
                    break
                delay = float(answer.retry_after) if answer.retry_after else 1.0
                time.sleep(min(delay, 10.0))
