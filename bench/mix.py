"""The workloads' data, the same for every contender.

``demo_commands`` records the demo's command mix (``services.demo.seed_account``)
as a list of commands (handler name, metadata, arguments) instead of running it,
so gam's service layer, gam over HTTP and the CRUD baseline replay exactly the
same commands with the same ids, times and actors.

``history`` is a large account's later life: deal owners revising win
probabilities and account managers re-rating stakeholders' sentiment, one change
a minute. It is what the bulk import loads, and what makes an account 1k, 10k or
100k events long. ``progress_reports`` is a plan's later life (progress reported
on the HQ objectives); it is measured on its own by the suite (see ``bench.suite``):
the strategy flow view once copied its whole plan document for every plan event,
which made a long plan history quadratic.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import UUID, uuid4

import services.demo
from domain.commands import ChangeDealProbability, RateSentiment, ReportProgress
from domain.commands import Command as DomainCommand
from domain.metadata import EventMetadata
from services.api.command_models import command_json
from services.app import GamApplication
from services.demo import SeededAccount, demo_id, seed_account
from services.handlers import bus_for
from services.importer import import_file

HISTORY_START = datetime(2027, 1, 1, tzinfo=UTC)
"""The history begins after the demo's own commands (autumn 2026)."""

IMPORT_BATCH = 1_000
"""Changes stored per transaction by a bulk import (gam and CRUD alike)."""


@dataclass(frozen=True)
class Command:
    """One command of the mix, with who sent it and when."""

    command: DomainCommand
    meta: EventMetadata

    @property
    def name(self) -> str:
        return self.command.type_name()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The command's fields, by name (what the CRUD baseline's methods take)."""
        return {f.name: getattr(self.command, f.name) for f in fields(self.command)}


class _Recorder:
    """Stands in for the bus while the demo seeds: records, runs nothing."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def handle(self, command: DomainCommand, meta: EventMetadata, *_: object) -> None:
        self.commands.append(Command(command, meta))


def demo_commands(index: int) -> tuple[SeededAccount, list[Command]]:
    """The demo's command mix for account ``index``, recorded, in order."""
    recorder = _Recorder()
    with mock.patch.object(services.demo, "bus_for", return_value=recorder):
        seeded = seed_account(None, index)  # type: ignore[arg-type]  # the recorder never touches the app
    return seeded, recorder.commands


def run_command(app: GamApplication, command: Command) -> int:
    """Run one command through gam's message bus; returns the log position it reached."""
    return bus_for(app).handle(command.command, command.meta).position


def run_commands(app: GamApplication, commands: Iterable[Command]) -> int:
    count = 0
    for command in commands:
        run_command(app, command)
        count += 1
    return count


@dataclass(frozen=True)
class Change:
    """One change of a large account's later life."""

    kind: str  # "deal_probability" | "stakeholder_sentiment" | "objective_progress"
    entity_id: UUID  # the deal, the stakeholder, or the plan
    value: int
    meta: EventMetadata
    objective_id: UUID | None = None
    unit_id: UUID | None = None

    def as_command(self) -> Command:
        """The same change as a single command (what an interactive user would send)."""
        if self.kind == "deal_probability":
            return Command(ChangeDealProbability(deal_id=self.entity_id, probability=self.value), self.meta)
        if self.kind == "stakeholder_sentiment":
            return Command(RateSentiment(stakeholder_id=self.entity_id, sentiment=self.value), self.meta)
        assert self.objective_id is not None
        assert self.unit_id is not None
        progress = ReportProgress(
            plan_id=self.entity_id, objective_id=self.objective_id, unit_id=self.unit_id, percent=self.value
        )
        return Command(progress, self.meta)


@dataclass(frozen=True)
class Targets:
    """What a history may change in a seeded demo account: open deals, people still there, HQ objectives."""

    open_deals: tuple[UUID, ...]
    present_people: tuple[UUID, ...]
    plan_id: UUID
    hq_unit: UUID
    hq_objectives: tuple[UUID, ...]


def targets(seeded: SeededAccount, commands: Sequence[Command], index: int) -> Targets:
    """Read from the recorded mix which deals stay open and who has left."""
    closed = {c.kwargs["deal_id"] for c in commands if c.name in ("win_deal", "lose_deal")}
    closed -= {c.kwargs["deal_id"] for c in commands if c.name == "reopen_deal"}
    departed = {c.kwargs["stakeholder_id"] for c in commands if c.name == "record_departure"}
    return Targets(
        open_deals=tuple(d for d in seeded.deal_ids if d not in closed),
        present_people=tuple(p for p in seeded.stakeholder_ids if p not in departed),
        plan_id=seeded.plan_id,
        hq_unit=demo_id(index, "unit", "HQ"),
        hq_objectives=tuple(demo_id(index, "objective", n) for n in range(10)),
    )


def _meta(start: datetime, n: int, correlation: UUID) -> EventMetadata:
    return EventMetadata(actor="owner@vendor.example", at=start + timedelta(minutes=n), correlation_id=correlation)


def history(target: Targets, count: int, *, start: datetime = HISTORY_START, offset: int = 0) -> list[Change]:
    """``count`` changes, one a minute from ``start``; ``offset`` continues an earlier history."""
    changes = []
    correlation = uuid4()
    for n in range(offset, offset + count):
        meta = _meta(start, n, correlation)
        if n % 2 == 0:
            deal = target.open_deals[(n // 2) % len(target.open_deals)]
            changes.append(Change("deal_probability", deal, (n * 7) % 101, meta))
        else:
            person = target.present_people[(n // 2) % len(target.present_people)]
            changes.append(Change("stakeholder_sentiment", person, (n % 5) - 2, meta))
    return changes


def progress_reports(target: Targets, count: int, *, start: datetime = HISTORY_START) -> list[Change]:
    """``count`` progress reports on the HQ objectives, round robin, one a minute."""
    correlation = uuid4()
    return [
        Change("objective_progress", target.plan_id, n % 101, _meta(start, n, correlation),
               objective_id=target.hq_objectives[n % len(target.hq_objectives)], unit_id=target.hq_unit)
        for n in range(count)
    ]  # fmt: skip


def gam_import(app: GamApplication, changes: Sequence[Change], batch: int = IMPORT_BATCH) -> float:
    """Bulk import through ``gam import``'s code path: the changes as a JSON-lines file of
    commands (each with its original actor and time), validated, then decided and stored
    in transactions of ``batch`` commands. Returns the seconds the import took."""
    with tempfile.TemporaryDirectory(prefix="gam-bench-import-") as tmp:
        path = Path(tmp) / "history.jsonl"
        with path.open("w", encoding="utf-8") as file:
            for change in changes:
                line = command_json(change.as_command().command)
                line["meta"] = {"actor": change.meta.actor, "at": change.meta.at.isoformat()}
                file.write(json.dumps(line) + "\n")
        started = time.perf_counter()
        import_file(bus_for(app), path, actor="bench-import", batch_size=batch)
        return time.perf_counter() - started
