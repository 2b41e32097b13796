"""The lists: accounts, and per account its units, plans, stakeholders and deals, as
rows a caller can filter and page through without the account's document.

An account's document holds every deal and person of the account, so reading it to
show 50 of 10,000 deals would decode all of them. Instead, each event that changes an
entity also writes that entity's list row (:func:`list_rows_for`), in the same
transaction as the document and the tracking position: a row is one entity's summary
(``body``), its sort key and the facets it is filtered on. Anything that depends on
when one reads (a deal being overdue) is decided at read time (:func:`list_page`).

Pages are ordered by ``(sort_key, entity id)`` and the cursor is the last row's pair,
so a page is an index range scan however deep, and rows written between two pages
neither repeat nor shift the next page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from domain.account import GlobalAccount
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from projections.facts import EventFacts
from projections.ports import Document, ListKey, ListQuery, ListRow, ViewRecorder, is_overdue

ACCOUNT, UNIT, PLAN, OBJECTIVE, STAKEHOLDER, DEAL = "account", "unit", "plan", "objective", "stakeholder", "deal"
KINDS = (ACCOUNT, UNIT, PLAN, OBJECTIVE, STAKEHOLDER, DEAL)


def fold(text: str) -> str:
    """How names sort and are searched: case-insensitively."""
    return text.casefold()


def account_row(account_id: str, doc: Document) -> ListRow:
    account = doc["account"]
    fields = ("name", "industry", "hq_country", "tier", "reporting_currency", "governance_model", "archived")
    body = {"id": account_id, **{k: account[k] for k in fields}}
    facets = {
        "industry": account["industry"],
        "hq_country": account["hq_country"],
        "tier": account["tier"],
        "status": "archived" if account["archived"] else "active",
    }
    return ListRow(ACCOUNT, account_id, account_id, fold(account["name"]), body, facets)


def unit_row(account_id: str, unit_id: str, unit: Document) -> ListRow:
    body = {"id": unit_id, **unit}
    facets = {"status": "closed" if unit["closed"] else "open"}
    return ListRow(UNIT, unit_id, account_id, fold(unit["name"]), body, facets)


def plan_row(account_id: str, plan_id: str, plan: Document) -> ListRow:
    body = {
        "id": plan_id,
        "account_id": account_id,
        "fiscal_period": plan["fiscal_period"],
        "status": plan["status"],
        "baseline_version": plan["baseline_version"],
        "objectives": len(plan["objectives"]),
        "actions": len(plan["actions"]),
    }
    return ListRow(PLAN, plan_id, account_id, fold(plan["fiscal_period"]), body, {"status": plan["status"]})


def objective_row(account_id: str, plan_id: str, objective_id: str, objective: Document) -> ListRow:
    """An objective, so that what names it (the audit trail) need not read its plan."""
    body = {"id": objective_id, "plan_id": plan_id, "unit_id": objective["unit_id"], "title": objective["title"]}
    return ListRow(
        OBJECTIVE, objective_id, account_id, fold(objective["title"]), body, {"unit_id": objective["unit_id"]}
    )


def stakeholder_row(account_id: str, stakeholder_id: str, person: Document) -> ListRow:
    """A person's row keeps their data as the document does, sealed under their key
    (opened by whoever reads the page), so people sort and are searched by job title:
    a name in clear in the sort key would be kept in the row, its index, backups and
    replicas after the person is erased."""
    fields = ("unit_id", "title", "buying_role", "influence", "sentiment", "relationship_owner", "reports_to")
    body = {
        "id": stakeholder_id,
        "account_id": account_id,
        "personal": person["personal"],
        **{k: person[k] for k in fields},
        "last_contact": person["last_contact"],
        "left_on": person["left_on"],
        "erased": bool(person.get("erased", False)),
    }
    facets = {
        "unit_id": person["unit_id"],
        "role": person["buying_role"],
        "owner": person["relationship_owner"],
        "status": "left" if person["left_on"] else "active",
    }
    return ListRow(STAKEHOLDER, stakeholder_id, account_id, fold(person["title"] or ""), body, facets)


def deal_row(account_id: str, deal_id: str, deal: Document) -> ListRow:
    fields = ("unit_id", "title", "amount", "stage", "probability", "expected_close", "owner", "status")
    body = {"id": deal_id, "account_id": account_id, **{k: deal[k] for k in fields}}
    body["final_amount"] = deal["final_amount"]
    facets = {
        "unit_id": deal["unit_id"],
        "stage": deal["stage"],
        "owner": deal["owner"],
        "status": deal["status"],
        "due": deal["expected_close"],
    }
    return ListRow(DEAL, deal_id, account_id, fold(deal["title"]), body, facets)


def list_rows_for(account_id: str, doc: Document, event: EventFacts) -> dict[ListKey, ListRow | None]:
    """The list rows the event changed, from the account's document after it: the
    entity's own row (and, for an account's events, its units' rows: they are few)."""
    event_class, entity = event.event_class, event.entity
    if issubclass(event_class, GlobalAccount.Event):
        rows = [account_row(account_id, doc)]
        rows.extend(unit_row(account_id, unit_id, unit) for unit_id, unit in doc["units"].items())
    elif issubclass(event_class, AccountPlan.Event):
        plan = doc["plans"][entity]
        rows = [plan_row(account_id, entity, plan)]
        if issubclass(event_class, AccountPlan.ObjectiveSet):
            objective_id = event.payload["objective_id"]
            rows.append(objective_row(account_id, entity, objective_id, plan["objectives"][objective_id]))
    elif issubclass(event_class, Stakeholder.Event):
        rows = [stakeholder_row(account_id, entity, doc["stakeholders"][entity])]
    elif issubclass(event_class, Deal.Event):
        rows = [deal_row(account_id, entity, doc["deals"][entity])]
    else:
        return {}
    return {(row.kind, row.entity_id): row for row in rows}


