"""Reading many entities' histories at once: what an as-of query needs.

An as-of loads every entity of an account (a large account has fifty or more) at a
version. Through ``eventsourcing``'s repository that is a snapshot query and an events
query per entity, and the account view's replay read the events again: on PostgreSQL
about 150 round trips per as-of, most of its time. Here PostgreSQL answers all the
snapshots in one query and all the events in another (each entity's range found
through the primary key, ``LATERAL`` per entity). SQLite and the memory store have
no round trips to save; they are read per entity through the library's recorder.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Composed, Identifier

Range = tuple[int, int]
"""Versions after the first and up to the second: ``(gt, lte)``."""


def latest_snapshots(recorder: AggregateRecorder, versions: Mapping[UUID, int]) -> dict[UUID, StoredEvent]:
    """Each entity's newest snapshot at or before its version (entities without one are left out)."""
    if not versions:
        return {}
    if isinstance(recorder, PostgresAggregateRecorder):
        return {UUID(str(row.originator_id)): row for row in _postgres_latest(recorder, versions)}
    found = {}
    for entity, version in versions.items():
        newest = recorder.select_events(entity, lte=version, desc=True, limit=1)
        if newest:
            found[entity] = newest[0]
    return found


def event_ranges(recorder: AggregateRecorder, ranges: Mapping[UUID, Range]) -> dict[UUID, list[StoredEvent]]:
    """Each entity's events in its range, in version order (an entity with none maps to ``[]``)."""
    histories: dict[UUID, list[StoredEvent]] = {entity: [] for entity in ranges}
    wanted = {entity: (gt, lte) for entity, (gt, lte) in ranges.items() if lte > gt}
    if not wanted:
        return histories
    if isinstance(recorder, PostgresAggregateRecorder):
        for row in _postgres_ranges(recorder, wanted):
            histories[UUID(str(row.originator_id))].append(row)
        return histories
    for entity, (gt, lte) in wanted.items():
        histories[entity] = list(recorder.select_events(entity, gt=gt, lte=lte))
    return histories


def _table(recorder: PostgresAggregateRecorder) -> Composed:
    return SQL("{0}.{1}").format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))


def _postgres_latest(recorder: PostgresAggregateRecorder, versions: Mapping[UUID, int]) -> list[StoredEvent]:
    statement = SQL(
        "SELECT s.originator_id, s.originator_version, s.topic, s.state "
        "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, lte) CROSS JOIN LATERAL ("
        "SELECT * FROM {0} t WHERE t.originator_id = w.id AND t.originator_version <= w.lte "
        "ORDER BY t.originator_version DESC LIMIT 1) s"
    ).format(_table(recorder))
    return _select(recorder, statement, [list(versions), list(versions.values())])


def _postgres_ranges(recorder: PostgresAggregateRecorder, ranges: Mapping[UUID, Range]) -> list[StoredEvent]:
    statement = SQL(
        "SELECT s.originator_id, s.originator_version, s.topic, s.state "
        "FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) AS w(id, gt, lte) CROSS JOIN LATERAL ("
        "SELECT * FROM {0} t WHERE t.originator_id = w.id AND t.originator_version > w.gt "
        "AND t.originator_version <= w.lte ORDER BY t.originator_version) s"
    ).format(_table(recorder))
    bounds = list(ranges.values())
    return _select(recorder, statement, [list(ranges), [gt for gt, _ in bounds], [lte for _, lte in bounds]])


def _select(recorder: PostgresAggregateRecorder, statement: Composed, params: list[object]) -> list[StoredEvent]:
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, params)
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]
