"""The stakeholder map: who is who at the customer, the reports-to chart,
coverage by our team, and relationship health per unit."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from domain.values import BuyingRole
from projections.account_view.figures import mean_text
from projections.account_view.units import in_tree_order, tree_order, tree_ranks, unit_label
from projections.encoding import parse_time
from projections.ports import Document

UNRATED_INFLUENCE = 3
"""Influence (1–5) assumed for a person not yet rated: the middle of the scale."""


def contacted_since(person: Document, cutoff: datetime) -> bool:
    return person["last_contact"] is not None and parse_time(person["last_contact"]) >= cutoff


def relationship_health(people: list[Document], *, now: datetime, stale_after_days: int) -> int | None:
    """How well we are connected at one unit, 0–100 (``None`` with nobody mapped).

    Each person who has not left scores

        ``score = 0.3 × owner + 0.3 × recent + 0.4 × (sentiment + 2) / 4``

    where ``owner`` is 1 if someone on our team owns the relationship, ``recent``
    is 1 if they were contacted within ``stale_after_days`` before ``now``, and
    sentiment runs from −2 to +2 (unrated counts as 0, neutral). The unit's health
    is the influence-weighted mean, ``100 × Σ influence × score / Σ influence``,
    rounded half up, with influence 1–5 (unrated counts as 3): a hostile,
    uncovered decision maker weighs five times a friendly user.
    """
    if not people:
        return None
    cutoff = now - timedelta(days=stale_after_days)
    # In whole numbers (a read computes this for every unit): 40 × score is
    # 12 × owner + 12 × recent + 4 × (sentiment + 2), and the health, rounded half up,
    # 100 × Σ influence × score / Σ influence = 5 × weighted / (2 × weights).
    weighted = 0
    weights = 0
    for person in people:
        influence = person["influence"] or UNRATED_INFLUENCE
        score = (
            12 * bool(person["relationship_owner"])
            + 12 * contacted_since(person, cutoff)
            + 4 * ((person["sentiment"] or 0) + 2)
        )
        weighted += influence * score
        weights += influence
    return (5 * weighted + weights) // (2 * weights)


def departed(sid: str, person: Document, units: dict[str, Document]) -> dict[str, Any]:
    """Someone who left the customer: kept out of the map, listed so the GAM sees who went."""
    return {
        "stakeholder_id": sid, "name": (person.get("personal") or {}).get("name"), "title": person["title"],
        **unit_label(units, person["unit_id"]), "left_on": person["left_on"],
    }  # fmt: skip


def stakeholder_map(
    people: dict[str, Document], units: dict[str, Document], *, now: datetime, stale_after_days: int
) -> dict[str, Any]:
    """Who is who at the customer: buying roles, influence, sentiment, the reports-to
    chart, coverage (relationship owner, recent contact) and health per unit."""
    present = {sid: p for sid, p in people.items() if p["left_on"] is None}
    cutoff = now - timedelta(days=stale_after_days)
    rank = tree_ranks(units)
    ordered = sorted(present, key=lambda s: (rank.get(present[s]["unit_id"], len(rank)), present[s]["title"], s))

    def entry(sid: str) -> dict[str, Any]:
        person = present[sid]
        last = person["last_contact"]
        return {
            "stakeholder_id": sid, "name": (person.get("personal") or {}).get("name"), "title": person["title"],
            **unit_label(units, person["unit_id"]), "buying_role": person["buying_role"],
            "influence": person["influence"], "sentiment": person["sentiment"],
            "relationship_owner": person["relationship_owner"], "reports_to": person["reports_to"],
            "last_contact": last, "days_since_contact": (now - parse_time(last)).days if last else None,
            "stale": not contacted_since(person, cutoff), "interactions": person["interactions"],
        }  # fmt: skip

    entries = {sid: entry(sid) for sid in ordered}

    def org_chart(manager: str | None) -> list[dict[str, Any]]:
        """People reporting to ``manager``; at the top, those whose manager is unknown or left."""
        return [
            {**entries[sid], "reports": org_chart(sid)}
            for sid in ordered
            if present[sid]["reports_to"] == manager or (manager is None and present[sid]["reports_to"] not in present)
        ]

    per_unit: dict[str, list[Document]] = defaultdict(list)
    for sid in ordered:
        per_unit[present[sid]["unit_id"]].append(present[sid])
    roles = Counter(p["buying_role"] or "unrated" for p in present.values())
    without_owner = [sid for sid in ordered if not present[sid]["relationship_owner"]]
    not_contacted = [sid for sid in ordered if not contacted_since(present[sid], cutoff)]
    return {
        "stale_after_days": stale_after_days,
        "people": [entries[sid] for sid in ordered],
        "left": [departed(sid, p, units) for sid, p in sorted(people.items()) if p["left_on"] is not None],
        "by_buying_role": {role: roles[role] for role in (*(r.value for r in BuyingRole), "unrated") if roles[role]},
        "org_chart": org_chart(None),
        "coverage": {
            "people": len(present),
            "with_owner": len(present) - len(without_owner),
            "contacted_recently": len(present) - len(not_contacted),
        },
        "without_owner": without_owner,
        "not_contacted": not_contacted,
        "units_without_stakeholders": [u for u in tree_order(units) if not units[u]["closed"] and u not in per_unit],
        "per_unit": {
            unit_id: {
                **unit_label(units, unit_id),
                "people": len(per_unit[unit_id]),
                "mean_sentiment": mean_text([p["sentiment"] for p in per_unit[unit_id] if p["sentiment"] is not None]),
                "health": relationship_health(per_unit[unit_id], now=now, stale_after_days=stale_after_days),
            }
            for unit_id in in_tree_order(per_unit, units)
        },
    }
