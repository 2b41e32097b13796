"""A realistic global account, seeded through the same message bus users' commands take.

``seed_account`` is also the benchmark's command mix: it issues every kind of
command (units, team, objectives, cascades and answers, actions, progress,
stakeholders, deals through their whole life). Ids are derived from the account
index, so seeding is repeatable and ``gam demo`` can tell it already ran.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from domain import commands as c
from domain.metadata import EventMetadata
from domain.plan import plan_id_for
from domain.values import Money, PersonalData, Target
from services.app import GamApplication
from services.handlers import bus_for

FISCAL_PERIOD = "FY2027"
GAM = "gam.hoffmann@vendor.example"

REGIONS: tuple[tuple[str, str, tuple[tuple[str, str, tuple[str, ...]], ...]], ...] = (
    ("EMEA", "Europe, Middle East & Africa", (
        ("FR", "France", ("Lyon plant", "Paris office")),
        ("GB", "United Kingdom", ("Manchester plant", "London office")),
    )),
    ("AMER", "Americas", (
        ("US", "United States", ("Houston plant", "Chicago office")),
        ("BR", "Brazil", ("São Paulo plant",)),
    )),
    ("APAC", "Asia Pacific", (
        ("JP", "Japan", ("Osaka plant", "Tokyo office")),
        ("SG", "Singapore", ("Jurong site",)),
    )),
)  # fmt: skip
CURRENCY = {"FR": "EUR", "GB": "GBP", "US": "USD", "BR": "BRL", "JP": "JPY", "SG": "SGD"}

HQ_OBJECTIVES = (
    ("Grow digital services revenue", "revenue", "12000000", "EUR"),
    ("Standardise on our automation platform", "plants on platform", "10", None),
    ("Cut unplanned downtime at key plants", "downtime reduction %", "25", None),
    ("Win the global MRO framework agreement", "framework value", "8000000", "EUR"),
    ("Raise executive sponsor coverage", "regions with sponsor", "3", None),
    ("Expand sustainability consulting", "revenue", "2500000", "EUR"),
    ("Lift NPS among plant managers", "NPS points", "15", None),
    ("Consolidate spare-parts logistics", "sites served centrally", "8", None),
    ("Launch the joint innovation lab", "pilots started", "4", None),
    ("Grow training services", "engineers certified", "400", None),
)
TITLES = (
    "Chief Procurement Officer", "Chief Operating Officer", "VP Engineering", "Plant Manager",
    "Head of Maintenance", "IT Director", "Category Manager", "CFO", "Sustainability Lead",
    "Operations Director",
)  # fmt: skip
FIRST = ("Anna", "Bruno", "Chloé", "Daiki", "Elena", "Farid", "Grace", "Hiro", "Inès", "João")
LAST = ("Schmidt", "Martin", "Okafor", "Tanaka", "Silva", "Nguyen", "Dubois", "Smith", "Rossi", "Lee")
PRODUCTS = ("Automation platform", "MRO services", "Predictive maintenance", "Training", "Consulting")
ROLES = ("decision_maker", "influencer", "user", "gatekeeper", "champion", "detractor")


def demo_id(account_index: int, *parts: object) -> UUID:
    """Deterministic ids: the same account index always yields the same ids."""
    return uuid5(NAMESPACE_URL, "urn:gam:demo:" + "/".join(str(p) for p in (account_index, *parts)))


@dataclass
class SeededAccount:
    account_id: UUID
    plan_id: UUID
    stakeholder_ids: list[UUID] = field(default_factory=list)
    deal_ids: list[UUID] = field(default_factory=list)
    commands: int = 0


class _Seeder:
    """Issues commands with metadata from a clock that advances a few minutes each time."""

    def __init__(self, app: GamApplication, index: int, start: datetime) -> None:
        self.bus = bus_for(app)
        self.index = index
        self.now = start
        self.rng = random.Random(index)  # noqa: S311 - repeatable demo data, not security
        self.count = 0
        self.correlation = uuid4()

    def meta(self, actor: str = GAM, reason: str | None = None) -> EventMetadata:
        self.now += timedelta(minutes=7)
        return EventMetadata(actor=actor, at=self.now, correlation_id=self.correlation, reason=reason)

    def run(self, command: type[c.Command], actor: str = GAM, reason: str | None = None, **fields: Any) -> None:
        self.bus.handle(command(**fields), self.meta(actor, reason))
        self.count += 1

    def id(self, *parts: object) -> UUID:
        return demo_id(self.index, *parts)


def seed_account(
    app: GamApplication, index: int = 0, *, name: str = "Nordwind Industrial Group", start: datetime | None = None
) -> SeededAccount:
    """Seed one complete global account; see the module docstring."""
    s = _Seeder(app, index, start or datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
    account_id, hq = s.id("account"), s.id("unit", "HQ")
    s.run(
        c.OnboardAccount,
        account_id=account_id,
        hq_unit_id=hq,
        name=name if index == 0 else f"{name} #{index}",
        industry="Industrial manufacturing",
        hq_country="DE",
        reporting_currency="EUR",
        tier="tier_1",
        governance_model="coordinated",
        fiscal_period=FISCAL_PERIOD,
    )
    plan_id = plan_id_for(account_id, FISCAL_PERIOD)
    seeded = SeededAccount(account_id, plan_id)
    regions, countries, locals_ = _seed_units(s, account_id, hq)
    _seed_plan(s, plan_id, hq, regions, countries, locals_)
    seeded.stakeholder_ids = _seed_stakeholders(s, account_id, hq, regions, countries)
    seeded.deal_ids = _seed_deals(s, account_id, plan_id, locals_, seeded.stakeholder_ids)
    seeded.commands = s.count
    return seeded


def _seed_units(
    s: _Seeder, account_id: UUID, hq: UUID
) -> tuple[dict[str, UUID], dict[str, UUID], list[tuple[UUID, str]]]:
    regions: dict[str, UUID] = {}
    countries: dict[str, UUID] = {}
    locals_: list[tuple[UUID, str]] = []
    s.run(c.AssignTeamMember, account_id=account_id, member=GAM, unit_id=hq, role="gam")
    s.run(c.AssignTeamMember, account_id=account_id, member="cro@vendor.example", unit_id=hq, role="executive_sponsor")
    for code, region_name, region_countries in REGIONS:
        regions[code] = s.id("unit", code)
        s.run(
            c.AddUnit,
            account_id=account_id,
            unit_id=regions[code],
            name=region_name,
            level="region",
            parent_id=hq,
            code=code,
        )
        s.run(
            c.AssignTeamMember,
            account_id=account_id,
            member=f"ram.{code.lower()}@vendor.example",
            unit_id=regions[code],
            role="regional_am",
        )
        for country, country_name, sites in region_countries:
            countries[country] = s.id("unit", country)
            s.run(
                c.AddUnit,
                account_id=account_id,
                unit_id=countries[country],
                name=country_name,
                level="country",
                parent_id=regions[code],
                code=country,
            )
            for site in sites:
                unit = s.id("unit", country, site)
                locals_.append((unit, country))
                s.run(
                    c.AddUnit,
                    account_id=account_id,
                    unit_id=unit,
                    name=site,
                    level="local",
                    parent_id=countries[country],
                    code=country,
                )
                s.run(
                    c.AssignTeamMember,
                    account_id=account_id,
                    member=f"lam.{country.lower()}@vendor.example",
                    unit_id=unit,
                    role="local_am",
                )
    return regions, countries, locals_  # fmt: skip


def _seed_plan(
    s: _Seeder,
    plan_id: UUID,
    hq: UUID,
    regions: dict[str, UUID],
    countries: dict[str, UUID],
    locals_: list[tuple[UUID, str]],
) -> None:
    answers = (
        "adopted",
        "adopted",
        "adapted",
        "adopted",
        "declined",
        "adapted",
        "adopted",
        "adopted",
        "declined",
        "adopted",
    )
    region_of = {country: code for code, _, cs in REGIONS for country, _, _ in cs}
    for n, (title, metric, value, currency) in enumerate(HQ_OBJECTIVES):
        objective = s.id("objective", n)
        s.run(
            c.SetObjective,
            plan_id=plan_id,
            objective_id=objective,
            unit_id=hq,
            title=title,
            description=f"HQ objective {n + 1} for {FISCAL_PERIOD}",
            target=Target(metric, Decimal(value), currency),
            due_date=date(2027, 12, 31),
        )
        s.run(
            c.CascadeObjective,
            plan_id=plan_id,
            objective_id=objective,
            from_unit_id=hq,
            to_unit_ids=tuple(regions.values()),
        )
        for r, (code, region) in enumerate(regions.items()):
            answer = answers[(n + r) % len(answers)]
            actor = f"ram.{code.lower()}@vendor.example"
            if answer == "adapted":
                local_value = (Decimal(value) / 3).quantize(Decimal("1"))
                s.run(
                    c.RespondToCascade,
                    actor=actor,
                    plan_id=plan_id,
                    objective_id=objective,
                    unit_id=region,
                    answer=answer,
                    local_title=f"{title} ({code})",
                    local_target=Target(metric, local_value, currency),
                    rationale=f"{code} runs a smaller installed base; target scaled to the region",
                )
            elif answer == "declined":
                s.run(
                    c.RespondToCascade,
                    actor=actor,
                    plan_id=plan_id,
                    objective_id=objective,
                    unit_id=region,
                    answer=answer,
                    rationale=f"No budget in {code} this fiscal year",
                )
                continue
            else:
                s.run(
                    c.RespondToCascade,
                    actor=actor,
                    plan_id=plan_id,
                    objective_id=objective,
                    unit_id=region,
                    answer=answer,
                )
            region_countries = [cid for country, cid in countries.items() if region_of[country] == code]
            if n % 2 == 0:
                s.run(
                    c.CascadeObjective,
                    actor=actor,
                    plan_id=plan_id,
                    objective_id=objective,
                    from_unit_id=region,
                    to_unit_ids=tuple(region_countries),
                )
                for country_unit in region_countries:
                    s.run(
                        c.RespondToCascade,
                        plan_id=plan_id,
                        objective_id=objective,
                        unit_id=country_unit,
                        answer="adopted",
                    )
            action = s.id("action", n, code)
            s.run(
                c.AddAction,
                actor=actor,
                plan_id=plan_id,
                action_id=action,
                objective_id=objective,
                unit_id=region,
                title=f"Kick-off workshop: {title}",
                owner=actor,
                due_date=date(2027, 3, 31),
            )
            s.run(c.ChangeActionStatus, actor=actor, plan_id=plan_id, action_id=action, status="in_progress")
            if n % 3 == 0:
                s.run(c.ChangeActionStatus, actor=actor, plan_id=plan_id, action_id=action, status="done")
            s.run(
                c.ReportProgress,
                actor=actor,
                plan_id=plan_id,
                objective_id=objective,
                unit_id=region,
                percent=s.rng.randrange(5, 80, 5),
                comment="Quarterly update",
            )
        s.run(c.ReportProgress, plan_id=plan_id, objective_id=objective, unit_id=hq, percent=s.rng.randrange(10, 60, 5))
    swot = (
        ("strength", "Installed base at 7 of 10 plants"),
        ("weakness", "Thin coverage in APAC"),
        ("opportunity", "Customer's plant modernisation programme"),
        ("threat", "Low-cost rival in Brazil"),
    )
    for n, (kind, text) in enumerate(swot):
        s.run(c.AddSwotEntry, plan_id=plan_id, entry_id=s.id("swot", n), kind=kind, text=text)
    statuses = ("in_use", "opportunity", "competitor_holds", "not_a_fit", "opportunity")
    for n, (unit, _) in enumerate(locals_):
        for p, product in enumerate(PRODUCTS[:3]):
            s.run(
                c.SetWhitespaceCell,
                plan_id=plan_id,
                offering=product,
                unit_id=unit,
                status=statuses[(n + p) % len(statuses)],
            )
    s.run(
        c.HoldBusinessReview,
        plan_id=plan_id,
        review_id=s.id("qbr", 1),
        held_on=date(2026, 10, 15),
        participants=(GAM, "Customer CPO", "Customer COO"),
        decisions=("Pilot predictive maintenance in Lyon",),
        follow_up_actions=("Send pilot proposal by November",),
    )
    s.run(c.SubmitPlan, plan_id=plan_id)
    s.run(c.ApprovePlan, actor="cro@vendor.example", plan_id=plan_id)  # fmt: skip


def _seed_stakeholders(
    s: _Seeder, account_id: UUID, hq: UUID, regions: dict[str, UUID], countries: dict[str, UUID]
) -> list[UUID]:
    units = [hq, hq, hq, *regions.values(), *countries.values()]
    people: list[UUID] = []
    for n in range(20):
        person = s.id("stakeholder", n)
        unit = units[n % len(units)]
        first, last = FIRST[n % 10], LAST[(n * 3) % 10]
        s.run(
            c.IdentifyStakeholder,
            stakeholder_id=person,
            account_id=account_id,
            unit_id=unit,
            title=TITLES[n % 10],
            personal=PersonalData(f"{first} {last}", f"{first}.{last}@customer.example".lower(), f"+49 30 555 {n:04d}"),
        )
        s.run(c.ChangeBuyingRole, stakeholder_id=person, role=ROLES[n % len(ROLES)])
        s.run(c.RateInfluence, stakeholder_id=person, influence=1 + (n * 7) % 5)
        s.run(c.RateSentiment, stakeholder_id=person, sentiment=(n % 5) - 2)
        if n % 4 != 3:
            s.run(c.AssignRelationshipOwner, stakeholder_id=person, owner=GAM if n < 3 else "lam@vendor.example")
        if n > 0:
            s.run(c.SetReportsTo, stakeholder_id=person, manager_id=people[(n - 1) // 3])
        s.run(
            c.LogInteraction,
            stakeholder_id=person,
            interaction_id=s.id("interaction", n),
            occurred_at=s.now,
            channel=("meeting", "call", "email")[n % 3],
            summary=f"Discussed {PRODUCTS[n % 5].lower()} roadmap",
        )
        people.append(person)
    s.run(c.RecordDeparture, stakeholder_id=people[-1], left_on=date(2026, 11, 1))
    return people  # fmt: skip


def _seed_deals(
    s: _Seeder, account_id: UUID, plan_id: UUID, locals_: list[tuple[UUID, str]], people: list[UUID]
) -> list[UUID]:
    deals: list[UUID] = []
    stages = ("prospecting", "qualification", "solution", "proposal", "negotiation")
    for n in range(30):
        deal = s.id("deal", n)
        unit, country = locals_[n % len(locals_)]
        currency = CURRENCY[country]
        scale = Decimal(100) if currency == "JPY" else Decimal(1)
        amount = Money(Decimal(50_000 + 17_500 * n) * scale, currency)
        s.run(
            c.OpenDeal,
            deal_id=deal,
            account_id=account_id,
            unit_id=unit,
            title=f"{PRODUCTS[n % 5]} for site {n + 1}",
            amount=amount,
            expected_close=date(2027, 1 + n % 12, 15),
            owner=f"lam.{country.lower()}@vendor.example",
            products=(PRODUCTS[n % 5],),
            plan_id=plan_id,
            linked_objective_ids=(s.id("objective", n % 10),),
        )
        s.run(
            c.AttachBuyingInfluence, deal_id=deal, stakeholder_id=people[n % 19], role="economic_buyer", degree="high"
        )
        s.run(
            c.AttachBuyingInfluence,
            deal_id=deal,
            stakeholder_id=people[(n + 5) % 19],
            role="coach",
            degree="medium",
            note="Shares the evaluation timeline",
        )
        s.run(
            c.AssessQualification,
            deal_id=deal,
            element="identified_pain",
            status="confirmed",
            evidence="Downtime cost quantified",
        )
        target_stage = n % 5
        for stage in stages[1 : target_stage + 1]:
            s.run(c.MoveDealStage, deal_id=deal, to_stage=stage)
        if n % 7 == 0:
            s.run(
                c.ChangeDealAmount,
                deal_id=deal,
                amount=Money(amount.amount * Decimal("1.1"), currency),
                reason="Scope grew",
            )
        if n % 6 == 1:
            s.run(c.ChangeDealCloseDate, deal_id=deal, expected_close=date(2027, 12, 15), reason="Budget moved to Q4")
        if target_stage >= 3 and n % 3 == 0:
            s.run(c.WinDeal, deal_id=deal, final_amount=amount)
        elif n % 10 == 9:
            s.run(c.LoseDeal, deal_id=deal, loss_reason="Price", competitor="Rival Automation Ltd")
        deals.append(deal)
    s.run(c.ReopenDeal, deal_id=deals[9], reason="Customer re-opened the tender")
    return deals  # fmt: skip