# --- reading ---------------------------------------------------------------------------


class BadCursor(ValueError):
    """A cursor this server did not hand out (or a page of another list's)."""


def encode_cursor(row: ListRow) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([row.sort_key, row.entity_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise BadCursor("not a cursor this server handed out") from None
    if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(part, str) for part in decoded)):
        raise BadCursor("not a cursor this server handed out")
    return decoded[0], decoded[1]


@dataclass(frozen=True)
class Page:
    """One page of a list, and the cursor of the next (``None`` after the last)."""

    items: list[dict[str, Any]]
    next: str | None


def list_page(view: ViewRecorder, query: ListQuery) -> Page:
    """A page of rows; one more row than asked is read to know whether a next page exists.
    Deals say whether they are ``overdue`` (open, expected to close before ``query.today``)."""
    rows = view.select_list(replace(query, limit=query.limit + 1))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [_shown(row, query.today) for row in rows]
    return Page(items, encode_cursor(rows[-1]) if more else None)


def _shown(row: ListRow, today: str) -> dict[str, Any]:
    if row.kind == DEAL:
        return {**row.body, "overdue": is_overdue(row.facets, today)}
    return row.body


def units_of(view: ViewRecorder, account_id: str) -> dict[str, Document]:
    """The account's units (id → name, level, parent), from their list rows."""
    rows = view.select_list(ListQuery(UNIT, account_ids=frozenset({account_id}), limit=1_000_000))
    return {row.entity_id: row.body for row in rows}


def subtree(units: Mapping[str, Document], top: str) -> frozenset[str]:
    """``top`` and every unit below it."""
    below: dict[str, list[str]] = {}
    for unit_id, unit in units.items():
        below.setdefault(unit["parent_id"], []).append(unit_id)
    found, todo = {top}, [top]
    while todo:
        for child in below.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return frozenset(found)


def accounts_of_units(view: ViewRecorder, unit_ids: Iterable[str]) -> frozenset[str]:
    """The accounts the units belong to (unknown units belong to none)."""
    wanted = frozenset(unit_ids)
    if not wanted:
        return frozenset()
    rows = view.select_list(ListQuery(UNIT, entity_ids=wanted, limit=len(wanted)))
    return frozenset(row.account_id for row in rows)


def names_of(view: ViewRecorder, ids: Iterable[str]) -> dict[str, Any]:
    """What each id names, where the lists know it: an account's or unit's name, a
    plan's fiscal period, an objective's or deal's title; a person's data as the row
    keeps it, sealed (the reader opens it: their name, or ``[erased]``)."""
    wanted = frozenset(ids)
    if not wanted:
        return {}
    label = {
        ACCOUNT: "name",
        UNIT: "name",
        PLAN: "fiscal_period",
        OBJECTIVE: "title",
        STAKEHOLDER: "personal",
        DEAL: "title",
    }
    names: dict[str, Any] = {}
    for kind, field in label.items():
        for row in view.select_list(ListQuery(kind, entity_ids=wanted, limit=len(wanted))):
            names[row.entity_id] = row.body[field] if kind == STAKEHOLDER else str(row.body[field])
    return names
