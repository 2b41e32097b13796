"""Bulk import: a JSON-lines file of commands, loaded through the same bus as
every other command.

Each line is one command as ``POST /batches`` takes it: the fields of its single
endpoint (path fields included), its ``type`` and optionally ``expected_version``;
and, for a history brought over from another system, optionally ``meta`` with the
original ``actor``, ``at`` (a moment with its offset) and ``reason``.
A line's ``at`` is the moment its command is decided at, so rules about "now" are
judged as they were then: this is what makes an import *historical*. A deal opened
on 2020-03-01 may close on 2020-06-30; the same line without ``at`` is decided now
and refused (``close_date_in_past``).
Every line is validated before anything is stored; then the commands run in
batches of ``batch_size``, one transaction each.

Resuming after a crash applies nothing twice: each batch's events carry a
correlation id derived from the file's digest and the batch's first line, and a
progress file beside the input records, after each commit, how many lines are
stored and at which log position. A batch whose commit happened but whose
progress was not recorded is recognised by its correlation id among the events
stored since, and skipped.

On PostgreSQL each batch is stored by a thread of its own while the next one is
decided (:class:`_Storing`): storing is mostly the server's work, and deciding is
this interpreter's. Batches are still committed one after the other, in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Union
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError, create_model

from domain.commands import COMMANDS, Command
from domain.errors import ConcurrencyConflict, DomainError
from domain.metadata import EventMetadata
from infra.read_check import StaleRead
from services.api.command_models import BatchItem, item_model
from services.bus import STALE_READ_ATTEMPTS, MessageBus, Session
from services.gc_freeze import kept_out_of_collections

IMPORT_NAMESPACE = UUID("0c6f5a3e-2b7d-4e55-9a41-3f1d2c8b7e90")
DEFAULT_BATCH = 500
SCAN_PAGE = 5_000
"""Events read per query while looking for a batch committed before a crash."""
SWITCH_INTERVAL = 0.0002
"""The interpreter's switch interval (seconds) while batches are stored in a thread of their own.
With the default 5 ms, the storing thread, its answer from PostgreSQL in, waited up to that
long for the deciding thread to let go of the interpreter, once per round trip: the overlap
then gained 0.2 s of a 3.4 s import; at 0.2 ms it gained 0.7 s."""


class ImportRefused(Exception):
    """A line cannot be imported; nothing of its batch was stored."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line


@dataclass
class Progress:
    """What is stored of one file: kept beside it, rewritten after every commit."""

    sha256: str
    lines_done: int = 0
    position: int = 0


@dataclass
class ImportSummary:
    lines: int
    applied: int
    skipped: int
    batches: int
    position: int
    seconds: float
    dry_run: bool


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LineMeta(BaseModel):
    """Who made a change and when, as the system it comes from recorded it."""

    model_config = {"extra": "forbid"}

    actor: str | None = Field(default=None, min_length=1, max_length=300)
    at: AwareDatetime | None = None
    reason: str | None = Field(default=None, max_length=2000)


def line_model(command: type[Command]) -> type[BatchItem]:
    """An import line of ``command``: its batch item, and what the system it comes from
    recorded of the change (``meta``)."""
    item = item_model(command)
    line: type[BatchItem] = create_model(f"{command.__name__}Line", __base__=item, meta=(LineMeta | None, None))
    return line


_LINE: TypeAdapter[BatchItem] = TypeAdapter(
    Annotated[Union[tuple(line_model(command) for command in COMMANDS)], Field(discriminator="type")]  # noqa: UP007
)
"""Validates a line's JSON text as it is (parsing and validating in one pass: a file of
a hundred thousand lines spent a third of its import parsing them into dicts first)."""


@dataclass(frozen=True)
class Line:
    number: int
    command: Command
    expected_version: int | None
    meta: LineMeta | None
    checked: EventMetadata | None = None
    """The line's own metadata, checked as it was read (placeholders where it says nothing)."""


def read_commands(path: Path) -> Iterator[Line]:
    """Each non-blank line, parsed; a bad line refuses the file."""
    with path.open("rb") as file:  # pydantic reads UTF-8 JSON as bytes, and names a bad byte
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                item = _LINE.validate_json(text)
                meta: LineMeta | None = getattr(item, "meta", None)
                checked = None
                if meta is not None:  # the rules of metadata (no NUL, a UTC moment), before anything is stored
                    checked = EventMetadata(
                        meta.actor or "import", meta.at or datetime.now(UTC), IMPORT_NAMESPACE, None, meta.reason
                    )
                yield Line(number, item.command(), item.expected_version, meta, checked)
            except ValidationError as invalid:
                first = invalid.errors()[0]
                where = "/".join(str(p) for p in first["loc"])
                raise ImportRefused(number, f"{where}: {first['msg']}" if where else first["msg"]) from None
            except DomainError as invalid:
                raise ImportRefused(number, f"meta: {invalid}") from None
            except (ValueError, TypeError, AttributeError) as invalid:
                raise ImportRefused(number, f"not a command: {invalid}") from None


def progress_path(path: Path) -> Path:
    return path.with_name(path.name + ".progress")


