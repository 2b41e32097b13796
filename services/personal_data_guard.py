"""The personal-data guard: business free text is checked before it is stored.

Every command's text fields say what they hold (``Spec(text=...)``); those marked
``checked``, and the reason that comes with the command, are looked at with
:func:`domain.personal_text.find_personal_data` against the names of the account's
known stakeholders; the addresses of the account's team and of the caller are our
own people, whom gam names as owners and participants. ``GAM_PERSONAL_DATA_GUARD``
says what follows: ``refuse`` (the default) raises
:class:`~domain.errors.PersonalDataInText` naming the field, so nothing is stored
(HTTP 422); ``warn`` logs which command and field, never the text, and lets it
through; ``off`` does not look.

The names come from the log itself (:class:`KnownNames`), read as far as the
session's cached reads hold it: the first check of a process reads them once,
then each commit of this process adds its own stakeholders without a query, so a
caught-up process asks the store nothing before a command, as the bus intends. A
stakeholder another process stored meanwhile is caught at the commit (the read
check's ``watched``): the command is decided again on fresh state, names included.
Stakeholders identified earlier in the same unit of work (a batch) are read from
the session.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.commands import Command
from domain.errors import PersonalDataInText
from domain.metadata import EventMetadata
from domain.personal_text import find_personal_data
from domain.stakeholder import Stakeholder
from domain.values import ERASED
from infra.event_facts import FactsDecoder
from infra.read_check import Watch, as_uuid

if TYPE_CHECKING:
    from services.app import GamApplication
    from services.bus import Session

GuardMode = Literal["refuse", "warn", "off"]
PAGE = 1_000
log = logging.getLogger("gam.personal_data")


class KnownNames:
    """The current names of each account's stakeholders, as the log has them (erased
    people have none)."""

    TOPICS = tuple(
        get_topic(cls)
        for cls in (Stakeholder.Identified, Stakeholder.PersonalDataCorrected, Stakeholder.PersonalDataErased)
    )
    IDENTIFIED = TOPICS[0]

    def __init__(self, app: GamApplication) -> None:
        self.app = app
        self._scanned_to = 0
        """Every stakeholder event up to this log position is reflected."""
        self._names: dict[UUID, dict[UUID, str]] = {}
        self._account_of: dict[UUID, UUID] = {}
        self._claimed: dict[UUID, UUID] = {}
        """People this process is storing right now, and their account: another of its
        commits that finds them stored in between knows whose they are."""
        self._lock = threading.Lock()
        self._decode = FactsDecoder(app.mapper, keep_sealed=True).decode
        """A person's first event read for its account only: their personal data stays sealed."""

    def of_account(self, account_id: UUID, up_to: int | None) -> list[str]:
        """The names with the log read up to ``up_to`` (None: its end, one more query), reading
        only the stakeholder events after what was read before, if any."""
        with self._lock:
            self._catch_up(up_to if up_to is not None else self.app.recorder.max_notification_id() or 0)
            return list(self._names.get(account_id, {}).values())

    def watcher(self, account_id: UUID) -> Watch:
        """What makes names read now stale, for the commit's read check (:class:`_NamesWatch`)."""
        with self._lock:
            people = frozenset(self._names.get(account_id, {}))
        return _NamesWatch(self, account_id, people)

    def owner_of(self, person: UUID) -> UUID | None:
        """The account of a person this process knows of: one it read, stored or is storing."""
        return self._account_of.get(person, self._claimed.get(person))

    def learn_owner(self, first: StoredEvent) -> UUID | None:
        """The account a person's first event (``Identified``) names, remembered: a fact once stored."""
        facts = self._decode(first)
        named = facts.payload.get("account_id") if facts is not None else None
        if not isinstance(named, str):
            return None
        account = self._account_of[as_uuid(first.originator_id)] = UUID(named)
        return account

    @contextlib.contextmanager
    def claiming(self, people: Iterable[Stakeholder]) -> Iterator[None]:
        """While ``people`` are being stored: whose they are, for the other commits' watchers.

        Around every commit, so it takes no lock: ``self._lock`` is held while names are
        read from the store, and a commit must not wait for that. Each claim is one dict
        operation, atomic on its own, and the watchers only read single entries."""
        new = {person.id: person.account_id for person in people if person.version == len(person.pending_events)}
        self._claimed.update(new)
        try:
            yield
        finally:
            for person in new:
                self._claimed.pop(person, None)

    def remember(self, people: Iterable[Stakeholder], first: int, last: int) -> None:
        """After this process stored positions ``first``..``last``: what others stored before
        is read (if anything), then the stakeholders of this commit are all that is new, so
        the next check asks the store nothing (as the application's aggregate cache does)."""
        with self._lock:
            self._catch_up(first - 1)
            people = list(people)
            for person in people:
                self._account_of[person.id] = person.account_id  # a fact now it is stored
            if self._scanned_to != first - 1:
                return
            for person in people:
                self._set(person.account_id, person.id, None if person.erased else person.personal.name)
            self._scanned_to = last

    def _catch_up(self, up_to: int) -> None:
        while self._scanned_to < up_to:
            page = self.app.recorder.select_notifications(
                start=self._scanned_to + 1, limit=PAGE, stop=up_to, topics=self.TOPICS
            )
            for notification in page:
                self._apply(self.app.mapper.to_domain_event(notification))
            self._scanned_to = page[-1].id if len(page) == PAGE else up_to

    def _set(self, account: UUID, person: UUID, name: str | None) -> None:
        people = self._names.setdefault(account, {})
        if name is None or name == ERASED:
            people.pop(person, None)
        else:
            people[person] = name

    def _apply(self, event: object) -> None:
        if not isinstance(event, GamEvent):
            return
        person = event.originator_id
        if isinstance(event, Stakeholder.Identified):
            self._account_of[person] = event.account_id
        account = self._account_of.get(person)
        if account is None:
            return
        if isinstance(event, Stakeholder.Identified | Stakeholder.PersonalDataCorrected):
            self._set(account, person, event.personal.name)
        elif isinstance(event, Stakeholder.PersonalDataErased):
            self._set(account, person, None)


