"""Use cases on the stakeholder map."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from domain.errors import AlreadyExists
from domain.metadata import EventMetadata
from domain.stakeholder import Stakeholder
from domain.values import PersonalData
from services.app import CommandResult, GamApplication
from services.handlers.accounts import active_tree


def identify_stakeholder(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    account_id: UUID,
    unit_id: UUID,
    title: str,
    personal: PersonalData,
) -> CommandResult:
    if app.exists(stakeholder_id):  # before sealing: an erased person's id has no key to seal with
        raise AlreadyExists("stakeholder", stakeholder_id)
    person = Stakeholder.identify(
        stakeholder_id=stakeholder_id,
        unit_id=unit_id,
        title=title,
        personal=personal,
        tree=active_tree(app, account_id),
        meta=meta,
    )
    return app.commit(person)


def _person(app: GamApplication, stakeholder_id: UUID, expected_version: int | None) -> Stakeholder:
    person = app.load(Stakeholder, stakeholder_id, expected_version)
    active_tree(app, person.account_id)
    return person


def correct_personal_data(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    personal: PersonalData,
    expected_version: int | None = None,
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.correct_personal_data(personal=personal, meta=meta)
    return app.commit(person)


def change_stakeholder_title(
    app: GamApplication, meta: EventMetadata, *, stakeholder_id: UUID, title: str, expected_version: int | None = None
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.change_title(title=title, meta=meta)
    return app.commit(person)


def change_buying_role(
    app: GamApplication, meta: EventMetadata, *, stakeholder_id: UUID, role: str, expected_version: int | None = None
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.change_buying_role(role=role, meta=meta)
    return app.commit(person)


def rate_influence(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    influence: int,
    expected_version: int | None = None,
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.rate_influence(influence=influence, meta=meta)
    return app.commit(person)


def rate_sentiment(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    sentiment: int,
    expected_version: int | None = None,
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.rate_sentiment(sentiment=sentiment, meta=meta)
    return app.commit(person)


def assign_relationship_owner(
    app: GamApplication, meta: EventMetadata, *, stakeholder_id: UUID, owner: str, expected_version: int | None = None
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.assign_relationship_owner(owner=owner, meta=meta)
    return app.commit(person)


MAX_ORG_CHART_DEPTH = 1_000
"""Walking further up than this means the stored chart is corrupt, not deep."""


def set_reports_to(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    manager_id: UUID | None,
    expected_version: int | None = None,
) -> CommandResult:
    """Loads the proposed manager and everyone above them, so the stakeholder can
    refuse a cycle."""
    person = _person(app, stakeholder_id, expected_version)
    chain: list[UUID] = []
    manager_account: UUID | None = None
    next_id = manager_id
    while next_id is not None and next_id not in chain and len(chain) < MAX_ORG_CHART_DEPTH:
        above = app.load(Stakeholder, next_id)
        manager_account = manager_account or above.account_id
        chain.append(next_id)
        next_id = above.reports_to
    person.set_reports_to(
        manager_id=manager_id, manager_chain=tuple(chain), manager_account_id=manager_account, meta=meta
    )
    return app.commit(person)


def log_interaction(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    interaction_id: UUID,
    occurred_at: datetime,
    channel: str,
    summary: str,
    expected_version: int | None = None,
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.log_interaction(
        interaction_id=interaction_id, occurred_at=occurred_at, channel=channel, summary=summary, meta=meta
    )
    return app.commit(person)


def record_departure(
    app: GamApplication,
    meta: EventMetadata,
    *,
    stakeholder_id: UUID,
    left_on: date,
    expected_version: int | None = None,
) -> CommandResult:
    person = _person(app, stakeholder_id, expected_version)
    person.record_departure(left_on=left_on, meta=meta)
    return app.commit(person)


def erase_personal_data(
    app: GamApplication, meta: EventMetadata, *, stakeholder_id: UUID, legal_basis: str
) -> CommandResult:
    """Record the erasure, then destroy the person's key. Re-running it after a
    failure between the two finishes the job (the key is destroyed again)."""
    person = app.load(Stakeholder, stakeholder_id)
    result = None
    if not person.erased:
        person.erase_personal_data(legal_basis=legal_basis, meta=meta)
        result = app.commit(person)
    app.personal_keys.destroy(stakeholder_id, erased_by=meta.actor, erased_at=meta.at, legal_basis=legal_basis)
    return result or CommandResult(person.id, person.version, app.recorder.max_notification_id() or 0)
