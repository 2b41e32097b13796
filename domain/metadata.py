"""Who did what, when and why: the metadata every event carries.

The edge (HTTP, CLI, a test) builds one :class:`EventMetadata` per command from
the authenticated principal, its clock and its correlation id, and hands it to
the aggregate. Payloads never carry the actor, so a caller cannot claim to be
someone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue
from domain.values import MAX_NAME, MAX_TEXT, reject_nul, require_aware


@dataclass(frozen=True)
class EventMetadata:
    """The context of one command: the acting principal, the moment, and the ids
    that tie it to the request that caused it."""

    actor: str
    at: datetime
    correlation_id: UUID
    causation_id: UUID | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.actor, str) or not self.actor.strip() or len(self.actor) > MAX_NAME:
            raise InvalidValue("actor", "must name the acting principal")
        reject_nul("actor", self.actor)
        require_aware("at", self.at)
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        if self.reason is not None and len(self.reason) > MAX_TEXT:
            raise InvalidValue("reason", f"must be at most {MAX_TEXT} characters")
        if self.reason is not None:
            reject_nul("reason", self.reason)

    @classmethod
    def of_checked(
        cls, actor: str, at: datetime, correlation_id: UUID, causation_id: UUID | None, reason: str | None
    ) -> EventMetadata:
        """Metadata made of values taken from metadata already built (so already checked,
        ``at`` already in UTC): not checked again. A bulk import merges each line's own
        actor, moment and reason into its batch's metadata; checking them a second time
        was a twentieth of the import."""
        metadata = object.__new__(cls)
        for name, value in (
            ("actor", actor), ("at", at), ("correlation_id", correlation_id),
            ("causation_id", causation_id), ("reason", reason),
        ):  # fmt: skip
            object.__setattr__(metadata, name, value)
        return metadata

    def event_fields(self) -> dict[str, Any]:
        """The keyword arguments every :class:`~domain.base.GamEvent` takes."""
        return {
            "actor": self.actor,
            "timestamp": self.at,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "reason": self.reason,
        }