class _NamesWatch:
    """Whether an event stored meanwhile makes the names a check read stale: a change to one
    of the account's stakeholders, or a person identified in the account.

    Only people count: the commands of several users of one process, each in their own
    account, would otherwise send each other back at every new plan or deal. A person
    another process identified is the account's or not as their first event says, which
    the commit's read check looks up in its own transaction (:meth:`stale_given`). Counting
    every such person as the account's sent a command back for every person identified in
    any account meanwhile: with two API processes under load, three tries in a row met one,
    and the caller was answered 412 for a conflict that was not."""

    def __init__(self, names: KnownNames, account_id: UUID, people: frozenset[UUID]) -> None:
        self._names = names
        self._account_id = account_id
        self._people = people

    def __call__(self, entity: UUID, version: int, topic: str) -> bool | None:
        if entity in self._people:
            return True
        if topic != KnownNames.IDENTIFIED:
            return False
        owner = self._names.owner_of(entity)
        return None if owner is None else owner == self._account_id

    def stale_given(self, first: StoredEvent) -> bool:
        owner = self._names.learn_owner(first)
        return owner is None or owner == self._account_id


class PersonalDataGuard:
    def __init__(self, app: GamApplication, mode: GuardMode = "refuse") -> None:
        self.mode = mode
        self.names = KnownNames(app)

    def check(self, command: Command, meta: EventMetadata, account: GlobalAccount | None, session: Session) -> None:
        """Refuse (or report) the first checked text of ``command``, or its reason, that
        holds obvious personal data; ``account``: the account the command is about (None
        for a new one). Names are read from the log up to where the session's reads hold
        it, and from the stakeholders of the session itself (a batch that identifies a person,
        then names them); a stakeholder another process stored meanwhile sends the command
        back from its commit to be decided again (:class:`~infra.read_check.ReadCheck`)."""
        if self.mode == "off":
            return
        texts = list(command.checked_texts())
        if meta.reason:
            texts.append(("reason", meta.reason))
        if not texts:
            return
        names: list[str] = []
        team = {meta.actor}  # the caller may name themselves (a review's participant, say)
        if account is not None:
            names = self.names.of_account(account.id, session.known)
            session.watched = self.names.watcher(account.id)
            names += [
                p.personal.name for p in session.loaded(Stakeholder) if p.account_id == account.id and not p.erased
            ]
            team |= {assignment.member for assignment in account.team.values()}
        for field, text in texts:
            finding = find_personal_data(text, names, team)
            if finding is None:
                continue
            if self.mode == "refuse":
                raise PersonalDataInText(field, finding.explain())
            log.warning(
                "%s: %s holds %s; accepted (GAM_PERSONAL_DATA_GUARD=warn)", command.type_name(), field, finding.kind
            )

    def committing(self, session: Session) -> contextlib.AbstractContextManager[None]:
        """Around a unit of work's commit: the people it stores are claimed for its account."""
        if self.mode == "off":
            return contextlib.nullcontext()
        return self.names.claiming(session.loaded(Stakeholder))

    def committed(self, session: Session) -> None:
        """Learn the names a unit of work of this process just stored, without reading them back."""
        if self.mode != "off" and session.stored is not None:
            self.names.remember(session.loaded(Stakeholder), *session.stored)
