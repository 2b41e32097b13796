"""The baseline: what a team would build instead of event sourcing.

Plain psycopg on normalised tables (accounts, units, plans, objectives and their
cascades, actions, stakeholders, deals and their details), current state only,
and an audit row per change written in the same transaction as the change. The
audit row holds the changed row's image after the change (``to_jsonb``), which
is what lets this design answer "as of" questions and restore its tables at all.

Each command is one transaction: lock the row it belongs to (``SELECT … FOR
UPDATE``: the account, plan, stakeholder or deal), check the few rules a team
would check (the row exists, the plan or deal is in a state that allows it,
units belong to the account), then write the row and its audit row in one
statement. Foreign keys guard the references. It checks far fewer rules than
gam's domain and keeps no history besides the audit images; that is the point
of the comparison, not a flaw to fix.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from bench.mix import IMPORT_BATCH, Change, Command
from domain.metadata import EventMetadata
from domain.plan import plan_id_for

SCHEMA = """
CREATE TABLE accounts (
    id uuid PRIMARY KEY, name text NOT NULL, industry text, hq_country text, reporting_currency text NOT NULL,
    tier text, governance_model text, status text NOT NULL, version int NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE units (
    id uuid PRIMARY KEY, account_id uuid NOT NULL REFERENCES accounts, parent_id uuid REFERENCES units,
    name text NOT NULL, level text NOT NULL, code text, closed boolean NOT NULL DEFAULT false,
    version int NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON units (account_id);
CREATE TABLE team_members (
    account_id uuid NOT NULL REFERENCES accounts, unit_id uuid NOT NULL REFERENCES units, member text NOT NULL,
    role text NOT NULL, assigned_at timestamptz NOT NULL, PRIMARY KEY (unit_id, member, role));
CREATE INDEX ON team_members (account_id);
CREATE TABLE plans (
    id uuid PRIMARY KEY, account_id uuid NOT NULL REFERENCES accounts, fiscal_period text NOT NULL,
    status text NOT NULL, version int NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON plans (account_id);
CREATE TABLE objectives (
    id uuid PRIMARY KEY, plan_id uuid NOT NULL REFERENCES plans, unit_id uuid NOT NULL REFERENCES units,
    title text NOT NULL, description text, metric text NOT NULL, target_value numeric NOT NULL, target_currency text,
    due_date date, version int NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON objectives (plan_id);
CREATE TABLE directives (
    objective_id uuid NOT NULL REFERENCES objectives, unit_id uuid NOT NULL REFERENCES units,
    from_unit_id uuid NOT NULL REFERENCES units, answer text, local_title text, local_metric text,
    local_value numeric, local_currency text, rationale text, cascaded_at timestamptz NOT NULL,
    answered_at timestamptz, PRIMARY KEY (objective_id, unit_id));
CREATE TABLE objective_progress (
    objective_id uuid NOT NULL REFERENCES objectives, unit_id uuid NOT NULL REFERENCES units,
    percent int NOT NULL, comment text, reported_at timestamptz NOT NULL, PRIMARY KEY (objective_id, unit_id));
CREATE TABLE actions (
    id uuid PRIMARY KEY, plan_id uuid NOT NULL REFERENCES plans, objective_id uuid NOT NULL REFERENCES objectives,
    unit_id uuid NOT NULL REFERENCES units, title text NOT NULL, owner text, due_date date, status text NOT NULL);
CREATE INDEX ON actions (plan_id);
CREATE TABLE swot_entries (
    id uuid PRIMARY KEY, plan_id uuid NOT NULL REFERENCES plans, kind text NOT NULL, text text NOT NULL);
CREATE TABLE whitespace_cells (
    plan_id uuid NOT NULL REFERENCES plans, offering text NOT NULL, unit_id uuid NOT NULL REFERENCES units,
    status text NOT NULL, PRIMARY KEY (plan_id, offering, unit_id));
CREATE TABLE business_reviews (
    id uuid PRIMARY KEY, plan_id uuid NOT NULL REFERENCES plans, held_on date NOT NULL, participants text[],
    decisions text[], follow_up_actions text[]);
CREATE TABLE stakeholders (
    id uuid PRIMARY KEY, account_id uuid NOT NULL REFERENCES accounts, unit_id uuid NOT NULL REFERENCES units,
    title text, full_name text NOT NULL, email text, phone text, buying_role text, influence int, sentiment int,
    relationship_owner text, reports_to uuid REFERENCES stakeholders, left_on date,
    version int NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON stakeholders (account_id);
CREATE TABLE interactions (
    id uuid PRIMARY KEY, stakeholder_id uuid NOT NULL REFERENCES stakeholders, occurred_at timestamptz NOT NULL,
    channel text NOT NULL, summary text);
CREATE INDEX ON interactions (stakeholder_id);
CREATE TABLE deals (
    id uuid PRIMARY KEY, account_id uuid NOT NULL REFERENCES accounts, unit_id uuid NOT NULL REFERENCES units,
    plan_id uuid REFERENCES plans, title text NOT NULL, amount numeric NOT NULL, currency text NOT NULL,
    stage text NOT NULL, expected_close date, probability int NOT NULL, owner text, products text[],
    status text NOT NULL, final_amount numeric, loss_reason text, competitor text,
    version int NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON deals (account_id);
CREATE TABLE deal_objectives (
    deal_id uuid NOT NULL REFERENCES deals, objective_id uuid NOT NULL REFERENCES objectives,
    PRIMARY KEY (deal_id, objective_id));
CREATE TABLE deal_influences (
    deal_id uuid NOT NULL REFERENCES deals, stakeholder_id uuid NOT NULL REFERENCES stakeholders, role text NOT NULL,
    degree text, note text, PRIMARY KEY (deal_id, stakeholder_id, role));
CREATE TABLE deal_qualification (
    deal_id uuid NOT NULL REFERENCES deals, element text NOT NULL, status text NOT NULL, evidence text,
    stakeholder_id uuid REFERENCES stakeholders, PRIMARY KEY (deal_id, element));
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY, account_id uuid NOT NULL, entity_type text NOT NULL, entity_key text NOT NULL,
    action text NOT NULL, actor text NOT NULL, at timestamptz NOT NULL, correlation_id uuid, reason text,
    row_after jsonb NOT NULL);
CREATE INDEX ON audit_log (account_id, entity_type, entity_key, at);
CREATE TABLE outbox_position (relay text PRIMARY KEY, position bigint NOT NULL);
"""

ENTITY_TABLES = (
    "accounts", "units", "team_members", "plans", "objectives", "directives", "objective_progress", "actions",
    "swot_entries", "whitespace_cells", "business_reviews", "stakeholders", "interactions", "deals",
    "deal_objectives", "deal_influences", "deal_qualification",
)  # fmt: skip
VERSIONED = frozenset({"accounts", "units", "plans", "objectives", "stakeholders", "deals"})
STAGE_PROBABILITY = {"prospecting": 10, "qualification": 20, "solution": 40, "proposal": 60, "negotiation": 80}
STAGES = tuple(STAGE_PROBABILITY)
AUDIT_COLUMNS = "account_id, entity_type, entity_key, action, actor, at, correlation_id, reason, row_after"


class Refused(Exception):
    """A rule of the CRUD baseline refused a command (none should, with the demo's data)."""


def _audit_tail(table: str, key: Sequence[str]) -> str:
    entity_key = ", ".join(f"c.{column}" for column in key)
    return (
        f"INSERT INTO audit_log ({AUDIT_COLUMNS}) "
        f"SELECT %s, '{table}', concat_ws('/', {entity_key}), %s, %s, %s, %s, %s, to_jsonb(c) FROM c"
    )


def insert_sql(table: str, columns: Sequence[str], key: Sequence[str] = ("id",), upsert: bool = False) -> str:
    """One statement: insert (or upsert) the row and its audit image."""
    conflict = ""
    if upsert:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
        conflict = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    placeholders = ", ".join(["%s"] * len(columns))
    return (
        f"WITH c AS (INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}){conflict} RETURNING *) "
        + _audit_tail(table, key)
    )


def update_sql(table: str, columns: Sequence[str], key: Sequence[str] = ("id",)) -> str:
    """One statement: update the row (and its version) and write its audit image."""
    sets = [f"{c} = %s" for c in columns]
    if table in VERSIONED:
        sets += ["version = version + 1", "updated_at = %s"]
    where = " AND ".join(f"{k} = %s" for k in key)
    return f"WITH c AS (UPDATE {table} SET {', '.join(sets)} WHERE {where} RETURNING *) " + _audit_tail(table, key)


def _audit_params(account_id: UUID, action: str, meta: EventMetadata) -> list[Any]:
    return [account_id, action, meta.actor, meta.at, meta.correlation_id, meta.reason]


@dataclass
class CrudStore:
    """The baseline's tables in one schema, and one connection to them."""

    conn: psycopg.Connection[Any]
    schema: str

    @classmethod
    def create(cls, dsn: str, schema: str) -> CrudStore:
        conn = psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}")
        with conn.transaction():
            conn.execute(SCHEMA)
        return cls(conn, schema)

    def close(self) -> None:
        self.conn.close()

    # -- writing ---------------------------------------------------------------------------------------------------

    def run(self, command: Command) -> None:
        """One command, one transaction."""
        with self.conn.transaction():
            getattr(self, f"_{command.name}")(command.meta, **command.kwargs)

    def run_all(self, commands: Iterable[Command]) -> int:
        count = 0
        for command in commands:
            self.run(command)
            count += 1
        return count

    def _insert(
        self,
        table: str,
        row: dict[str, Any],
        account_id: UUID,
        meta: EventMetadata,
        key: Sequence[str] = ("id",),
        upsert: bool = False,
    ) -> None:
        if table in VERSIONED:
            row = {**row, "version": 1, "updated_at": meta.at}
        action = "upserted" if upsert else "inserted"
        sql = insert_sql(table, list(row), key, upsert)
        self.conn.execute(sql, [*row.values(), *_audit_params(account_id, action, meta)])

    def _update(
        self, table: str, key: dict[str, Any], changes: dict[str, Any], account_id: UUID, meta: EventMetadata
    ) -> None:
        params = [*changes.values(), *([meta.at] if table in VERSIONED else []), *key.values()]
        sql = update_sql(table, list(changes), list(key))
        cursor = self.conn.execute(sql, [*params, *_audit_params(account_id, "updated", meta)])
        if cursor.rowcount != 1:
            raise Refused(f"{table} {key} not found")

    def _lock(self, table: str, entity_id: UUID) -> dict[str, Any]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(f"SELECT * FROM {table} WHERE id = %s FOR UPDATE", [entity_id]).fetchone()
        if row is None:
            raise Refused(f"{table} {entity_id} not found")
        return row

    def _unit_of(self, account_id: UUID, unit_id: UUID) -> None:
        row = self.conn.execute("SELECT account_id, closed FROM units WHERE id = %s", [unit_id]).fetchone()
        if row is None or row[0] != account_id or row[1]:
            raise Refused(f"unit {unit_id} is not an open unit of account {account_id}")

    def _lock_plan(self, plan_id: UUID) -> UUID:
        plan = self._lock("plans", plan_id)
        return UUID(str(plan["account_id"]))

    def _lock_deal(self, deal_id: UUID, *, must_be_open: bool = True) -> dict[str, Any]:
        deal = self._lock("deals", deal_id)
        if must_be_open and deal["status"] != "open":
            raise Refused(f"deal {deal_id} is {deal['status']}")
        return deal

    # accounts and units

    def _onboard_account(
        self, meta: EventMetadata, *, account_id: UUID, hq_unit_id: UUID, name: str, industry: str, hq_country: str,
        reporting_currency: str, tier: str, governance_model: str, fiscal_period: str, hq_unit_name: str,
    ) -> None:  # fmt: skip
        account = {"id": account_id, "name": name, "industry": industry, "hq_country": hq_country,
                   "reporting_currency": reporting_currency, "tier": tier, "governance_model": governance_model,
                   "status": "active"}  # fmt: skip
        self._insert("accounts", account, account_id, meta)
        self._insert("units", {"id": hq_unit_id, "account_id": account_id, "parent_id": None, "name": hq_unit_name,
                               "level": "hq", "code": hq_country}, account_id, meta)  # fmt: skip
        plan = {"id": plan_id_for(account_id, fiscal_period), "account_id": account_id,
                "fiscal_period": fiscal_period, "status": "draft"}  # fmt: skip
        self._insert("plans", plan, account_id, meta)

    def _assign_team_member(
        self, meta: EventMetadata, *, account_id: UUID, member: str, unit_id: UUID, role: str
    ) -> None:
        self._lock("accounts", account_id)
        self._unit_of(account_id, unit_id)
        row = {"account_id": account_id, "unit_id": unit_id, "member": member, "role": role, "assigned_at": meta.at}
        self._insert("team_members", row, account_id, meta, key=("unit_id", "member", "role"))

    def _add_unit(
        self, meta: EventMetadata, *, account_id: UUID, unit_id: UUID, name: str, level: str, parent_id: UUID,
        code: str | None = None,
    ) -> None:  # fmt: skip
        self._lock("accounts", account_id)
        self._unit_of(account_id, parent_id)
        row = {"id": unit_id, "account_id": account_id, "parent_id": parent_id, "name": name, "level": level,
               "code": code}  # fmt: skip
        self._insert("units", row, account_id, meta)

    # plans

    def _set_objective(
        self, meta: EventMetadata, *, plan_id: UUID, objective_id: UUID, unit_id: UUID, title: str,
        description: str | None, target: Any, due_date: Any, linked_objective_id: UUID | None,
    ) -> None:  # fmt: skip
        """(The demo links no objective to another, so the baseline keeps no column for it.)"""
        account_id = self._lock_plan(plan_id)
        self._unit_of(account_id, unit_id)
        row = {"id": objective_id, "plan_id": plan_id, "unit_id": unit_id, "title": title, "description": description,
               "metric": target.metric, "target_value": target.value, "target_currency": target.currency,
               "due_date": due_date}  # fmt: skip
        self._insert("objectives", row, account_id, meta)

    def _cascade_objective(
        self, meta: EventMetadata, *, plan_id: UUID, objective_id: UUID, from_unit_id: UUID, to_unit_ids: Sequence[UUID]
    ) -> None:
        account_id = self._lock_plan(plan_id)
        for unit_id in to_unit_ids:
            self._unit_of(account_id, unit_id)
            row = {"objective_id": objective_id, "unit_id": unit_id, "from_unit_id": from_unit_id,
                   "cascaded_at": meta.at}  # fmt: skip
            self._insert("directives", row, account_id, meta, key=("objective_id", "unit_id"))

    def _respond_to_cascade(
        self, meta: EventMetadata, *, plan_id: UUID, objective_id: UUID, unit_id: UUID, answer: str,
        local_title: str | None = None, local_target: Any = None, rationale: str | None = None,
    ) -> None:  # fmt: skip
        account_id = self._lock_plan(plan_id)
        changes = {"answer": answer, "local_title": local_title, "rationale": rationale, "answered_at": meta.at,
                   "local_metric": local_target.metric if local_target else None,
                   "local_value": local_target.value if local_target else None,
                   "local_currency": local_target.currency if local_target else None}  # fmt: skip
        key = {"objective_id": objective_id, "unit_id": unit_id}
        self._update("directives", key, changes, account_id, meta)

    def _add_action(
        self, meta: EventMetadata, *, plan_id: UUID, action_id: UUID, objective_id: UUID, unit_id: UUID, title: str,
        owner: str, due_date: Any,
    ) -> None:  # fmt: skip
        account_id = self._lock_plan(plan_id)
        row = {"id": action_id, "plan_id": plan_id, "objective_id": objective_id, "unit_id": unit_id, "title": title,
               "owner": owner, "due_date": due_date, "status": "open"}  # fmt: skip
        self._insert("actions", row, account_id, meta)

    def _change_action_status(self, meta: EventMetadata, *, plan_id: UUID, action_id: UUID, status: str) -> None:
        account_id = self._lock_plan(plan_id)
        self._update("actions", {"id": action_id}, {"status": status}, account_id, meta)

    def _report_progress(
        self, meta: EventMetadata, *, plan_id: UUID, objective_id: UUID, unit_id: UUID, percent: int,
        comment: str | None = None,
    ) -> None:  # fmt: skip
        account_id = self._lock_plan(plan_id)
        row = {"objective_id": objective_id, "unit_id": unit_id, "percent": percent, "comment": comment,
               "reported_at": meta.at}  # fmt: skip
        self._insert("objective_progress", row, account_id, meta, key=("objective_id", "unit_id"), upsert=True)

    def _add_swot_entry(
        self, meta: EventMetadata, *, plan_id: UUID, entry_id: UUID, kind: str, text: str, unit_id: UUID | None
    ) -> None:
        """(The demo's SWOT entries are about the whole account, so the baseline keeps no unit.)"""
        account_id = self._lock_plan(plan_id)
        self._insert("swot_entries", {"id": entry_id, "plan_id": plan_id, "kind": kind, "text": text}, account_id, meta)

    def _set_whitespace_cell(
        self, meta: EventMetadata, *, plan_id: UUID, offering: str, unit_id: UUID, status: str
    ) -> None:
        account_id = self._lock_plan(plan_id)
        row = {"plan_id": plan_id, "offering": offering, "unit_id": unit_id, "status": status}
        self._insert("whitespace_cells", row, account_id, meta, key=("plan_id", "offering", "unit_id"), upsert=True)

    def _hold_business_review(
        self, meta: EventMetadata, *, plan_id: UUID, review_id: UUID, held_on: Any, participants: Sequence[str],
        decisions: Sequence[str], follow_up_actions: Sequence[str],
    ) -> None:  # fmt: skip
        account_id = self._lock_plan(plan_id)
        row = {"id": review_id, "plan_id": plan_id, "held_on": held_on, "participants": list(participants),
               "decisions": list(decisions), "follow_up_actions": list(follow_up_actions)}  # fmt: skip
        self._insert("business_reviews", row, account_id, meta)

    def _move_plan(self, meta: EventMetadata, plan_id: UUID, before: str, after: str) -> None:
        plan = self._lock("plans", plan_id)
        if plan["status"] != before:
            raise Refused(f"plan {plan_id} is {plan['status']}, not {before}")
        self._update("plans", {"id": plan_id}, {"status": after}, plan["account_id"], meta)

    def _submit_plan(self, meta: EventMetadata, *, plan_id: UUID) -> None:
        self._move_plan(meta, plan_id, "draft", "submitted")

    def _approve_plan(self, meta: EventMetadata, *, plan_id: UUID) -> None:
        self._move_plan(meta, plan_id, "submitted", "approved")

    # stakeholders

    def _identify_stakeholder(
        self, meta: EventMetadata, *, stakeholder_id: UUID, account_id: UUID, unit_id: UUID, title: str, personal: Any
    ) -> None:
        self._lock("accounts", account_id)
        self._unit_of(account_id, unit_id)
        row = {"id": stakeholder_id, "account_id": account_id, "unit_id": unit_id, "title": title,
               "full_name": personal.name, "email": personal.email, "phone": personal.phone}  # fmt: skip
        self._insert("stakeholders", row, account_id, meta)

    def _change_person(self, meta: EventMetadata, stakeholder_id: UUID, changes: dict[str, Any]) -> None:
        person = self._lock("stakeholders", stakeholder_id)
        if person["left_on"] is not None:
            raise Refused(f"stakeholder {stakeholder_id} has left")
        self._update("stakeholders", {"id": stakeholder_id}, changes, person["account_id"], meta)

    def _change_buying_role(self, meta: EventMetadata, *, stakeholder_id: UUID, role: str) -> None:
        self._change_person(meta, stakeholder_id, {"buying_role": role})

    def _rate_influence(self, meta: EventMetadata, *, stakeholder_id: UUID, influence: int) -> None:
        self._change_person(meta, stakeholder_id, {"influence": influence})

    def _rate_sentiment(self, meta: EventMetadata, *, stakeholder_id: UUID, sentiment: int) -> None:
        self._change_person(meta, stakeholder_id, {"sentiment": sentiment})

    def _assign_relationship_owner(self, meta: EventMetadata, *, stakeholder_id: UUID, owner: str) -> None:
        self._change_person(meta, stakeholder_id, {"relationship_owner": owner})

    def _set_reports_to(self, meta: EventMetadata, *, stakeholder_id: UUID, manager_id: UUID) -> None:
        self._change_person(meta, stakeholder_id, {"reports_to": manager_id})

    def _record_departure(self, meta: EventMetadata, *, stakeholder_id: UUID, left_on: Any) -> None:
        self._change_person(meta, stakeholder_id, {"left_on": left_on})

    def _log_interaction(
        self, meta: EventMetadata, *, stakeholder_id: UUID, interaction_id: UUID, occurred_at: datetime, channel: str,
        summary: str,
    ) -> None:  # fmt: skip
        person = self._lock("stakeholders", stakeholder_id)
        row = {"id": interaction_id, "stakeholder_id": stakeholder_id, "occurred_at": occurred_at, "channel": channel,
               "summary": summary}  # fmt: skip
        self._insert("interactions", row, person["account_id"], meta)

    # deals

    def _open_deal(
        self, meta: EventMetadata, *, deal_id: UUID, account_id: UUID, unit_id: UUID, title: str, amount: Any,
        expected_close: Any, owner: str, stage: str = "prospecting", probability: int | None = None,
        products: Sequence[str] = (), plan_id: UUID | None = None, linked_objective_ids: Sequence[UUID] = (),
    ) -> None:  # fmt: skip
        self._lock("accounts", account_id)
        self._unit_of(account_id, unit_id)
        row = {"id": deal_id, "account_id": account_id, "unit_id": unit_id, "plan_id": plan_id, "title": title,
               "amount": amount.amount, "currency": amount.currency, "stage": stage,
               "expected_close": expected_close, "probability": STAGE_PROBABILITY[stage] if probability is None
               else probability, "owner": owner, "products": list(products), "status": "open"}  # fmt: skip
        self._insert("deals", row, account_id, meta)
        for objective_id in linked_objective_ids:
            link = {"deal_id": deal_id, "objective_id": objective_id}
            self._insert("deal_objectives", link, account_id, meta, key=("deal_id", "objective_id"))

    def _attach_buying_influence(
        self, meta: EventMetadata, *, deal_id: UUID, stakeholder_id: UUID, role: str, degree: str,
        note: str | None = None,
    ) -> None:  # fmt: skip
        deal = self._lock_deal(deal_id)
        row = {"deal_id": deal_id, "stakeholder_id": stakeholder_id, "role": role, "degree": degree, "note": note}
        self._insert("deal_influences", row, deal["account_id"], meta, key=("deal_id", "stakeholder_id", "role"))

    def _assess_qualification(
        self,
        meta: EventMetadata,
        *,
        deal_id: UUID,
        element: str,
        status: str,
        evidence: str | None = None,
        stakeholder_id: UUID | None = None,
    ) -> None:
        deal = self._lock_deal(deal_id)
        row = {"deal_id": deal_id, "element": element, "status": status, "evidence": evidence,
               "stakeholder_id": stakeholder_id}  # fmt: skip
        self._insert("deal_qualification", row, deal["account_id"], meta, key=("deal_id", "element"), upsert=True)

    def _change_deal(
        self, meta: EventMetadata, deal_id: UUID, changes: dict[str, Any], *, must_be_open: bool = True
    ) -> dict[str, Any]:
        deal = self._lock_deal(deal_id, must_be_open=must_be_open)
        self._update("deals", {"id": deal_id}, changes, deal["account_id"], meta)
        return deal

    def _move_deal_stage(self, meta: EventMetadata, *, deal_id: UUID, to_stage: str) -> None:
        self._change_deal(meta, deal_id, {"stage": to_stage, "probability": STAGE_PROBABILITY[to_stage]})

    def _change_deal_amount(self, meta: EventMetadata, *, deal_id: UUID, amount: Any) -> None:
        self._change_deal(meta, deal_id, {"amount": amount.amount})

    def _change_deal_close_date(self, meta: EventMetadata, *, deal_id: UUID, expected_close: Any) -> None:
        self._change_deal(meta, deal_id, {"expected_close": expected_close})

    def _change_deal_probability(self, meta: EventMetadata, *, deal_id: UUID, probability: int) -> None:
        self._change_deal(meta, deal_id, {"probability": probability})

    def _win_deal(self, meta: EventMetadata, *, deal_id: UUID, final_amount: Any) -> None:
        self._change_deal(meta, deal_id, {"status": "won", "final_amount": final_amount.amount, "probability": 100})

    def _lose_deal(
        self, meta: EventMetadata, *, deal_id: UUID, loss_reason: str, competitor: str | None = None
    ) -> None:
        changes = {"status": "lost", "loss_reason": loss_reason, "competitor": competitor, "probability": 0}
        self._change_deal(meta, deal_id, changes)

    def _reopen_deal(self, meta: EventMetadata, *, deal_id: UUID) -> None:
        deal = self._lock_deal(deal_id, must_be_open=False)
        if deal["status"] == "open":
            raise Refused(f"deal {deal_id} is open")
        changes = {"status": "open", "final_amount": None, "probability": STAGE_PROBABILITY[deal["stage"]]}
        self._update("deals", {"id": deal_id}, changes, deal["account_id"], meta)

    # -- bulk import -----------------------------------------------------------------------------------------------

    def bulk_import(self, account_id: UUID, changes: Sequence[Change], batch: int = IMPORT_BATCH) -> float:
        """The same changes, a thousand per transaction, each kind as one ``executemany``
        (pipelined) of the same update-and-audit statement. Returns the seconds taken."""
        deal_sql = update_sql("deals", ["probability"])
        person_sql = update_sql("stakeholders", ["sentiment"])
        progress_sql = insert_sql(
            "objective_progress", ["objective_id", "unit_id", "percent", "reported_at"], ("objective_id", "unit_id"),
            upsert=True,
        )  # fmt: skip
        started = time.perf_counter()
        for first in range(0, len(changes), batch):
            by_kind: dict[str, list[list[Any]]] = defaultdict(list)
            for change in changes[first : first + batch]:
                audit = [account_id, "updated", change.meta.actor, change.meta.at, change.meta.correlation_id, None]
                if change.kind == "objective_progress":
                    row = [change.objective_id, change.unit_id, change.value, change.meta.at]
                    by_kind[progress_sql].append([*row, *audit])
                else:
                    sql = deal_sql if change.kind == "deal_probability" else person_sql
                    by_kind[sql].append([change.value, change.meta.at, change.entity_id, *audit])
            with self.conn.transaction(), self.conn.cursor() as cursor:
                for sql, params in by_kind.items():
                    cursor.executemany(sql, params)
        return time.perf_counter() - started

    # -- reading ---------------------------------------------------------------------------------------------------

    def account_view(self, account_id: UUID) -> dict[str, Any] | None:
        """The account page a team would serve: current rows of every table, the unit tree
        assembled in Python, the pipeline summed by SQL, in one read-only transaction."""
        with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
            account = cur.execute("SELECT * FROM accounts WHERE id = %s", [account_id]).fetchone()
            if account is None:
                return None
            units = cur.execute("SELECT * FROM units WHERE account_id = %s ORDER BY name", [account_id]).fetchall()
            team = cur.execute("SELECT * FROM team_members WHERE account_id = %s", [account_id]).fetchall()
            plans = cur.execute("SELECT * FROM plans WHERE account_id = %s", [account_id]).fetchall()
            plan_ids = [p["id"] for p in plans]
            by_plan = "WHERE plan_id = ANY(%s)"
            objectives = cur.execute(f"SELECT * FROM objectives {by_plan} ORDER BY title", [plan_ids]).fetchall()
            objective_ids = [o["id"] for o in objectives]
            directives = cur.execute(
                "SELECT * FROM directives WHERE objective_id = ANY(%s)", [objective_ids]
            ).fetchall()
            progress = cur.execute(
                "SELECT * FROM objective_progress WHERE objective_id = ANY(%s)", [objective_ids]
            ).fetchall()
            actions = cur.execute(f"SELECT * FROM actions {by_plan}", [plan_ids]).fetchall()
            swot = cur.execute(f"SELECT * FROM swot_entries {by_plan}", [plan_ids]).fetchall()
            reviews = cur.execute(f"SELECT * FROM business_reviews {by_plan}", [plan_ids]).fetchall()
            whitespace = cur.execute(f"SELECT * FROM whitespace_cells {by_plan}", [plan_ids]).fetchall()
            people = cur.execute("SELECT * FROM stakeholders WHERE account_id = %s", [account_id]).fetchall()
            deals = cur.execute("SELECT * FROM deals WHERE account_id = %s", [account_id]).fetchall()
            pipeline = cur.execute(
                "SELECT stage, currency, count(*) AS deals, sum(amount) AS amount, "
                "sum(amount * probability / 100) AS weighted FROM deals "
                "WHERE account_id = %s AND status = 'open' GROUP BY stage, currency",
                [account_id],
            ).fetchall()
        return _assemble(account, units, team, plans, objectives, directives, progress, actions, swot, reviews,
                         whitespace, people, deals, pipeline)  # fmt: skip

    def as_of(self, account_id: UUID, moment: datetime) -> dict[str, dict[str, Any]]:
        """Every row of the account as it stood at ``moment``: the last audit image of each."""
        rows = self.conn.execute(
            "SELECT DISTINCT ON (entity_type, entity_key) entity_type, entity_key, row_after FROM audit_log "
            "WHERE account_id = %s AND at <= %s ORDER BY entity_type, entity_key, at DESC, id DESC",
            [account_id, moment],
        ).fetchall()
        state: dict[str, dict[str, Any]] = defaultdict(dict)
        for entity_type, entity_key, image in rows:
            state[entity_type][entity_key] = image
        return state

    def restore_from_audit(self) -> float:
        """The nearest a CRUD system comes to a rebuild: build every table again from the
        audit log's last image of each row, into empty copies. Returns the seconds taken."""
        with self.conn.transaction():
            for table in ENTITY_TABLES:
                self.conn.execute(f"DROP TABLE IF EXISTS restored_{table}")
                self.conn.execute(f"CREATE TABLE restored_{table} (LIKE {table})")
        started = time.perf_counter()
        with self.conn.transaction():
            for table in ENTITY_TABLES:
                self.conn.execute(
                    f"INSERT INTO restored_{table} SELECT (jsonb_populate_record(NULL::{table}, row_after)).* "
                    "FROM (SELECT DISTINCT ON (entity_key) row_after FROM audit_log WHERE entity_type = %s "
                    "ORDER BY entity_key, id DESC) AS last",
                    [table],
                )
        return time.perf_counter() - started

    def audit_rows(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM audit_log").fetchone()
        return int(row[0]) if row else 0

    # -- outbox relay ----------------------------------------------------------------------------------------------

    def relay(self, producer: Any, topic: str, batch: int = 500) -> int:
        """The audit log as an outbox: publish rows after the stored position in batches,
        wait for the broker's acknowledgements, then store the new position."""
        name = f"relay_{topic}"
        self.conn.execute("INSERT INTO outbox_position VALUES (%s, 0) ON CONFLICT DO NOTHING", [name])
        published = 0
        while True:
            row = self.conn.execute("SELECT position FROM outbox_position WHERE relay = %s", [name]).fetchone()
            position = int(row[0]) if row else 0
            rows = self.conn.execute(
                f"SELECT id, {AUDIT_COLUMNS} FROM audit_log WHERE id > %s ORDER BY id LIMIT %s", [position, batch]
            ).fetchall()
            if not rows:
                return published
            futures = []
            for audit_id, account_id, entity_type, entity_key, action, actor, at, _corr, reason, image in rows:
                value = {"position": audit_id, "entity_type": entity_type, "entity_key": entity_key, "action": action,
                         "actor": actor, "at": at.isoformat(), "reason": reason, "row": image}  # fmt: skip
                futures.append(
                    producer.send(topic, key=str(account_id).encode(), value=json.dumps(value, default=str).encode())
                )
            producer.flush(timeout=60)
            for future in futures:
                future.get(timeout=60)
            self.conn.execute("UPDATE outbox_position SET position = %s WHERE relay = %s", [rows[-1][0], name])
            published += len(rows)


def _assemble(
    account: dict[str, Any], units: list[dict[str, Any]], team: list[dict[str, Any]], plans: list[dict[str, Any]],
    objectives: list[dict[str, Any]], directives: list[dict[str, Any]], progress: list[dict[str, Any]],
    actions: list[dict[str, Any]], swot: list[dict[str, Any]], reviews: list[dict[str, Any]],
    whitespace: list[dict[str, Any]], people: list[dict[str, Any]], deals: list[dict[str, Any]],
    pipeline: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    nodes = {u["id"]: {**u, "team": [], "children": []} for u in units}
    for member in team:
        nodes[member["unit_id"]]["team"].append({"member": member["member"], "role": member["role"]})
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_id"])
        (parent["children"] if parent else roots).append(node)
    per_objective: dict[UUID, dict[str, Any]] = {
        o["id"]: {**o, "directives": [], "progress": [], "actions": []} for o in objectives
    }
    for directive in directives:
        per_objective[directive["objective_id"]]["directives"].append(directive)
    for report in progress:
        per_objective[report["objective_id"]]["progress"].append(report)
    for action in actions:
        per_objective[action["objective_id"]]["actions"].append(action)
    by_stage: dict[str, dict[str, Any]] = {}
    for row in pipeline:
        by_stage.setdefault(row["stage"], {})[row["currency"]] = row
    return {
        "account": account,
        "unit_tree": roots,
        "plans": [
            {**p, "objectives": [o for o in per_objective.values() if o["plan_id"] == p["id"]],
             "swot": [s for s in swot if s["plan_id"] == p["id"]],
             "reviews": [r for r in reviews if r["plan_id"] == p["id"]],
             "whitespace": [w for w in whitespace if w["plan_id"] == p["id"]]}
            for p in plans
        ],
        "stakeholders": people,
        "deals": deals,
        "pipeline": by_stage,
        "win_rate": {
            "won": sum(1 for d in deals if d["status"] == "won"),
            "lost": sum(1 for d in deals if d["status"] == "lost"),
        },
        "as_of": datetime.now(UTC).isoformat(),
    }  # fmt: skip
