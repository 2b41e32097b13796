"""The message bus: every command, from HTTP, a batch, an import file, the demo or
a test, is handled here the same way.

For each command the bus loads the aggregates it needs exactly once (the target,
and the account whose unit tree the rules and the access check read), lets the
caller's gatekeeper look at that same loaded state, lets the aggregate decide,
and stores every new event of every aggregate touched in one transaction. The
caller gets plain data back (:class:`CommandResult`), never a live aggregate.

A :class:`Session` is one unit of work: a single command, or a whole batch whose
commands see each other's effects and are stored all together or not at all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Protocol, TypeVar
from uuid import UUID

from domain.account import GlobalAccount, TeamAssignment, UnitTree
from domain.base import GamAggregate
from domain.commands import Command
from domain.errors import AccountArchived, AlreadyExists, ConcurrencyConflict, DomainError, NotFound
from domain.metadata import EventMetadata
from domain.stakeholder import Stakeholder
from infra.read_check import ReadCheck, StaleRead, Watch
from services.app import CommandResult, GamApplication, PreparedCommit
from services.observability import metrics, tracing
from services.personal_data_guard import PersonalDataGuard

A = TypeVar("A", bound=GamAggregate)
R = TypeVar("R")

STALE_READ_ATTEMPTS = 3
"""Tries of one command whose reads another process keeps invalidating, before it is a conflict."""


@dataclass(frozen=True)
class Scope:
    """What a command touches, for the access check: the account, the unit it is
    about (None when it is about the account as a whole, such as approving the
    plan), and the account's unit tree and team as the bus loaded them (None and
    empty for a new account)."""

    account_id: UUID
    unit_id: UUID | None = None
    tree: UnitTree | None = None
    team: tuple[TeamAssignment, ...] = ()


class Gatekeeper(Protocol):
    """The edge's check of a caller, run after the bus loaded what the command
    touches and before anything is decided."""

    def admit(self, command: Command, scope: Scope) -> int | None:
        """Refuse (raise) a caller who may not send this command here; otherwise
        the version of the target they made the change against, if they said."""


class Session:
    """One unit of work: aggregates loaded at most once, changes kept in memory
    until :meth:`commit` stores them all in one transaction.

    ``trust_cache``: read cached aggregates without first asking the store whether
    anyone wrote since; the commit then refuses (:class:`StaleRead`) if anything read
    was stale, and the bus decides again. Otherwise the cache is brought up to date
    first (one query)."""

    def __init__(self, app: GamApplication, *, trust_cache: bool = False) -> None:
        self.app = app
        self._loaded: dict[UUID, GamAggregate] = {}
        self._read_versions: dict[UUID, int] = {}
        self._order: list[GamAggregate] = []
        self.known = app.start_reading(trust_cache=trust_cache)
        """The log position every cached read holds (None: the store gives no cache)."""
        self.committing = False
        """Set once the commit began: from then on, an error may leave the events stored."""
        self.watched: Watch | None = None
        """Set by the personal-data guard: events stored by others meanwhile that make its check stale."""
        self.stored: tuple[int, int] | None = None
        """The log positions of the first and last event the commit stored (None: nothing stored)."""
        self._touched: set[UUID] = set()
        """The aggregates this unit of work's own decisions loaded or created."""
        self._handed_over: list[GamAggregate] | None = None
        """What :meth:`commit` stores once :meth:`hand_over` was called: the changes decided before it."""
        self._predecessor: Session | None = None
        """The unit of work this one continues from, stored (or not) before this one commits."""
        self._prepared: PreparedCommit | None = None
        """Its changes encoded for the store as they were handed over (:meth:`GamApplication.prepare`)."""

    def load(self, kind: type[A], entity_id: UUID) -> A:
        aggregate = self._loaded.get(entity_id)
        if aggregate is None:
            aggregate = self.app.load(kind, entity_id, fresh=True)
            self._read_versions[entity_id] = aggregate.version
            self._keep(aggregate)
        if not isinstance(aggregate, kind):
            raise NotFound(kind.entity_type, entity_id)
        self._touched.add(entity_id)
        return aggregate

    def add(self, aggregate: GamAggregate) -> None:
        """A new aggregate; an id already new here is taken, and so is an id already
        stored: the commit's unique key refuses it (:meth:`GamApplication.commit` names
        it), except for a person, which is looked up first (one query): their personal
        data is sealed with their key as it is stored, and must not be sealed under a
        new key for the id of a person who was erased."""
        if aggregate.id in self._loaded or (isinstance(aggregate, Stakeholder) and self.app.exists(aggregate.id)):
            raise AlreadyExists(aggregate.entity_type, aggregate.id)
        self._keep(aggregate)

    def _keep(self, aggregate: GamAggregate) -> None:
        self._loaded[aggregate.id] = aggregate
        self._order.append(aggregate)
        self._touched.add(aggregate.id)

    def hand_over(self) -> Session:
        """The next unit of work, to be decided while this one is being stored: a bulk
        import decides its next batch while PostgreSQL stores the last one.

        This one's changes are prepared here (encoded, snapshots taken: the Python half of
        its commit, :meth:`GamApplication.prepare`), so that its :meth:`commit`, in
        another thread, is only the database's half and leaves this interpreter to the
        next one. The next one starts from copies of every aggregate this one's decisions
        loaded or created, as decided (their events not yet stored), so it neither reads
        them at the versions before this one nor shares an object the commit is storing.
        The next one's commit must come after this one's, and is refused if that failed
        (:meth:`_continue`)."""
        if self._handed_over is not None:
            raise RuntimeError("a unit of work is handed over once")
        self._handed_over = self.changed()
        if self._handed_over:
            self._prepared = self.app.prepare(*self._handed_over)
        successor = Session(self.app, trust_cache=True)  # its reads are checked at its commit
        successor._predecessor = self
        for entity_id in self._touched:
            copy = deepcopy(self._loaded[entity_id])  # GamAggregate.__deepcopy__: containers copied, values shared
            copy.pending_events.clear()  # the copy's own list: they are this unit of work's to store
            successor._loaded[entity_id] = copy
            successor._read_versions[entity_id] = copy.version
            successor._order.append(copy)
        return successor

    def begin(self) -> None:
        """A unit of work handed over reads from here on: the position the cache holds now,
        not when it was handed over, for the one before it may have been stored since."""
        self.known = self.app.start_reading(trust_cache=True)

    def _continue(self) -> None:
        """Before committing a unit of work handed over by another: that one must be stored.

        What this one read from the store it read as far as its :attr:`known` position;
        the aggregates the other one stored it holds as the other decided them. So when
        nobody else wrote between ``known`` and the other's events, it read the log as it
        stands after them, and its read check starts there: otherwise the other's events
        would be checked as if someone else had written them."""
        predecessor = self._predecessor
        if predecessor is None:
            return
        if predecessor._handed_over and predecessor.stored is None:
            raise RuntimeError("the unit of work this one continues from was not stored")
        if self.known is not None and predecessor.stored is not None:
            first, last = predecessor.stored
            if self.known >= first - 1:
                self.known = max(self.known, last)
        self._predecessor = None  # the chain of units of work is not kept alive

    def loaded(self, kind: type[A]) -> list[A]:
        """The aggregates of ``kind`` this unit of work holds, with its changes so far."""
        return [aggregate for aggregate in self._order if isinstance(aggregate, kind)]

    def changed(self) -> list[GamAggregate]:
        if self._handed_over is not None:
            return self._handed_over
        return [aggregate for aggregate in self._order if aggregate.pending_events]

    def commit(self) -> int:
        """Store every pending event in one transaction; the log position of the last."""
        self._continue()
        changed = self.changed()
        if not changed:
            return self.app.recorder.max_notification_id() or 0
        self.committing = True
        reads = None
        if self.known is not None and self.app.checks_reads_at_commit:
            reads = ReadCheck(self.known, dict(self._read_versions), watched=self.watched)
        if self._prepared is not None:
            events = len(self._prepared.events)
            last = self.app.store(self._prepared, reads).position
        else:
            events = sum(len(aggregate.pending_events) for aggregate in changed)
            last = (self.app.commit(*changed, reads=reads) if reads else self.app.commit(*changed)).position
        self.stored = (last - events + 1, last)
        return last


