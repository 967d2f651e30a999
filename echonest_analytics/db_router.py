"""Staff reads on a read replica (SPEC §13): the database router and the API mixin that
asks for it.

With `DATABASE_REPLICA_URL` set, settings add a `replica` database alias. A staff API
(`StaffReadsFromReplica`) marks its safe-method handlers as replica reads once the
request is authenticated and allowed: the user, token and session were read from the
primary, so a login made a moment ago counts. Everything else reads and writes on the
primary: ingestion, the jobs (the aggregator must see the batches it claims), the
admin, every write, and any read inside a transaction. Without the alias the router
sends everything to `default`.

A replica lags its primary by the replication delay (usually well under a second);
staff reports are built from aggregates that change every few minutes, so a report
can be that much older and nothing else notices.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.conf import settings
from django.db import connections

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class StaffReadsReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        if (
            _replica_reads.get()
            and replica_configured()
            and not connections["default"].in_atomic_block
        ):
            return REPLICA
        return "default"

    def db_for_write(self, model, **hints) -> str:
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, two copies of it

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == "default"  # the replica follows the primary's schema


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StaffReadsFromReplica:
    """Mixin for a DRF staff view: its GET/HEAD handler reads from the replica.

    Authentication, permissions and throttles (`initial`) run on the primary first. The
    mark is lifted when `dispatch` ends, however it ends (an exception that becomes a
    503 included), so it never outlives the request on the worker's thread.
    """

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in _SAFE_METHODS:
            self._replica_token = _replica_reads.set(True)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            token = self.__dict__.pop("_replica_token", None)
            if token is not None:
                _replica_reads.reset(token)
