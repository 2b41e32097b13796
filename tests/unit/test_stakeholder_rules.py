"""Stakeholder rules: ratings, the org chart (no cycles, one customer), people who
left, interactions, and personal data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import errors
from domain.stakeholder import Stakeholder
from domain.values import PersonalData
from services import handlers as h
from services.app import GamApplication
from tests.support import EPOCH, meta
from tests.unit.builders import Org, build_org


@pytest.fixture
def org(memory_app: GamApplication) -> Org:
    return build_org(memory_app, with_plan=False)


def person(org: Org, stakeholder_id: UUID) -> Stakeholder:
    return org.app.load(Stakeholder, stakeholder_id)


# --- ratings --------------------------------------------------------------------------------


@pytest.mark.parametrize("influence", [0, 6, -1, 10, True, False, 3.0, "3", None])
def test_influence_is_a_whole_number_from_1_to_5(org: Org, influence: Any) -> None:
    who = org.stakeholder()
    error = org.refused(errors.InvalidValue, h.rate_influence, stakeholder_id=who, influence=influence)
    assert error.field == "influence"
    assert person(org, who).influence is None


def test_influence_bounds_are_inclusive(org: Org) -> None:
    who = org.stakeholder()
    for influence in (1, 5):
        h.rate_influence(org.app, meta(), stakeholder_id=who, influence=influence)
        assert person(org, who).influence == influence


@pytest.mark.parametrize("sentiment", [-3, 3, 5, True, False, 1.0, "1", None])
def test_sentiment_is_a_whole_number_from_minus_2_to_plus_2(org: Org, sentiment: Any) -> None:
    """``False == 0`` and ``True == 1`` are in range as numbers, but a bool is not a rating."""
    who = org.stakeholder()
    error = org.refused(errors.InvalidValue, h.rate_sentiment, stakeholder_id=who, sentiment=sentiment)
    assert error.field == "sentiment"
    assert person(org, who).sentiment is None


def test_sentiment_bounds_are_inclusive(org: Org) -> None:
    who = org.stakeholder()
    for sentiment in (-2, 0, 2):
        h.rate_sentiment(org.app, meta(), stakeholder_id=who, sentiment=sentiment)
        assert person(org, who).sentiment == sentiment


@pytest.mark.parametrize("role", ["buyer", "Champion", ""])
def test_buying_role_is_one_of_the_known_roles(org: Org, role: str) -> None:
    who = org.stakeholder()
    assert org.refused(errors.InvalidValue, h.change_buying_role, stakeholder_id=who, role=role).field == "role"


# --- the org chart --------------------------------------------------------------------------


def reports_to(org: Org, who: UUID, manager: UUID | None) -> None:
    h.set_reports_to(org.app, meta(), stakeholder_id=who, manager_id=manager)


def chain(org: Org, length: int) -> list[UUID]:
    """``length`` people, each reporting to the next; the last reports to nobody."""
    people = [org.stakeholder(name=f"Person {i}") for i in range(length)]
    for below, above in pairwise(people):
        reports_to(org, below, above)
    return people


def test_nobody_reports_to_themselves(org: Org) -> None:
    who = org.stakeholder()
    error = org.refused(errors.ReportsToCycle, h.set_reports_to, stakeholder_id=who, manager_id=who)
    assert error.rule == "reports_to_cycle"
    assert person(org, who).reports_to is None


def test_two_people_do_not_report_to_each_other(org: Org) -> None:
    a, b = chain(org, 2)
    org.refused(errors.ReportsToCycle, h.set_reports_to, stakeholder_id=b, manager_id=a)
    assert person(org, b).reports_to is None
    assert person(org, a).reports_to == b


@pytest.mark.parametrize("manager_index", [0, 1, 2, 3])
def test_no_cycle_through_a_long_chain(org: Org, manager_index: int) -> None:
    people = chain(org, 5)  # 0 → 1 → 2 → 3 → 4
    top = people[-1]
    version = person(org, top).version
    org.refused(errors.ReportsToCycle, h.set_reports_to, stakeholder_id=top, manager_id=people[manager_index])
    assert person(org, top).version == version
    assert person(org, top).reports_to is None


def test_the_domain_refuses_a_cycle_named_in_the_manager_chain(org: Org) -> None:
    a, b, c = chain(org, 3)
    top = person(org, c)
    with pytest.raises(errors.ReportsToCycle):
        top.set_reports_to(manager_id=a, manager_chain=(a, b, c), manager_account_id=org.account, meta=meta())
    assert top.pending_events == []


def test_moving_within_the_chart_without_a_cycle_is_fine(org: Org) -> None:
    people = chain(org, 4)
    outsider = org.stakeholder(name="Outsider")
    reports_to(org, people[0], people[2])  # skip a level
    reports_to(org, people[-1], outsider)  # the top gets a manager from outside the chain
    reports_to(org, people[1], None)  # and the chart can be cleared
    assert person(org, people[0]).reports_to == people[2]
    assert person(org, people[-1]).reports_to == outsider
    assert person(org, people[1]).reports_to is None


def test_a_stakeholder_reports_to_someone_at_the_same_customer(org: Org) -> None:
    other = build_org(org.app, with_plan=False, name="Other")
    ours, theirs = org.stakeholder(), other.stakeholder()
    error = org.refused(errors.UnitOfAnotherAccount, h.set_reports_to, stakeholder_id=ours, manager_id=theirs)
    assert error.rule == "unit_of_another_account"
    assert person(org, ours).reports_to is None


def test_the_manager_must_exist(org: Org) -> None:
    who, missing = org.stakeholder(), uuid4()
    error = org.refused(errors.NotFound, h.set_reports_to, stakeholder_id=who, manager_id=missing)
    assert (error.kind, error.entity_id) == ("stakeholder", missing)


# --- people who left ---------------------------------------------------------------------------

STAKEHOLDER_COMMANDS: dict[str, tuple[Callable[..., Any], Callable[[UUID], dict[str, Any]]]] = {
    "correct_personal_data": (h.correct_personal_data, lambda _: {"personal": PersonalData("Ada K", "a@c.example")}),
    "change_stakeholder_title": (h.change_stakeholder_title, lambda _: {"title": "CEO"}),
    "change_buying_role": (h.change_buying_role, lambda _: {"role": "champion"}),
    "rate_influence": (h.rate_influence, lambda _: {"influence": 4}),
    "rate_sentiment": (h.rate_sentiment, lambda _: {"sentiment": -1}),
    "assign_relationship_owner": (h.assign_relationship_owner, lambda _: {"owner": "bob"}),
    "set_reports_to": (h.set_reports_to, lambda manager: {"manager_id": manager}),
    "clear_reports_to": (h.set_reports_to, lambda _: {"manager_id": None}),
    "log_interaction": (
        h.log_interaction,
        lambda _: {
            "interaction_id": uuid4(),
            "occurred_at": EPOCH - timedelta(days=2),
            "channel": "meeting",
            "summary": "Lunch",
        },
    ),
    "record_departure": (h.record_departure, lambda _: {"left_on": date(2027, 1, 3)}),
}


@pytest.mark.parametrize("left", [False, True], ids=["present", "left"])
@pytest.mark.parametrize("command", list(STAKEHOLDER_COMMANDS))
def test_a_stakeholder_who_left_is_history(org: Org, command: str, left: bool) -> None:
    who, manager = org.stakeholder(), org.stakeholder(name="Grace")
    handler, kwargs = STAKEHOLDER_COMMANDS[command]
    if not left:  # valid while the person is still there
        handler(org.app, meta(), stakeholder_id=who, **kwargs(manager))
        return
    h.record_departure(org.app, meta(), stakeholder_id=who, left_on=date(2027, 1, 1))
    version = person(org, who).version
    error = org.refused(errors.StakeholderHasLeft, handler, stakeholder_id=who, **kwargs(manager))
    assert error.rule == "stakeholder_has_left"
    assert person(org, who).version == version
    assert person(org, who).left_on == date(2027, 1, 1)


def test_every_stakeholder_command_is_covered() -> None:
    """Erasure is the one command a leaver still takes (see the erasure tests below)."""
    handlers = {handler.__name__ for handler, _ in STAKEHOLDER_COMMANDS.values()}
    exempt = {"identify_stakeholder", "erase_personal_data"}
    assert handlers | exempt == {
        kind.type_name() for kind, handling in h.HANDLINGS.items() if handling.aggregate is Stakeholder
    }


# --- erased personal data --------------------------------------------------------------------


def erase(org: Org, who: UUID) -> None:
    h.erase_personal_data(org.app, meta(), stakeholder_id=who, legal_basis="GDPR art. 17 request")


def test_erased_personal_data_is_not_replaced_or_added_to(org: Org) -> None:
    who = org.stakeholder()
    erase(org, who)
    error = org.refused(
        errors.SubjectErased, h.correct_personal_data, stakeholder_id=who, personal=PersonalData("Ada Again")
    )
    assert error.rule == "personal_data_erased"
    org.refused(errors.SubjectErased, h.log_interaction, **interaction(org, who, EPOCH - timedelta(hours=1)))
    assert person(org, who).interactions == []
    # Business facts about the person still change.
    h.rate_influence(org.app, meta(), stakeholder_id=who, influence=2)
    assert person(org, who).influence == 2


def test_personal_data_is_erased_once(org: Org) -> None:
    who = org.stakeholder()
    erase(org, who)
    erased = person(org, who)
    version = erased.version
    with pytest.raises(errors.SubjectErased):
        erased.erase_personal_data(legal_basis="again", meta=meta())
    assert erased.pending_events == []
    assert erased.version == version


def test_a_leaver_s_personal_data_can_still_be_erased(org: Org) -> None:
    who = org.stakeholder()
    h.record_departure(org.app, meta(), stakeholder_id=who, left_on=date(2027, 1, 1))
    erase(org, who)
    assert person(org, who).erased
    org.refused(errors.StakeholderHasLeft, h.correct_personal_data, stakeholder_id=who, personal=PersonalData("X"))


# --- interactions ------------------------------------------------------------------------------


def interaction(org: Org, who: UUID, occurred_at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "stakeholder_id": who,
        "interaction_id": uuid4(),
        "occurred_at": occurred_at,
        "channel": "call",
        "summary": "Renewal talk",
        **extra,
    }


def test_an_interaction_in_the_future_is_refused(org: Org) -> None:
    who = org.stakeholder()
    before = org.app.recorder.max_notification_id()
    m = meta()
    for later in (timedelta(microseconds=1), timedelta(days=1)):
        with pytest.raises(errors.InvalidValue) as raised:
            h.log_interaction(org.app, m, **interaction(org, who, m.at + later))
        assert raised.value.field == "occurred_at"
    # The same instant in another time zone is still in the future.
    plus_two = timezone(timedelta(hours=2))
    with pytest.raises(errors.InvalidValue):
        h.log_interaction(org.app, m, **interaction(org, who, (m.at + timedelta(seconds=1)).astimezone(plus_two)))
    assert org.app.recorder.max_notification_id() == before
    assert person(org, who).interactions == []


def test_an_interaction_up_to_now_is_logged_in_utc(org: Org) -> None:
    who = org.stakeholder()
    m = meta()
    h.log_interaction(org.app, m, **interaction(org, who, m.at.astimezone(timezone(timedelta(hours=-5)))))
    logged = person(org, who).interactions
    assert [i.occurred_at for i in logged] == [m.at]
    assert logged[0].occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"occurred_at": datetime(2027, 1, 1, 10, 0)}, "occurred_at"),  # naive
        ({"channel": "fax"}, "channel"),
        ({"summary": "  "}, "summary"),
    ],
)
def test_interactions_are_validated(org: Org, overrides: dict[str, Any], field: str) -> None:
    who = org.stakeholder()
    kwargs = interaction(org, who, EPOCH - timedelta(hours=1)) | overrides
    assert org.refused(errors.InvalidValue, h.log_interaction, **kwargs).field == field


def test_an_interaction_is_logged_once(org: Org) -> None:
    who = org.stakeholder()
    kwargs = interaction(org, who, EPOCH - timedelta(hours=1))
    h.log_interaction(org.app, meta(), **kwargs)
    error = org.refused(errors.AlreadyExists, h.log_interaction, **kwargs)
    assert (error.kind, error.entity_id) == ("interaction", kwargs["interaction_id"])
    assert len(person(org, who).interactions) == 1


# --- identifying people and their personal data ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "email", "phone", "field"),
    [
        ("Ada", "ada.example.com", None, "personal.email"),
        ("Ada", "", None, "personal.email"),
        ("Ada", "   ", None, "personal.email"),
        ("  ", "ada@example.com", None, "personal.name"),
        ("Ada", None, "+49 " + "1" * 40, "personal.phone"),
    ],
)
def test_personal_data_is_validated(name: str, email: str | None, phone: str | None, field: str) -> None:
    with pytest.raises(errors.InvalidValue) as raised:
        PersonalData(name, email, phone)
    assert raised.value.field == field


def test_an_invalid_email_stores_nothing(org: Org) -> None:
    who = org.stakeholder()
    before = org.app.recorder.max_notification_id()
    with pytest.raises(errors.InvalidValue):
        h.correct_personal_data(
            org.app, meta(), stakeholder_id=who, personal=PersonalData("Ada", "ada-at-customer.example")
        )
    with pytest.raises(errors.InvalidValue):
        h.identify_stakeholder(
            org.app,
            meta(),
            stakeholder_id=uuid4(),
            account_id=org.account,
            unit_id=org.hq,
            title="CFO",
            personal=PersonalData("Bob", "bob"),
        )
    assert org.app.recorder.max_notification_id() == before
    assert person(org, who).personal.email == "ada@customer.example"


def test_personal_data_must_be_personal_data(org: Org) -> None:
    who = org.stakeholder()
    raw = {"name": "Ada", "email": "ada@c.example"}
    assert (
        org.refused(errors.InvalidValue, h.correct_personal_data, stakeholder_id=who, personal=raw).field == "personal"
    )
    error = org.refused(
        errors.InvalidValue,
        h.identify_stakeholder,
        stakeholder_id=uuid4(),
        account_id=org.account,
        unit_id=org.hq,
        title="CFO",
        personal=raw,
    )
    assert error.field == "personal"


def test_stakeholders_sit_on_open_units_of_their_account(org: Org) -> None:
    other = build_org(org.app, with_plan=False, name="Other")
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    kwargs = {"account_id": org.account, "title": "CTO", "personal": PersonalData("Ada")}
    org.refused(errors.UnitClosed, h.identify_stakeholder, stakeholder_id=uuid4(), unit_id=org.houston, **kwargs)
    org.refused(errors.NotFound, h.identify_stakeholder, stakeholder_id=uuid4(), unit_id=other.hq, **kwargs)
    org.refused(errors.NotFound, h.identify_stakeholder, stakeholder_id=uuid4(), unit_id=uuid4(), **kwargs)
    assert (
        org.refused(
            errors.InvalidValue,
            h.identify_stakeholder,
            stakeholder_id=uuid4(),
            unit_id=org.hq,
            **{**kwargs, "title": ""},
        ).field
        == "title"
    )


def test_a_stakeholder_id_is_identified_once(org: Org) -> None:
    who = org.stakeholder()
    error = org.refused(
        errors.AlreadyExists,
        h.identify_stakeholder,
        stakeholder_id=who,
        account_id=org.account,
        unit_id=org.paris,
        title="CTO",
        personal=PersonalData("Someone else"),
    )
    assert (error.kind, error.entity_id) == ("stakeholder", who)
    assert person(org, who).unit_id == org.hq