@dataclass(frozen=True)
class Handling:
    """How the bus handles one command type: which aggregate it targets, which of
    the aggregate's methods decides it (a factory for a creation), which unit the
    command is about, and what else the decision needs.

    The decision is called with the command's fields as keyword arguments, plus
    ``tree`` (the account's unit tree) and ``meta`` when the method takes them, plus
    whatever ``context`` loads. Fields the method does not take must be named in
    ``consumed``, so a field is never dropped silently."""

    aggregate: type[GamAggregate]
    decide: Callable[..., Any]
    unit: Callable[[Any, Any], UUID | None] | None = None
    context: Callable[[Any, Session], Mapping[str, Any]] | None = None
    consumed: tuple[str, ...] = ()
    after_commit: Callable[[Any, GamApplication, EventMetadata], None] | None = None
    while_archived: bool = False
    """Whether the command may reach an archived account (erasure: a legal duty that outlives it)."""

    def parameters(self, command: type[Command]) -> frozenset[str]:
        """The names the decision takes (every field of the command if it takes ``**fields``)."""
        parameters = inspect.signature(self.decide).parameters
        names = frozenset(parameters)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            names |= {f.name for f in fields(command)}
        return names


def plain(value: Any) -> Any:
    """Enum members as their values, lists as tuples: what aggregates store."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return tuple(value)
    return value


class MessageBus:
    """Sends commands to their handling, in a session of their own or a shared one."""

    def __init__(
        self,
        app: GamApplication,
        handlings: Mapping[type[Command], Handling],
        guard: PersonalDataGuard | None = None,
    ) -> None:
        self.app = app
        self.handlings = dict(handlings)
        self.guard = guard or PersonalDataGuard(app)
        """Checks business free text for personal data (``GAM_PERSONAL_DATA_GUARD``; refuses by default)."""
        self._parameters = {kind: handling.parameters(kind) for kind, handling in self.handlings.items()}
        for kind in self.handlings:
            self._check_fields(kind)

    def _check_fields(self, kind: type[Command]) -> None:
        handling, accepted = self.handlings[kind], self._parameters[kind]
        names = {f.name for f in fields(kind)} - ({kind.entity_field} if not kind.creates else set())
        dropped = names - accepted - set(handling.consumed)
        if dropped:
            raise TypeError(f"{kind.__name__}: {sorted(dropped)} reach no decision; name them in consumed")

    def handle(
        self,
        command: Command,
        meta: EventMetadata,
        expected_version: int | None = None,
        gatekeeper: Gatekeeper | None = None,
    ) -> CommandResult:
        """Handle one command in a session of its own and store what it decided."""

        def attempt(session: Session) -> CommandResult:
            entity_id, version, created = self.decide(session, command, meta, expected_version, gatekeeper)
            with self.guard.committing(session):
                position = session.commit()
                self.guard.committed(session)
            return CommandResult(entity_id, version, position, created)

        type_name = command.type_name()
        with tracing.span(f"gam command {type_name}", {"gam.command": type_name}), metrics.command_handled(type_name):
            result = self._in_session(attempt)
        self.after_commit(command, meta)
        return result

    def _in_session(self, work: Callable[[Session], R]) -> R:
        """Run ``work`` in a session that trusts the cache; if its reads turn out stale
        (the commit says so, or it was refused while the log had moved on), run it
        again in a session brought up to date first. A read still stale on the last
        try, with another process writing the same aggregates, is a conflict."""
        for attempt in range(STALE_READ_ATTEMPTS):
            session = Session(self.app, trust_cache=attempt == 0)
            try:
                return work(session)
            except StaleRead as stale:
                if attempt + 1 == STALE_READ_ATTEMPTS:
                    raise ConcurrencyConflict(stale.entity_id, stale.read_version, stale.stored_version) from None
            except Exception as refused:
                stored_nothing = not session.committing or isinstance(refused, ConcurrencyConflict | AlreadyExists)
                if attempt > 0 or not stored_nothing or not self._read_stale_cache(session, refused):
                    raise  # an error during the commit (the store went away) may have stored it: never decide twice
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _read_stale_cache(self, session: Session, refused: Exception) -> bool:
        try:
            return self.app.log_moved_past(session.known)
        except Exception:  # the store is down, say: the refusal is the error to report
            raise refused from None

    def handle_all(
        self,
        commands: Sequence[tuple[Command, int | None]],
        meta: EventMetadata,
        gatekeeper: Gatekeeper | None = None,
        refusals: tuple[type[Exception], ...] = (DomainError,),
    ) -> list[CommandResult]:
        """Handle commands in order in one session: each sees the ones before it,
        and all are stored in one transaction, or none if any is refused (a
        ``refusals`` error is raised as :class:`BatchRefused` with its index; any
        other error, such as the store being down, as itself)."""

        def attempt(session: Session) -> list[CommandResult]:
            decided = []
            for index, (command, expected_version) in enumerate(commands):
                try:
                    decided.append(self.decide(session, command, meta, expected_version, gatekeeper))
                except refusals as refused:
                    raise BatchRefused(index, refused) from refused
            with self.guard.committing(session):
                position = session.commit()
                self.guard.committed(session)
            return [CommandResult(entity_id, version, position, created) for entity_id, version, created in decided]

        try:
            with tracing.span("gam batch", {"gam.commands": len(commands)}):
                results = self._in_session(attempt)
        except BatchRefused as refused:  # counted once, after any retry on fresh state
            metrics.refused(commands[refused.index][0].type_name(), refused)
            raise
        metrics.accepted(command.type_name() for command, _ in commands)
        for command, _ in commands:
            self.after_commit(command, meta)
        return results

    def decide(
        self,
        session: Session,
        command: Command,
        meta: EventMetadata,
        expected_version: int | None = None,
        gatekeeper: Gatekeeper | None = None,
    ) -> tuple[UUID, int, UUID | None]:
        """Load, admit, decide; the entity, its version afterwards, and what the command created in it."""
        handling = self.handlings[type(command)]
        if command.creates:
            target = None
            account = self._account_of_new(session, command)
        else:
            target = session.load(handling.aggregate, command.entity_id)
            account = target if isinstance(target, GlobalAccount) else session.load(GlobalAccount, _account_id(target))
        scope = self._scope(command, handling, target, account)
        if gatekeeper is not None:
            admitted_version = gatekeeper.admit(command, scope)
            expected_version = expected_version if admitted_version is None else admitted_version
        if target is not None and expected_version is not None and target.version != expected_version:
            raise ConcurrencyConflict(target.id, expected_version, target.version)
        if account is not None and account is not target and account.archived and not handling.while_archived:
            raise AccountArchived(f"account {account.name} ({account.id}) is archived")
        self.guard.check(command, meta, account, session)
        arguments = self._arguments(command, handling, scope.tree, meta, session)
        if target is None:
            created = handling.decide(**arguments)
            if created is not None:
                session.add(created)
            entity = session.load(handling.aggregate, command.entity_id)
        else:
            handling.decide(target, **arguments)
            entity = target
        return entity.id, entity.version, command.created_id

    def _account_of_new(self, session: Session, command: Command) -> GlobalAccount | None:
        """The account a new entity joins (None when the command creates the account)."""
        account_id = getattr(command, "account_id", None)
        if self.handlings[type(command)].aggregate is GlobalAccount or account_id is None:
            return None
        return session.load(GlobalAccount, account_id)

    def _scope(
        self, command: Command, handling: Handling, target: GamAggregate | None, account: GlobalAccount | None
    ) -> Scope:
        if handling.unit is not None:
            unit = handling.unit(command, target)
        else:
            unit = getattr(command, "unit_id", None) or getattr(target, "unit_id", None)
        if account is None:
            return Scope(command.entity_id, unit)
        return Scope(account.id, unit, account.tree(), tuple(account.team.values()))

    def _arguments(
        self, command: Command, handling: Handling, tree: UnitTree | None, meta: EventMetadata, session: Session
    ) -> dict[str, Any]:
        accepted = self._parameters[type(command)]
        arguments = {
            name: plain(value)
            for name, value in command.arguments().items()
            if name in accepted and name not in handling.consumed
        }
        if "tree" in accepted:
            arguments["tree"] = tree
        if "meta" in accepted:
            arguments["meta"] = meta
        if handling.context is not None:
            arguments.update(handling.context(command, session))
        if "session" in accepted:
            arguments["session"] = session
        return arguments

    def works_after_commit(self, command: Command) -> bool:
        """Whether :meth:`after_commit` does anything for ``command``."""
        return self.handlings[type(command)].after_commit is not None

    def after_commit(self, command: Command, meta: EventMetadata) -> None:
        """What a command does once its events are stored (erasure destroys the key)."""
        handling = self.handlings[type(command)]
        if handling.after_commit is not None:
            handling.after_commit(command, self.app, meta)


class BatchRefused(Exception):
    """A command of a batch was refused, so nothing of the batch is stored."""

    def __init__(self, index: int, refusal: Exception) -> None:
        super().__init__(f"command {index} was refused: {refusal}")
        self.index = index
        self.refusal = refusal


def _account_id(aggregate: GamAggregate) -> UUID:
    account_id: UUID = getattr(aggregate, "account_id")  # noqa: B009 - plans, stakeholders and deals all have one
    return account_id
