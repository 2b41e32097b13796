"""In-memory view storage, for unit tests and the in-memory store."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.popo import POPOTrackingRecorder

from projections.encoding import deep_copy
from projections.ports import (
    AuditQuery,
    AuditRow,
    Document,
    Generations,
    GenerationSwitched,
    ListQuery,
    ListRow,
    ViewChange,
    ViewRecorder,
)


@dataclass
class _Rows:
    """One generation of a view."""

    documents: dict[str, Document] = field(default_factory=dict)
    audit: dict[int, AuditRow] = field(default_factory=dict)
    lists: dict[str, dict[str, ListRow]] = field(default_factory=dict)
    """Kind → entity id → row."""
    tracking: dict[str, int] = field(default_factory=dict)


@dataclass
class _Shared:
    """A view's generations, shared by its live recorder and the pinned ones."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    generations: Generations = field(default_factory=Generations)
    rows: dict[int, _Rows] = field(default_factory=lambda: {1: _Rows()})
    last: int = 1
    """The highest generation number handed out."""


class MemoryViewRecorder(POPOTrackingRecorder, ViewRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._shared = _Shared()

    @property
    def _rows(self) -> _Rows:
        shared = self._shared
        generation = self.generation if self.pinned else shared.generations.live
        return shared.rows.setdefault(generation, _Rows())

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        with self._shared.lock:
            live = self._shared.generations.live
            if not self.pinned and live != self.generation:
                raise GenerationSwitched(self.view_name, self.generation, live)
            rows = self._shared.rows.setdefault(self.generation, _Rows())
            _assert_past(rows, tracking)
            for key, body in change.documents.items():
                if body is None:
                    rows.documents.pop(key, None)
                else:  # a copy, as a database stores: the writer may go on changing its own
                    rows.documents[key] = deep_copy(body)
            for row in change.audit_rows:
                rows.audit[row.position] = row
            for list_key, list_row in change.list_rows.items():
                if list_row is None:
                    rows.lists.get(list_key[0], {}).pop(list_key[1], None)
                else:
                    rows.lists.setdefault(list_key[0], {})[list_key[1]] = ListRow(
                        list_row.kind,
                        list_row.entity_id,
                        list_row.account_id,
                        list_row.sort_key,
                        deep_copy(list_row.body),
                        dict(list_row.facets),
                    )
            rows.tracking[tracking.application_name] = tracking.notification_id

    def insert_tracking(self, tracking: Tracking) -> None:
        with self._shared.lock:
            rows = self._shared.rows.setdefault(self.generation, _Rows())
            _assert_past(rows, tracking)
            rows.tracking[tracking.application_name] = tracking.notification_id

    def max_tracking_id(self, application_name: str) -> int | None:
        with self._shared.lock:
            return self._rows.tracking.get(application_name)

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        """Copies, as a database would hand out: changing one must not change the view."""
        with self._shared.lock:
            documents = self._rows.documents
            return {k: copy.deepcopy(documents[k]) for k in keys if k in documents}

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        with self._shared.lock:
            return {k: copy.deepcopy(v) for k, v in sorted(self._rows.documents.items()) if k.startswith(prefix)}

    def select_audit(self, query: AuditQuery) -> list[AuditRow]:
        with self._shared.lock:
            rows = [r for _, r in sorted(self._rows.audit.items()) if r.position > query.after_position]
        rows = [r for r in rows if _matches(r, query)]
        return rows[: query.limit]

    def select_list(self, query: ListQuery) -> list[ListRow]:
        with self._shared.lock:
            rows = [row for row in self._rows.lists.get(query.kind, {}).values() if query.matches(row)]
        rows.sort(key=lambda row: (row.sort_key, row.entity_id))
        return [
            ListRow(r.kind, r.entity_id, r.account_id, r.sort_key, copy.deepcopy(r.body), r.facets)
            for r in rows[: query.limit]
        ]

    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        with self._shared.lock:
            rows = [r for r in self._rows.audit.values() if r.account_id == account_id and r.occurred_at <= moment]
        versions: dict[UUID, int] = {}
        for row in rows:
            versions[row.entity_id] = max(row.version, versions.get(row.entity_id, 0))
        return versions

    def reset(self, *, audit_rows: bool) -> None:
        with self._shared.lock:
            rows = self._shared.rows.setdefault(self.generation, _Rows())
            rows.documents.clear()
            rows.lists.clear()
            if audit_rows:
                rows.audit.clear()
            rows.tracking.clear()

    def generations(self) -> Generations:
        with self._shared.lock:
            return self._shared.generations

    def start_generation(self, *, fresh: bool = False) -> int:
        shared = self._shared
        with shared.lock:
            found = shared.generations
            if found.retired is not None:
                self.drop_generation(found.retired)
            if found.building is not None and not fresh:
                return found.building
            if found.building is not None:
                self.drop_generation(found.building)
            shared.last += 1
            shared.rows[shared.last] = _Rows()
            shared.generations = replace(shared.generations, building=shared.last)
            return shared.last

    def at_generation(self, generation: int) -> MemoryViewRecorder:
        pinned = copy.copy(self)
        pinned.generation, pinned.pinned = generation, True
        return pinned

    @contextmanager
    def take_over(self) -> Iterator[None]:
        """As a database transaction would: a block that fails leaves the generation as it was."""
        shared = self._shared
        with shared.lock:
            before = copy.deepcopy(shared.rows.get(self.generation, _Rows()))
            try:
                yield
            except BaseException:
                shared.rows[self.generation] = before
                raise
            shared.generations = Generations(live=self.generation, retired=shared.generations.live)

    def drop_generation(self, generation: int) -> None:
        shared = self._shared
        with shared.lock:
            found = shared.generations
            if generation == found.live:
                msg = f"generation {generation} of view {self.view_name} is live"
                raise ValueError(msg)
            shared.rows.pop(generation, None)
            shared.generations = replace(
                found,
                building=None if found.building == generation else found.building,
                retired=None if found.retired == generation else found.retired,
            )


def _assert_past(rows: _Rows, tracking: Tracking) -> None:
    stored = rows.tracking.get(tracking.application_name)
    if stored is not None and stored >= tracking.notification_id:
        msg = f"Tracking notification ID {tracking.notification_id} not greater than current max tracking ID {stored}"
        raise IntegrityError(msg)


def _matches(row: AuditRow, q: AuditQuery) -> bool:
    return (
        (q.account_id is None or row.account_id == q.account_id)
        and (q.entity_id is None or row.entity_id == q.entity_id)
        and (q.actor is None or row.actor == q.actor)
        and (q.event_type is None or row.event_type == q.event_type)
        and (q.since is None or row.occurred_at >= q.since)
        and (q.until is None or row.occurred_at < q.until)
    )
