"""The composition root: every process of gam (the CLI, the API, the views'
follower, the relay, the benchmarks and the tests) builds what it runs here, from
one :class:`~infra.settings.Settings`.

Adapters are chosen by the typed settings (``settings.store``), never by reading
environment strings elsewhere; parts a process does not use are never opened
(the API opens the idempotency store, ``gam relay`` a Kafka producer, nobody
else), and :meth:`Runtime.close` closes exactly what was opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import psycopg

from infra.access_log import KEY_FETCH_TABLE, SubjectAccessLog, access_log_for
from infra.idempotency import IdempotencyStore, idempotency_for
from infra.personal_keys import PersonalKeys, keys_for, move_keys_out_of_the_database
from infra.settings import Settings
from infra.views_lease import ViewsLease
from services.app import GamApplication
from services.bus import MessageBus
from services.handlers import bus_for
from services.personal_data_guard import PersonalDataGuard
from services.projector import Projector
from services.read_models import ReadModels
from services.transparency import TransparencyLog

T = TypeVar("T")


@dataclass
class Runtime:
    """One process's gam: the application and its bus, and, opened on first use,
    the views, the idempotency store, the subject-access and key-fetch records and the
    views lease."""

    settings: Settings
    app: GamApplication
    views: Sequence[str] | None = None
    """Which views this process opens (None: all of them)."""
    _opened: list[Any] = field(default_factory=list, repr=False)

    @property
    def bus(self) -> MessageBus:
        return bus_for(self.app)

    @property
    def personal_keys(self) -> PersonalKeys:
        return self.app.personal_keys

    @cached_property
    def projector(self) -> Projector:
        return self._opening(Projector.open(self.app, self.settings, self.views))

    @cached_property
    def reads(self) -> ReadModels:
        return ReadModels.from_settings(self.projector, self.settings)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        return self._opening(idempotency_for(self.settings))

    @cached_property
    def access_log(self) -> SubjectAccessLog:
        """The record of subject-access requests (who asked about whom, why, when)."""
        return self._opening(access_log_for(self.settings))

    @cached_property
    def key_fetch_log(self) -> SubjectAccessLog:
        """The record of personal keys handed to downstream services (who, whose, why, when)."""
        return self._opening(access_log_for(self.settings, KEY_FETCH_TABLE))

    @cached_property
    def transparency(self) -> TransparencyLog:
        """The Merkle tree over the events, its signing key and checkpoint publishers."""
        return self._opening(TransparencyLog.open(self.app, self.settings))

    @cached_property
    def lease(self) -> ViewsLease:
        return self._opening(ViewsLease(self.settings), close="release")

    def open(self, *parts: str) -> Runtime:
        """Open these parts now rather than on first use (a server, before it serves)."""
        for part in parts:
            getattr(self, part)
        return self

    def _opening(self, part: T, close: str = "close") -> T:
        self._opened.append(getattr(part, close))
        return part

    def close(self) -> None:
        """Close what this runtime opened, the last opened first, then the application."""
        while self._opened:
            self._opened.pop()()
        self.app.close()


def bootstrap(settings: Settings | None = None, *, views: Sequence[str] | None = None) -> Runtime:
    """The runtime of one process, from ``settings`` (the ``GAM_*`` environment by default)."""
    settings = settings or Settings()
    if settings.store == "postgres":
        reach_postgres(settings)
    keys = keys_for(settings)
    move_keys_out_of_the_database(settings, keys)
    app = GamApplication(
        settings.eventsourcing_env(),
        snapshot_interval=settings.snapshot_interval,
        personal_keys=keys,
        approver_roles=frozenset(settings.approver_roles),
    )
    bus_for(app).guard = PersonalDataGuard(app, settings.personal_data_guard)
    return Runtime(settings, app, views)


def reach_postgres(settings: Settings) -> None:
    """Connect once before the pools do: an unreachable database then fails at once with
    libpq's own reason ("connection refused", "no such file" for a socket) instead of
    each pool retrying quietly until its timeout."""
    with psycopg.connect(settings.postgres_conninfo()):
        pass
