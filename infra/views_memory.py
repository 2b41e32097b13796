"""In-memory view storage, for unit tests and the in-memory store."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from projections.encoding import deep_copy
from projections.ports import AuditQuery, AuditRow, Document, ListQuery, ListRow, ViewChange, ViewRecorder


class MemoryViewRecorder(POPOTrackingRecorder, ViewRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._documents: dict[str, Document] = {}
        self._audit: dict[int, AuditRow] = {}
        self._lists: dict[str, dict[str, ListRow]] = {}
        """Kind → entity id → row."""

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        with self._database_lock:
            self._assert_tracking_uniqueness(tracking)
            for key, body in change.documents.items():
                if body is None:
                    self._documents.pop(key, None)
                else:  # a copy, as a database stores: the writer may go on changing its own
                    self._documents[key] = deep_copy(body)
            for row in change.audit_rows:
                self._audit[row.position] = row
            for list_key, list_row in change.list_rows.items():
                if list_row is None:
                    self._lists.get(list_key[0], {}).pop(list_key[1], None)
                else:
                    self._lists.setdefault(list_key[0], {})[list_key[1]] = ListRow(
                        list_row.kind,
                        list_row.entity_id,
                        list_row.account_id,
                        list_row.sort_key,
                        deep_copy(list_row.body),
                        dict(list_row.facets),
                    )
            self._insert_tracking(tracking)

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        """Copies, as a database would hand out: changing one must not change the view."""
        with self._database_lock:
            return {k: copy.deepcopy(self._documents[k]) for k in keys if k in self._documents}

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        with self._database_lock:
            return {k: copy.deepcopy(v) for k, v in sorted(self._documents.items()) if k.startswith(prefix)}

    def select_audit(self, query: AuditQuery) -> list[AuditRow]:
        with self._database_lock:
            rows = [r for _, r in sorted(self._audit.items()) if r.position > query.after_position]
        rows = [r for r in rows if _matches(r, query)]
        return rows[: query.limit]

    def select_list(self, query: ListQuery) -> list[ListRow]:
        with self._database_lock:
            rows = [row for row in self._lists.get(query.kind, {}).values() if query.matches(row)]
        rows.sort(key=lambda row: (row.sort_key, row.entity_id))
        return [
            ListRow(r.kind, r.entity_id, r.account_id, r.sort_key, copy.deepcopy(r.body), r.facets)
            for r in rows[: query.limit]
        ]

    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        with self._database_lock:
            rows = [r for r in self._audit.values() if r.account_id == account_id and r.occurred_at <= moment]
        versions: dict[UUID, int] = {}
        for row in rows:
            versions[row.entity_id] = max(row.version, versions.get(row.entity_id, 0))
        return versions

    def reset(self, *, audit_rows: bool) -> None:
        with self._database_lock:
            self._documents.clear()
            self._lists.clear()
            if audit_rows:
                self._audit.clear()
            self._max_tracking_ids.clear()


def _matches(row: AuditRow, q: AuditQuery) -> bool:
    return (
        (q.account_id is None or row.account_id == q.account_id)
        and (q.entity_id is None or row.entity_id == q.entity_id)
        and (q.actor is None or row.actor == q.actor)
        and (q.event_type is None or row.event_type == q.event_type)
        and (q.since is None or row.occurred_at >= q.since)
        and (q.until is None or row.occurred_at < q.until)
    )
