"""What a projection needs from storage: documents, audit rows and a tracking
position, all written in one transaction.

The adapters (``infra/views_*.py``) implement :class:`ViewRecorder` on top of
``eventsourcing``'s tracking recorders for SQLite, PostgreSQL and memory, in the
same database as the events. Because a view's rows and its tracking record are
committed together, a crash can neither skip an event nor apply one twice: the
tracking upsert refuses a position that is not past the stored one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

Document = dict[str, Any]
"""A JSON-native view document (str, int, bool, None, lists, dicts)."""

TRACKING_SEPARATOR = "::"
"""Tracking rows are stored as ``<application>::<view>`` so several views share one table."""


@dataclass(frozen=True)
class AuditRow:
    """One event as the audit trail shows it."""

    position: int
    occurred_at: datetime
    actor: str
    account_id: UUID | None
    entity_type: str
    entity_id: UUID
    version: int
    event_type: str
    changes: tuple[Mapping[str, Any], ...]
    reason: str | None
    correlation_id: UUID
    causation_id: UUID | None


@dataclass(frozen=True)
class AuditQuery:
    """Filters for the audit trail; results come in position order after ``after_position``."""

    account_id: UUID | None = None
    entity_id: UUID | None = None
    actor: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_position: int = 0
    limit: int = 100


LIST_FACETS: tuple[str, ...] = ("unit_id", "status", "stage", "role", "owner", "due", "industry", "hq_country", "tier")
"""The fields a list can be filtered on (one column each in the databases); a kind of
row sets those that mean something for it and leaves the others ``None``."""


@dataclass(frozen=True)
class ListRow:
    """One entity as the lists show it: enough to find it (its facets), to order it
    (``sort_key``, then its id) and to show it (``body``) without reading its account's
    document, which holds every deal and person of the account."""

    kind: str
    entity_id: str
    account_id: str
    sort_key: str
    body: Document
    facets: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ListQuery:
    """Rows of one ``kind`` in ``(sort_key, entity_id)`` order after the cursor ``after``.

    ``account_ids``/``entity_ids`` ``None`` means any; ``equals`` matches facets
    exactly, ``within`` a facet to one of several values; ``text`` is a substring of
    the sort key; ``overdue`` (with ``today``, an ISO date) keeps the open rows whose
    ``due`` has passed (True) or the others (False)."""

    kind: str
    account_ids: frozenset[str] | None = None
    entity_ids: frozenset[str] | None = None
    equals: Mapping[str, str] = field(default_factory=dict)
    within: Mapping[str, frozenset[str]] = field(default_factory=dict)
    text: str | None = None
    overdue: bool | None = None
    today: str = ""
    after: tuple[str, str] | None = None
    limit: int = 100

    def matches(self, row: ListRow) -> bool:
        """The same filter in Python (the memory store, and tests' models)."""
        facets = row.facets
        return (
            row.kind == self.kind
            and (self.account_ids is None or row.account_id in self.account_ids)
            and (self.entity_ids is None or row.entity_id in self.entity_ids)
            and all(facets.get(k) == v for k, v in self.equals.items())
            and all(facets.get(k) in v for k, v in self.within.items())
            and (self.text is None or self.text in row.sort_key)
            and (self.overdue is None or self.overdue == is_overdue(facets, self.today))
            and (self.after is None or (row.sort_key, row.entity_id) > self.after)
        )


def is_overdue(facets: Mapping[str, str | None], today: str) -> bool:
    """Still open and its due date (an ISO date) before ``today``."""
    due = facets.get("due")
    return facets.get("status") == "open" and due is not None and due < today


ListKey = tuple[str, str]
"""A list row's identity: (kind, entity id)."""


GENERATION_SEPARATOR = "#"
"""Generation ``g`` (from 2 on) of a view keeps its rows and tracking under ``<view>#<g>``;
generation 1 under the view's name, as before views had generations."""


def generation_key(view_name: str, generation: int) -> str:
    """Where a generation of a view keeps its documents, list rows and tracking."""
    return view_name if generation == 1 else f"{view_name}{GENERATION_SEPARATOR}{generation}"


@dataclass(frozen=True)
class Generations:
    """A view's generations (blue/green rebuilds): readers see ``live``; a rebuild builds
    ``building`` beside it (None: no rebuild started or left unfinished); ``retired`` is a
    former live generation whose rows are still to be dropped (a rebuild killed between
    its switch and its clean-up)."""

    live: int = 1
    building: int | None = None
    retired: int | None = None

    def resumable(self, *, fresh: bool) -> int | None:
        """The unfinished generation a rebuild carries on with; None: it starts a new one."""
        return None if fresh else self.building

    def left_behind(self, building: int) -> list[int]:
        """What a rebuild of ``building`` drops: the retired generation, and an unfinished
        one it does not resume."""
        return [g for g in (self.retired, self.building) if g is not None and g != building]


class GenerationSwitched(RuntimeError):
    """A write to the generation this writer follows was refused (and nothing of it kept):
    a rebuild's generation took over since. The writer reads where the live one is
    (:meth:`ViewRecorder.follow_live`) and carries on from its position."""

    def __init__(self, view_name: str, written: int, live: int) -> None:
        super().__init__(f"view {view_name}: generation {written} is no longer live (generation {live} is)")
        self.view_name = view_name
        self.written = written
        self.live = live


@dataclass(frozen=True)
class ViewChange:
    """What one event does to a view: documents to write (``None`` deletes), audit rows
    and list rows (``None`` deletes)."""

    documents: Mapping[str, Document | None] = field(default_factory=dict)
    audit_rows: Sequence[AuditRow] = ()
    list_rows: Mapping[ListKey, ListRow | None] = field(default_factory=dict)


class ViewRecorder(TrackingRecorder, ABC):
    """Storage of one view; ``view_name`` namespaces its documents and tracking.

    A view has generations (:class:`Generations`). A recorder opened as usual reads
    the live generation, resolved by each statement itself, so a reader never sees a
    generation that is being built or dropped; its writes go to :attr:`generation` (the
    live one when it last looked) and are refused with :class:`GenerationSwitched` once
    another generation has taken over. :meth:`at_generation` gives a recorder pinned to
    one generation (a rebuild writes the new one through it)."""

    view_name: ClassVar[str] = "view"
    keeps_audit_rows: ClassVar[bool] = True
    """Whether the view's generations have audit rows (an audit table each). Generation 1
    of every view shares the table ``gam_audit_trail`` (as before views had generations),
    so only the view that writes audit rows may drop it."""
    generation: int = 1
    """The generation this recorder writes: pinned, or the live one as last seen."""
    pinned: bool = False
    """Whether reads and writes go to :attr:`generation` whatever is live."""

    @property
    def key(self) -> str:
        """Where the written generation keeps its rows and tracking."""
        return generation_key(self.view_name, self.generation)

    def tracking_name(self, application_name: str) -> str:
        return f"{application_name}{TRACKING_SEPARATOR}{self.key}"

    @abstractmethod
    def record(self, change: ViewChange, tracking: Tracking) -> None:
        """Write the change and the tracking position in one transaction."""

    @abstractmethod
    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        """The stored documents among ``keys`` (missing keys are absent)."""

    def document(self, key: str) -> Document | None:
        """The stored document at ``key``, if any."""
        return self.documents([key]).get(key)

    def document_and_position(self, key: str, application_name: str) -> tuple[Document | None, int]:
        """The stored document at ``key``, if any, and the view's position for
        ``application_name`` (0 before any), read so that the document holds at least every
        event up to that position. A store may read both in one query."""
        position = self.max_tracking_id(application_name) or 0
        return self.document(key), position

    @abstractmethod
    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        """Every document whose key starts with ``prefix``, by key."""

    @abstractmethod
    def select_audit(self, query: AuditQuery) -> list[AuditRow]:
        """Audit rows matching the query, in position order."""

    @abstractmethod
    def select_list(self, query: ListQuery) -> list[ListRow]:
        """List rows matching the query, in ``(sort_key, entity_id)`` order, at most ``query.limit``."""

    @abstractmethod
    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        """Each entity of the account and its last version recorded at or before ``moment``
        (from the audit trail; the time travel reads it)."""

    @abstractmethod
    def reset(self, *, audit_rows: bool) -> None:
        """Forget the view (documents, list rows, tracking and, if asked, audit rows) before a rebuild."""

    @abstractmethod
    def generations(self) -> Generations:
        """The view's generations as stored now."""

    @abstractmethod
    def start_generation(self, *, fresh: bool = False) -> int:
        """The generation a rebuild builds: the unfinished one left by an interrupted
        rebuild (it resumes from that generation's position), or, when there is none or
        ``fresh`` is asked, a new empty one (the unfinished one is dropped). Generation
        numbers are never reused. Drops a retired generation left behind."""

    @abstractmethod
    def at_generation(self, generation: int) -> ViewRecorder:
        """A recorder that reads and writes only ``generation`` (sharing this one's connections)."""

    @abstractmethod
    def take_over(self) -> AbstractContextManager[None]:
        """On a recorder pinned to the building generation: one transaction in which the
        view's generations are locked (writers of the live one wait at their commit);
        when the block ends, this generation becomes the live one and the former live
        one is retired, in the same commit. The block catches the generation up to the
        head through this recorder. Returns nothing; see :meth:`generations`."""

    @abstractmethod
    def drop_generation(self, generation: int) -> None:
        """Delete a generation's rows, audit rows and tracking (never the live one)."""

    def follow_live(self) -> None:
        """Write to whatever generation is live now (after :class:`GenerationSwitched`)."""
        if not self.pinned:
            self.generation = self.generations().live

    def in_one_transaction(self) -> AbstractContextManager[None]:
        """Every read and write of this view in the block, on this thread, in one
        transaction: committed when the block ends, rolled back if it fails (a rebuild:
        readers see the old view until the new one is whole, and a crash leaves the old
        one and its position). Here each write commits on its own: stores whose views
        only one process reads and writes (SQLite, memory)."""
        return nullcontext()