def _load_progress(path: Path, digest: str) -> Progress:
    kept = progress_path(path)
    if not kept.exists():
        return Progress(digest)
    progress = Progress(**json.loads(kept.read_text()))
    if progress.sha256 != digest:
        raise ImportRefused(0, f"{kept} belongs to another version of the file; remove it to start over")
    return progress


def _save_progress(path: Path, progress: Progress) -> None:
    kept = progress_path(path)
    partial = kept.with_name(kept.name + ".tmp")
    partial.write_text(json.dumps(asdict(progress)))
    os.replace(partial, kept)


def batch_correlation(digest: str, first_line: int) -> UUID:
    return uuid5(IMPORT_NAMESPACE, f"{digest}/{first_line}")


def _committed_since(bus: MessageBus, position: int, correlation_id: UUID) -> int | None:
    """The log position of the last event carrying ``correlation_id`` stored after ``position``.

    A new file's first batch looks through the whole log (its progress says nothing yet).
    Only events whose stored JSON holds the id's hex are decoded to check it: decoding
    every event of a large store through the mapper took minutes before the first line."""
    recorder, mapper, found = bus.app.recorder, bus.app.mapper, None
    needle = correlation_id.hex.encode()
    start = position + 1
    while True:
        notifications = recorder.select_notifications(start=start, limit=SCAN_PAGE)
        if not notifications:
            return found
        for notification in notifications:
            state = notification.state
            if state[:1] == b"{" and needle not in state:  # JSON as stored, without the id
                continue
            if getattr(mapper.to_domain_event(notification), "correlation_id", None) == correlation_id:
                found = notification.id
        start = notifications[-1].id + 1


def import_file(
    bus: MessageBus,
    path: Path,
    *,
    actor: str,
    reason: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    overlap: bool | None = None,
) -> ImportSummary:
    """Import ``path`` (see the module docstring); ``on_batch(lines_done, lines)`` reports progress.

    ``overlap``: decide each batch while the store writes the one before (:class:`_Storing`);
    by default where storing is mostly the database server's work (PostgreSQL)."""
    started = time.perf_counter()
    digest = file_digest(path)
    with kept_out_of_collections(lambda: list(read_commands(path))) as lines:  # all valid before anything is stored
        run = _Run(bus, path, digest, lines, actor, reason, on_batch, dry_run)
        pending = [line for line in lines if line.number > run.progress.lines_done]
        batches = [pending[first : first + batch_size] for first in range(0, len(pending), batch_size)]
        if dry_run:
            run.check(batches)
        else:
            run.apply(batches, bus.app.stores_apart if overlap is None else overlap)
    return ImportSummary(
        lines=len(lines),
        applied=run.applied,
        skipped=run.skipped,
        batches=run.batches,
        position=run.progress.position,
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
    )


class _Run:
    """One import of one file: what is done of it, and how it is reported."""

    def __init__(
        self,
        bus: MessageBus,
        path: Path,
        digest: str,
        lines: list[Line],
        actor: str,
        reason: str | None,
        on_batch: Callable[[int, int], None] | None,
        dry_run: bool,
    ) -> None:
        self.bus, self.path, self.digest, self.lines = bus, path, digest, lines
        self.actor, self.reason, self.on_batch = actor, reason, on_batch
        self.progress = Progress(digest) if dry_run else _load_progress(path, digest)
        self.skipped = sum(1 for line in lines if line.number <= self.progress.lines_done)
        self.applied = self.batches = 0

    def check(self, batches: list[list[Line]]) -> None:
        """A dry run: every batch decided in one unit of work that is never stored."""
        session = Session(self.bus.app)
        for batch in batches:
            _decide(self.bus, session, batch, self.meta(batch))
            self._count(batch)
            self._report()

    def apply(self, batches: list[list[Line]], overlap: bool) -> None:
        with _Storing(self.bus, self.stored, overlap) as storing:
            for batch in self._not_stored(batches):
                meta = self.meta(batch)
                session = storing.next_session()
                _decide(self.bus, session, batch, meta)
                storing.store(session, batch, meta)

    def meta(self, batch: list[Line]) -> EventMetadata:
        correlation = batch_correlation(self.digest, batch[0].number)
        return EventMetadata(actor=self.actor, at=datetime.now(UTC), correlation_id=correlation, reason=self.reason)

    def _not_stored(self, batches: list[list[Line]]) -> list[list[Line]]:
        """The batches left once those committed before a crash that lost their progress are
        skipped (their correlation id among the events stored since). Only the first batches
        can be: a batch is committed after the one before it, so the first one not found is
        where this run starts applying."""
        for index, batch in enumerate(batches):
            correlation = batch_correlation(self.digest, batch[0].number)
            stored_at = _committed_since(self.bus, self.progress.position, correlation)
            if stored_at is None:
                return batches[index:]
            self.skipped += len(batch)
            self._record(batch, stored_at)
        return []

    def stored(self, batch: list[Line], position: int) -> None:
        """A batch committed at ``position``: counted and recorded."""
        self._count(batch)
        self._record(batch, position)

    def _count(self, batch: list[Line]) -> None:
        self.applied += len(batch)
        self.batches += 1

    def _record(self, batch: list[Line], position: int) -> None:
        self.progress.lines_done, self.progress.position = batch[-1].number, position
        _save_progress(self.path, self.progress)
        self._report()

    def _report(self) -> None:
        if self.on_batch is not None:
            self.on_batch(self.skipped + self.applied, len(self.lines))


