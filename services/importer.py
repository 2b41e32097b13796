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
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Union
from uuid import UUID, uuid5

import orjson
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from domain.commands import COMMANDS, Command
from domain.errors import DomainError
from domain.metadata import EventMetadata
from services.api.command_models import BatchItem, item_model
from services.bus import MessageBus, Session

IMPORT_NAMESPACE = UUID("0c6f5a3e-2b7d-4e55-9a41-3f1d2c8b7e90")
DEFAULT_BATCH = 500
SCAN_PAGE = 5_000
"""Events read per query while looking for a batch committed before a crash."""

_ITEMS = tuple(item_model(command) for command in COMMANDS)
_LINE: TypeAdapter[BatchItem] = TypeAdapter(Annotated[Union[_ITEMS], Field(discriminator="type")])  # noqa: UP007


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
    with path.open(encoding="utf-8") as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                fields = orjson.loads(text)
                meta = LineMeta.model_validate(fields.pop("meta")) if "meta" in fields else None
                item = _LINE.validate_python(fields)
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
) -> ImportSummary:
    """Import ``path`` (see the module docstring); ``on_batch(lines_done, lines)`` reports progress."""
    started = time.perf_counter()
    digest = file_digest(path)
    lines = list(read_commands(path))  # every line valid before anything is stored
    progress = Progress(digest) if dry_run else _load_progress(path, digest)
    pending = [line for line in lines if line.number > progress.lines_done]
    skipped, applied, batches = len(lines) - len(pending), 0, 0
    session = Session(bus.app) if dry_run else None
    for first in range(0, len(pending), batch_size):
        batch = pending[first : first + batch_size]
        first_line, last_line = batch[0].number, batch[-1].number
        correlation = batch_correlation(digest, first_line)
        stored_at = None if dry_run else _committed_since(bus, progress.position, correlation)
        if stored_at is not None:  # committed before a crash that lost its progress
            skipped += len(batch)
            progress.lines_done, progress.position = last_line, stored_at
        else:
            meta = EventMetadata(actor=actor, at=datetime.now(UTC), correlation_id=correlation, reason=reason)
            position = _run(bus, batch, meta, session)
            applied += len(batch)
            batches += 1
            progress.lines_done, progress.position = last_line, position
        if not dry_run:
            _save_progress(path, progress)
        if on_batch is not None:
            on_batch(skipped + applied, len(lines))
    return ImportSummary(
        lines=len(lines),
        applied=applied,
        skipped=skipped,
        batches=batches,
        position=progress.position,
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
    )


def _run(bus: MessageBus, batch: list[Line], meta: EventMetadata, dry_run: Session | None) -> int:
    """Decide the batch in one session and store it (a dry run's session is never stored)."""
    session = dry_run or Session(bus.app)
    for line in batch:
        line_meta = _meta_of(line, meta)
        try:
            bus.decide(session, line.command, line_meta, line.expected_version)
        except DomainError as refused:
            reason = f"{refused.rule}: {refused} (nothing of its batch was stored; a re-run resumes at its batch)"
            raise ImportRefused(line.number, reason) from refused
    if dry_run is not None:
        return 0
    position = session.commit()
    for line in batch:
        bus.after_commit(line.command, meta)
    return position


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
