"""Every aggregate and event type of the model, in one place (for schemas,
projections that must handle them all, and tests that check coverage)."""

from __future__ import annotations

from domain.account import GlobalAccount
from domain.base import GamAggregate, GamEvent
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder

AGGREGATES: tuple[type[GamAggregate], ...] = (GlobalAccount, AccountPlan, Stakeholder, Deal)


def event_classes() -> list[type[GamEvent]]:
    """The event classes each aggregate declares, in declaration order."""
    found: list[type[GamEvent]] = []
    for aggregate in AGGREGATES:
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, GamEvent) and value not in found:
                found.append(value)
    return found


PERSONAL_DATA_FIELDS: dict[str, frozenset[str]] = {
    "Stakeholder.Identified": frozenset({"personal"}),
    "Stakeholder.PersonalDataCorrected": frozenset({"personal"}),
    "Stakeholder.InteractionLogged": frozenset({"summary"}),
}
"""Event fields that hold a person's data (name, contact details, free-text notes
about them), by event type. They are kept apart so they can be redacted in the
audit trail and on Kafka, and erased."""
