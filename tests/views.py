"""Helpers to compare whole views."""

from __future__ import annotations

from typing import Any

from projections.ports import AuditQuery
from services.projector import Projector

EVERYTHING = 10**9


def dump_views(projector: Projector) -> dict[str, Any]:
    """Every document and audit row of every view, comparable with ==."""
    return {
        name: {
            "documents": projection.view.documents_with_prefix(""),
            "audit": projection.view.select_audit(AuditQuery(limit=EVERYTHING)) if projection.writes_audit_rows else [],
        }
        for name, projection in projector.projections.items()
    }
