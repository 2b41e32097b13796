"""Typed domain errors, one per rule the model protects.

Each error carries ``rule`` (a stable, machine-readable name) so the edges
(HTTP, CLI) can map it to a status code in one place and tell the caller which
rule stopped the command. A raised error means nothing was recorded: aggregates
check every rule before they trigger an event.
"""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """Base of every rule violation; ``rule`` names the rule."""

    rule: str = "domain_rule"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A value is malformed or out of its range; ``field`` is its path."""

    rule = "invalid_value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TooManyDecimals(InvalidValue):
    """A money amount has at most its currency's ISO 4217 minor units (2 for USD, 0 for JPY)."""

    rule = "too_many_decimals"


class ReasonRequired(InvalidValue):
    """Some changes are explained: a deal that moves back a stage says why."""

    rule = "reason_required"


class PersonalDataInText(InvalidValue):
    """Business free text (a title, a description, a reason) holds no personal data:
    stored there it would be in clear and outlive the person's erasure. The message
    says what was found and where such data belongs, never the data itself."""

    rule = "personal_data_in_text"


class CloseDateInPast(InvalidValue):
    """A deal opened now is expected to close today or later; only a history brought
    over from another system (a command recorded at an earlier moment) opens deals
    whose close date has passed since."""

    rule = "close_date_in_past"


class NotFound(DomainError):
    """A referenced entity does not exist (in this aggregate or the store)."""

    rule = "not_found"

    def __init__(self, kind: str, entity_id: UUID | str) -> None:
        super().__init__(f"{kind} {entity_id} not found")
        self.kind = kind
        self.entity_id = entity_id


class AlreadyExists(DomainError):
    """An entity with this id (or natural key) was already recorded."""

    rule = "already_exists"

    def __init__(self, kind: str, entity_id: UUID | str) -> None:
        super().__init__(f"{kind} {entity_id} already exists")
        self.kind = kind
        self.entity_id = entity_id


class AccountArchived(DomainError):
    """Archived accounts are read-only history."""

    rule = "account_archived"


class UnitClosed(DomainError):
    """A closed unit takes no new units, team members, objectives or deals."""

    rule = "unit_closed"


class InvalidUnitHierarchy(DomainError):
    """Units form HQ → region → country → local unit, one level at a time."""

    rule = "invalid_unit_hierarchy"


class UnitHasOpenChildren(DomainError):
    """A unit can only close once every unit below it is closed."""

    rule = "unit_has_open_children"


class UnitOfAnotherAccount(DomainError):
    """Plans, stakeholders and deals may only reference their own account's units."""

    rule = "unit_of_another_account"


class CascadeNotBelowSource(DomainError):
    """An objective can only be cascaded to units strictly below the cascading unit."""

    rule = "cascade_not_below_source"


class CascadeSourceNotEntitled(DomainError):
    """Only the unit that owns an objective, or one that took it on, may cascade it."""

    rule = "cascade_source_not_entitled"


class AlreadyCascaded(DomainError):
    """A unit receives a given objective once."""

    rule = "already_cascaded"


class CascadeNotAddressedToUnit(DomainError):
    """Only a unit an objective was cascaded to may respond to it."""

    rule = "cascade_not_addressed_to_unit"


class CascadeAlreadyAnswered(DomainError):
    """A unit answers a cascaded objective once."""

    rule = "cascade_already_answered"


class ProgressNotEntitled(DomainError):
    """Progress on an objective is reported by its owner or a unit that took it on."""

    rule = "progress_not_entitled"


class InvalidActionTransition(DomainError):
    """Actions move planned → in progress → done, and may be blocked on the way."""

    rule = "invalid_action_transition"


class PlanNotEditable(DomainError):
    """A submitted or approved plan's strategy is fixed until it is reopened."""

    rule = "plan_not_editable"


class InvalidPlanTransition(DomainError):
    """Plans go draft → submitted → approved, and back only by reopening."""

    rule = "invalid_plan_transition"


class ReportsToCycle(DomainError):
    """The customer's org chart is a tree: nobody reports to themselves, even indirectly."""

    rule = "reports_to_cycle"


class StakeholderHasLeft(DomainError):
    """A stakeholder who left the customer is kept as history, not changed."""

    rule = "stakeholder_has_left"


class SubjectErased(DomainError):
    """A person whose data was erased gets no new personal data (name, contacts, notes)."""

    rule = "personal_data_erased"


class InvalidStageTransition(DomainError):
    """Deals advance one stage at a time, move back to any earlier stage, and close
    (won) only from the late stages."""

    rule = "invalid_stage_transition"


class NegativeAmount(DomainError):
    """Money amounts in plans and deals are never negative."""

    rule = "negative_amount"


class CurrencyMismatch(DomainError):
    """A deal keeps the currency it was opened in."""

    rule = "currency_mismatch"


class DealClosed(DomainError):
    """A won or lost deal is changed only after it is reopened."""

    rule = "deal_closed"


class DealNotClosed(DomainError):
    """Only a won or lost deal can be reopened."""

    rule = "deal_not_closed"


class SelfApproval(DomainError):
    """Separation of duties: whoever submitted a plan does not approve it."""

    rule = "self_approval"


class NotAnApprover(DomainError):
    """A plan is approved only by someone holding an approver role on its account's
    team (the lead GAM or the executive sponsor, unless configured otherwise)."""

    rule = "not_an_approver"


class ReconsiderNeedsDecline(DomainError):
    """Only a declined directive can be sent back to its unit to reconsider."""

    rule = "reconsider_needs_decline"


class ConcurrencyConflict(DomainError):
    """Someone else changed the entity first; the caller must reload and retry."""

    rule = "concurrency_conflict"

    def __init__(self, entity_id: UUID, expected_version: int | None, actual_version: int | None) -> None:
        super().__init__(
            f"entity {entity_id} was at version {actual_version}, the command expected version {expected_version}"
        )
        self.entity_id = entity_id
        self.expected_version = expected_version
        self.actual_version = actual_version
