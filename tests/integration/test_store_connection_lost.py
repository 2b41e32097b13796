"""A commit whose connection is lost while its reads are judged is refused as the stale
read it was judged to be, never with psycopg's internal ``Rollback``, which the API
answered as a 500 (seen in the reliability suite's repeated PostgreSQL restarts)."""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from infra.read_check import ReadCheck, StaleRead
from infra.settings import Settings
from services.app import GamApplication

pytestmark = pytest.mark.postgres


class WatchingNothing:
    """A watch is what sends a commit down the path that judges reads in Python."""

    def __call__(self, entity: UUID, version: int, topic: str) -> bool | None:
        return False

    def stale_given(self, first: StoredEvent) -> bool:
        return False


class JudgedStaleAfterTheConnectionWent(ReadCheck):
    """A read check that finds the decision stale, after the store's connection died
    under it (its one query failed, as during a database restart)."""

    def verify(self, first_position: int, select_between: Any, select_first: Any) -> None:
        with contextlib.suppress(psycopg.Error):
            select_first([uuid4()])
        raise StaleRead(UUID(int=1), 1, 2)


def test_a_stale_read_met_with_a_lost_connection_is_refused_as_a_stale_read(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = GamApplication(postgres_settings.eventsourcing_env())
    recorder = app.recorder
    conninfo = postgres_settings.postgres_conninfo()
    select_first = recorder._select_first  # type: ignore[attr-defined]

    def connection_lost(conn: psycopg.Connection[Any], entities: list[UUID]) -> Any:
        with psycopg.connect(conninfo, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return select_first(conn, entities)

    monkeypatch.setattr(recorder, "_select_first", connection_lost)
    check = JudgedStaleAfterTheConnectionWent(known=0, versions={}, watched=WatchingNothing())
    event = StoredEvent(uuid4(), 1, "domain.deal:Deal.Opened", b"{}")
    with pytest.raises(StaleRead):
        recorder.insert_events([event], reads=check)
    monkeypatch.undo()
    assert recorder.select_events(event.originator_id) == []  # nothing stored
    app.close()