def _decide(bus: MessageBus, session: Session, batch: list[Line], meta: EventMetadata) -> None:
    """Decide every line of the batch in ``session``; a refusal names its line."""
    for line in batch:
        try:
            bus.decide(session, line.command, _meta_of(line, meta), line.expected_version)
        except DomainError as refused:
            reason = f"{refused.rule}: {refused} (nothing of its batch was stored; a re-run resumes at its batch)"
            raise ImportRefused(line.number, reason) from refused


class _Storing:
    """Stores the decided batches in order, one transaction each, and reports each one stored.

    Overlapping, a batch is committed by a thread of its own while the next one is decided
    in a unit of work handed over from it (:meth:`Session.hand_over`): on PostgreSQL, most
    of a commit is the server's work (the hash chain is computed there), which this
    process's interpreter would otherwise wait for. At most one batch is being stored, and
    its progress is recorded before the next one is sent, so a crash leaves at most one
    batch committed and not recorded, as without overlapping (found again by its
    correlation id). A batch whose commands work after their commit (an erasure destroys
    a key) is finished before the next one is decided, from the store.

    A handed-over batch whose read check fails (another process wrote what it read meanwhile)
    is decided again on fresh state once the batch before it is stored."""

    def __init__(self, bus: MessageBus, stored: Callable[[list[Line], int], None], overlapping: bool) -> None:
        self.bus = bus
        self.stored = stored
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="gam import store") if overlapping else None
        self._flight: tuple[list[Line], EventMetadata, Future[tuple[int, bool]]] | None = None
        self._next: Session | None = None
        self._switch_interval = sys.getswitchinterval()

    def __enter__(self) -> _Storing:
        if self._executor is not None:
            sys.setswitchinterval(SWITCH_INTERVAL)
        return self

    def __exit__(self, *failure: object) -> None:
        try:
            if failure[0] is None:
                self._land()
            else:
                self._land_quietly()  # what is in flight is recorded if it was stored; the failure is the error
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                sys.setswitchinterval(self._switch_interval)

    def next_session(self) -> Session:
        """Where the next batch is decided: handed over from the one being stored, if any."""
        session, self._next = self._next, None
        if session is None:
            return Session(self.bus.app)
        session.begin()
        return session

    def store(self, session: Session, batch: list[Line], meta: EventMetadata) -> None:
        """Send the batch decided in ``session`` to be stored, once the one before is."""
        if self._executor is None or any(self.bus.works_after_commit(line.command) for line in batch):
            if self._land():
                session = self._decided_again(batch, meta)
            self._finish(batch, meta, self._commit(session, batch, meta)[0])
            return
        successor = session.hand_over()  # encoded here, while the batch before is being stored
        if self._land():  # the batch before was decided again: this one rests on what that replaced
            session = self._decided_again(batch, meta)
            successor = session.hand_over()
        self._flight = (batch, meta, self._executor.submit(self._commit, session, batch, meta))
        self._next = successor

    def _decided_again(self, batch: list[Line], meta: EventMetadata) -> Session:
        session = Session(self.bus.app)
        _decide(self.bus, session, batch, meta)
        return session

    def _commit(self, session: Session, batch: list[Line], meta: EventMetadata) -> tuple[int, bool]:
        """Store the batch: its log position, and whether it had to be decided again
        because its reads turned out stale (nothing of it was stored then)."""
        for attempt in range(STALE_READ_ATTEMPTS):
            try:
                return session.commit(), attempt > 0
            except StaleRead as stale:
                if attempt + 1 == STALE_READ_ATTEMPTS:
                    raise ConcurrencyConflict(stale.entity_id, stale.read_version, stale.stored_version) from None
            session = self._decided_again(batch, meta)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _land(self) -> bool:
        """Wait for the batch in flight and record it; whether it was decided again."""
        if self._flight is None:
            return False
        batch, meta, future = self._flight
        self._flight = None
        position, decided_again = future.result()
        self._finish(batch, meta, position)
        return decided_again

    def _land_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._land()

    def _finish(self, batch: list[Line], meta: EventMetadata, position: int) -> None:
        for line in batch:
            self.bus.after_commit(line.command, meta)
        self.stored(batch, position)


def _meta_of(line: Line, batch: EventMetadata) -> EventMetadata:
    """The batch's metadata, with what the line says of its own actor, time and reason."""
    meta, own = line.meta, line.checked
    if meta is None or own is None:
        return batch
    return EventMetadata.of_checked(
        actor=own.actor if meta.actor else batch.actor,
        at=own.at if meta.at else batch.at,
        correlation_id=batch.correlation_id,
        causation_id=batch.causation_id,
        reason=own.reason if meta.reason is not None else batch.reason,
    )
