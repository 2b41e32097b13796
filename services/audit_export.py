"""The audit export: the audit trail of an account (or of everything) between two
moments, each row with the hash-chain link it is bound to, as JSON Lines or CSV.

An auditor checks a row outside the system by recomputing
``SHA-256(previous_link ‖ "position␟entity␟version␟topic␟" ‖ state_sha256)``
(bytes from hex; ␟ is U+001F; the entity id written as 32 hex digits, no dashes)
and comparing it with ``link``; in an export of everything,
each row's ``previous_link`` is also the ``link`` of the row before. The event
contents themselves are not copied: ``state_sha256`` binds them.

With the transparency log (``services.transparency``), the export is cut at a
signed checkpoint (the caller saves its note beside the rows): each row carries
its ``leaf_index`` in the Merkle tree, the checkpoint's ``tree_size`` and its
``inclusion_proof`` (base64 hashes, RFC 9162), so a slice of the export is
provable on its own, against the checkpoint and the log's public key
(``docs/verify_audit_log.py export``), even where the linear chain has gaps.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from infra.hash_chain import chain_entries
from projections.encoding import dumps, format_time
from projections.ports import AuditQuery, AuditRow
from services.projector import Projector
from services.transparency import TransparencyLog, b64

Format = Literal["jsonl", "csv"]
PAGE = 1_000
CHAIN_COLUMNS = ("topic", "state_sha256", "previous_link", "link")
TREE_COLUMNS = ("leaf_index", "tree_size", "inclusion_proof")
COLUMNS = (
    "position", "occurred_at", "actor", "account_id", "entity_type", "entity_id", "version", "event_type",
    "changes", "reason", "correlation_id", "causation_id", "topic", "state_sha256", "previous_link", "link",
    *TREE_COLUMNS,
)  # fmt: skip


def export_rows(
    projector: Projector,
    *,
    account_id: UUID | None,
    since: datetime | None,
    until: datetime | None,
    transparency: TransparencyLog | None = None,
    tree_size: int = 0,
) -> Iterator[dict[str, Any]]:
    """Audit rows with their chain entries (and, given the log, their leaf and inclusion proof in
    the tree of ``tree_size``, a checkpoint's), in position order, a page at a time."""
    cursor = 0
    while True:
        query = AuditQuery(account_id=account_id, since=since, until=until, after_position=cursor, limit=PAGE)
        rows: list[AuditRow] = projector.view("audit_trail").select_audit(query)
        if not rows:
            return
        entries = chain_entries(projector.app.recorder, [r.position for r in rows])
        leaves = transparency.inclusion_proofs([r.position for r in rows], tree_size) if transparency else {}
        for row in rows:
            entry = entries.get(row.position)
            leaf_index, proof = leaves.get(row.position, (None, None))
            yield {
                "position": row.position,
                "occurred_at": format_time(row.occurred_at),
                "actor": row.actor,
                "account_id": None if row.account_id is None else str(row.account_id),
                "entity_type": row.entity_type,
                "entity_id": str(row.entity_id),
                "version": row.version,
                "event_type": row.event_type,
                "changes": list(row.changes),
                "reason": row.reason,
                "correlation_id": str(row.correlation_id),
                "causation_id": None if row.causation_id is None else str(row.causation_id),
                **({k: asdict(entry)[k] for k in CHAIN_COLUMNS} if entry else dict.fromkeys(CHAIN_COLUMNS)),
                "leaf_index": leaf_index,
                "tree_size": tree_size if proof is not None else None,
                "inclusion_proof": None if proof is None else [b64(p) for p in proof],
            }
        cursor = rows[-1].position


def render(rows: Iterator[dict[str, Any]], fmt: Format) -> Iterator[str]:
    """Lines of JSON, or CSV with a header row (``changes`` as a JSON cell)."""
    if fmt == "jsonl":
        for row in rows:
            yield dumps(row) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        proof = row.get("inclusion_proof")
        writer.writerow(
            {
                **row,
                "changes": json.dumps(row["changes"], ensure_ascii=False, sort_keys=True),
                "inclusion_proof": None if proof is None else json.dumps(proof),
            }
        )
        yield buffer.getvalue()
