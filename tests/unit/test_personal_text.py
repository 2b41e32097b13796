"""What counts as obvious personal data in business text, and which text fields of
which commands are checked (read from the command registry, so a new text field
cannot escape: it must say what it holds)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.commands import COMMANDS, AssessQualification
from domain.personal_text import TextKind, find_personal_data, mentions_any
from domain.values import MeddpiccElement, QualificationStatus

SAFE = st.text(alphabet=st.sampled_from("abcdefghij KLMNOP,;:!?()-'"), max_size=80)
"""Prose without digits or '@': nothing in it can be an address or a number."""
NAMES = st.lists(st.text(alphabet="xyzXYZ", min_size=4, max_size=12), max_size=5)


@pytest.mark.parametrize(
    "text",
    [
        "write to zelda.q@customer.example",
        "call +49 30 1234567",
        "0044 20 7946 0958",
        "(030) 1234567",
        "030 1234567 for the plant",
        "555-123-4567",
        "Tel: 4711 2233",
        "mobile 0171-1234567",
        "call 0041791234567",
        "+41791234567",
    ],
)
def test_addresses_and_phone_numbers_are_found(text: str) -> None:
    assert find_personal_data(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "FY2027 budget of EUR 1,200,000",
        "Close by 2027-05-31",
        "Plants 2027 2028 2029",
        "Q3 2027: 40 000 units at +15% margin",
        "ISO 27001 certified, release 1.2.3",
        "budget 12.500.000 EUR",
        "CFO and Head of Operations",
        "asked for in ticket 00412345",  # a ticket number that starts as an international prefix does
        "PO 004500123",
    ],
)
def test_business_numbers_are_not_phone_numbers(text: str) -> None:
    assert find_personal_data(text) is None


def test_names_are_found_whole_whatever_the_case_and_spacing() -> None:
    names = ["Zelda Quixote", "Li"]
    assert find_personal_data("Met ZELDA   quixote at the plant", names) is not None
    assert not mentions_any("zeldaquixote", names)
    assert not mentions_any("Zelda Quixotes", names), "a longer word is not the name"
    assert not mentions_any("Li Ning shoes", names), "names this short are words too often"


def test_our_own_team_addresses_are_not_the_customers_people() -> None:
    team = ["Sven.Berg@vendor.example"]
    assert find_personal_data("with sven.berg@vendor.example", our_addresses=team) is None
    assert find_personal_data("with sven.berg@vendor.example and x@customer.example", our_addresses=team) is not None


@given(before=SAFE, after=SAFE, names=NAMES)
def test_safe_prose_is_accepted_and_any_known_name_in_it_is_found(before: str, after: str, names: list[str]) -> None:
    assert find_personal_data(before + " " + after) is None
    if names:
        finding = find_personal_data(f"{before} {names[0]} {after}", names)
        assert finding is not None
        assert "stakeholders" in finding.kind


@given(before=SAFE, local=st.from_regex(r"[a-z][a-z0-9.]{0,10}[a-z]", fullmatch=True), after=SAFE)
def test_an_address_anywhere_is_found(before: str, local: str, after: str) -> None:
    assert find_personal_data(f"{before} {local}@customer.example {after}") is not None


def test_the_finding_says_where_personal_data_belongs_without_repeating_it() -> None:
    finding = find_personal_data("ring 0171-1234567")
    assert finding is not None
    explained = finding.explain()
    assert "1234567" not in explained
    assert "stakeholder" in explained
    assert "interaction" in explained


def test_every_text_field_of_every_command_says_what_it_holds() -> None:
    unsaid = [f"{c.__name__}.{f}" for c in COMMANDS for f, kind in c.text_fields().items() if kind is None]
    assert unsaid == [], "mark each with Spec(text=TextKind...)"
    kinds = {(c.__name__, f): kind for c in COMMANDS for f, kind in c.text_fields().items()}
    assert kinds[("LogInteraction", "summary")] is TextKind.PERSONAL
    assert kinds[("AttachBuyingInfluence", "note")] is TextKind.PERSONAL
    for checked in (("SetObjective", "description"), ("OpenDeal", "title"), ("LoseDeal", "loss_reason")):
        assert kinds[checked] is TextKind.CHECKED


def test_evidence_naming_the_economic_buyer_or_champion_is_personal_other_evidence_is_checked() -> None:
    """Personal evidence is sealed under the named stakeholder's key; evidence naming no one
    is stored in clear, so it is checked like any business text."""

    def kind(element: str, named: bool = True) -> TextKind | None:
        command = AssessQualification(
            deal_id=uuid4(), element=MeddpiccElement(element), status=QualificationStatus.CONFIRMED, evidence="x",
            stakeholder_id=uuid4() if named else None,
        )  # fmt: skip
        return command.text_kind("evidence")

    assert kind("economic_buyer") is TextKind.PERSONAL
    assert kind("champion") is TextKind.PERSONAL
    assert kind("champion", named=False) is TextKind.CHECKED
    assert kind("metrics") is TextKind.CHECKED


@given(st.uuids())
@example(UUID("93704249-ab56-0713-4388-a0b8b6ee49bf"))
def test_an_id_written_in_text_is_not_a_phone_number(entity_id: object) -> None:
    """Reasons name entities by id ("retried d98497b8-0713-4388-..."): groups of an id's digits
    ("0713-4388") looked like a phone number and the guard refused the command."""
    assert find_personal_data(f"reliability {entity_id}") is None
    assert find_personal_data(f"see {str(entity_id).upper()}, call +49 30 1234567") is not None
