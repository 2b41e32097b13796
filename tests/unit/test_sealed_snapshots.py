"""Stakeholders and deals are snapshotted with personal data sealed (``infra.mapping``).

Property: for random histories of one person (corrections, interactions, business
changes, an erasure anywhere), the stakeholder loaded from its sealed snapshots equals
the one replayed from its first event, at every version; and no stored snapshot holds
a name, an e-mail or a note in clear. The same for a deal whose buying-influence notes
and MEDDPICC evidence name two people, each sealed under that person's key, either of
them erased anywhere in the history.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Repository
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.deal import Deal
from domain.stakeholder import Stakeholder
from domain.values import ERASED, Money, PersonalData
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from tests.support import meta

SNAPSHOT_INTERVAL = 2
NAMES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzäöü", min_size=6, max_size=12)
STEP = st.one_of(
    st.tuples(st.just("correct"), NAMES),
    st.tuples(st.just("interaction"), NAMES),
    st.tuples(st.just("title"), NAMES),
    st.tuples(st.just("role"), st.sampled_from(["decision_maker", "influencer", "champion", "detractor"])),
    st.tuples(st.just("erase"), st.just("")),
)


def apply(app: GamApplication, person: UUID, step: tuple[str, str], erased: bool) -> str | None:
    """Send one step; the personal text it stored, if any."""
    kind, text = step
    if kind == "correct" and not erased:
        h.correct_personal_data(
            app, meta(), stakeholder_id=person, personal=PersonalData(f"N{text}", f"{text}@x.example")
        )
        return f"N{text}"
    if kind == "interaction" and not erased:
        m = meta()
        h.log_interaction(app, m, stakeholder_id=person, interaction_id=uuid4(), occurred_at=m.at, channel="call",
                          summary=f"S{text} said so")  # fmt: skip
        return f"S{text} said so"
    if kind == "title":
        h.change_stakeholder_title(app, meta(), stakeholder_id=person, title=f"T{text}")
    elif kind == "role":
        h.change_buying_role(app, meta(), stakeholder_id=person, role=text)
    elif kind == "erase" and not erased:
        h.erase_personal_data(app, meta(), stakeholder_id=person, legal_basis="GDPR Art. 17")
    return None


def replaying(app: GamApplication) -> Repository[Any]:
    return Repository(event_store=app.events, snapshot_store=None)


@settings(max_examples=40, deadline=None)
@given(first=NAMES, steps=st.lists(STEP, min_size=1, max_size=14))
def test_a_stakeholder_from_sealed_snapshots_equals_its_replay(first: str, steps: list[tuple[str, str]]) -> None:
    env = Settings(store="memory", aggregate_cache_size=0).eventsourcing_env()
    app = GamApplication(env, snapshot_interval=SNAPSHOT_INTERVAL)
    account, hq, person = uuid4(), uuid4(), uuid4()
    h.create_account(app, meta(), account_id=account, hq_unit_id=hq, name="Acme", industry="Tools",
                     hq_country="FR", reporting_currency="EUR")  # fmt: skip
    h.identify_stakeholder(app, meta(), stakeholder_id=person, account_id=account, unit_id=hq, title="CFO",
                           personal=PersonalData(f"N{first}", f"{first}@x.example"))  # fmt: skip
    secrets, erased = [f"N{first}", f"{first}@x.example"], False
    for step in steps:
        stored = apply(app, person, step, erased)
        secrets += [stored] if stored else []
        erased = erased or step[0] == "erase"
    assert app.snapshots is not None
    snapshots = app.snapshots.recorder.select_events(person)
    assert snapshots or len(steps) < SNAPSHOT_INTERVAL - 1
    for snapshot in snapshots:
        assert not any(secret.encode() in snapshot.state for secret in secrets), "a snapshot holds personal data"
    latest: Stakeholder = app.repository.get(person)
    for version in range(1, latest.version + 1):
        assert app.repository.get(person, version=version) == replaying(app).get(person, version=version)
    if erased:
        assert latest.personal == PersonalData(ERASED)
        assert all(i.summary == ERASED for i in latest.interactions)
    app.close()


DEAL_STEP = st.one_of(
    st.tuples(st.just("note"), st.integers(0, 1), NAMES),
    st.tuples(st.just("evidence"), st.integers(0, 1), NAMES),
    st.tuples(st.just("metrics"), st.just(0), NAMES),
    st.tuples(st.just("detach"), st.integers(0, 1), st.just("")),
    st.tuples(st.just("probability"), st.integers(0, 100), st.just("")),
    st.tuples(st.just("erase"), st.integers(0, 1), st.just("")),
)


def deal_step(
    app: GamApplication, deal: UUID, people: list[UUID], step: tuple[str, int, str], erased: set[UUID]
) -> str | None:
    """Send one step to the deal; the personal text it stored, if any (none about an erased person)."""
    kind, which, text = step
    person = people[which] if kind != "probability" else people[0]
    if kind == "note" and person not in erased:
        h.attach_buying_influence(app, meta(), deal_id=deal, stakeholder_id=person, role="coach", degree="high",
                                  note=f"Note{text}")  # fmt: skip
        return f"Note{text}"
    if kind == "evidence" and person not in erased:
        h.assess_qualification(app, meta(), deal_id=deal, element=("champion", "economic_buyer")[which],
                               status="partial", evidence=f"Ev{text}", stakeholder_id=person)  # fmt: skip
        return f"Ev{text}"
    if kind == "metrics":
        h.assess_qualification(app, meta(), deal_id=deal, element="metrics", status="partial", evidence="ROI")
    elif kind == "detach" and (person, "coach") in app.repository.get(deal).influences:
        h.detach_buying_influence(app, meta(), deal_id=deal, stakeholder_id=person, role="coach")
    elif kind == "probability":
        h.change_deal_probability(app, meta(), deal_id=deal, probability=which)
    elif kind == "erase" and person not in erased:
        h.erase_personal_data(app, meta(), stakeholder_id=person, legal_basis="GDPR Art. 17")
        erased.add(person)
    return None


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(DEAL_STEP, min_size=1, max_size=12))
def test_a_deal_from_sealed_snapshots_equals_its_replay(steps: list[tuple[str, int, str]]) -> None:
    env = Settings(store="memory", aggregate_cache_size=0).eventsourcing_env()
    app = GamApplication(env, snapshot_interval=SNAPSHOT_INTERVAL)
    account, hq, deal = uuid4(), uuid4(), uuid4()
    people = [uuid4(), uuid4()]
    h.create_account(app, meta(), account_id=account, hq_unit_id=hq, name="Acme", industry="Tools",
                     hq_country="FR", reporting_currency="EUR")  # fmt: skip
    for person in people:
        h.identify_stakeholder(app, meta(), stakeholder_id=person, account_id=account, unit_id=hq, title="CFO",
                               personal=PersonalData("Some Person"))  # fmt: skip
    h.open_deal(app, meta(), deal_id=deal, account_id=account, unit_id=hq, title="Sensors", owner="bob@vendor.example",
                amount=Money(Decimal(1000), "EUR"), expected_close=date(2099, 1, 1))  # fmt: skip
    secrets: list[str] = []
    erased: set[UUID] = set()
    for step in steps:
        stored = deal_step(app, deal, people, step, erased)
        secrets += [stored] if stored else []
    assert app.snapshots is not None
    for snapshot in app.snapshots.recorder.select_events(deal):
        assert not any(secret.encode() in snapshot.state for secret in secrets), "a snapshot holds personal text"
    latest: Deal = app.repository.get(deal)
    for version in range(1, latest.version + 1):
        assert app.repository.get(deal, version=version) == replaying(app).get(deal, version=version)
    for influence in latest.influences.values():
        assert (influence.note == ERASED) == (influence.stakeholder_id in erased)
    for assessed in latest.qualification.values():
        assert (assessed.evidence == ERASED) == (assessed.stakeholder_id in erased)
    app.close()
