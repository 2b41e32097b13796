"""The views as a person reads them in a terminal (``gam demo``, ``gam replay``).

Tables fit the terminal (80 columns is enough): long titles are cut with an
ellipsis, numbers never are. ``wide`` shows every title in full, wrapped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from projections.ports import AuditRow
from services.read_models import ViewResult

RECENT_AUDIT_ROWS = 12
TEXT_MIN_WIDTH = 6
"""A text column is never cut shorter than this."""


def _money(text: str) -> str:
    return f"{Decimal(text):,.0f}"


@dataclass(frozen=True)
class Col:
    """A table column: free text taking ``share`` of the room the others leave, or
    (``share`` 0) a number or date, never cut, at least ``width`` wide."""

    header: str
    share: int = 0
    width: int = 0


def _table(console: Console, columns: Sequence[Col], *, wide: bool, title: str | None = None) -> Table:
    """A table that fits the console: text is cut with an ellipsis at widths computed
    from the room left by the numbers (``wide``: every text whole, wrapped)."""
    table = Table(title=title)
    fixed = 3 * len(columns) + 1 + sum(max(len(c.header), c.width) for c in columns if not c.share)
    room, shares = max(console.width - fixed, 0), sum(c.share for c in columns) or 1
    for column in columns:
        if not column.share:
            width = max(len(column.header), column.width)
            table.add_column(column.header, justify="right", no_wrap=True, min_width=width)
        elif wide:
            table.add_column(column.header, overflow="fold")
        else:
            width = max(TEXT_MIN_WIDTH, room * column.share // shares)
            table.add_column(column.header, no_wrap=True, overflow="ellipsis", max_width=width)
    return table


def account_rows(documents: Iterable[dict[str, Any]], search: str | None = None) -> list[dict[str, Any]]:
    """One row per account of the account view, sorted by name; ``search`` keeps those whose
    name, industry, HQ country or tier contains it (any case)."""
    wanted = (search or "").strip().casefold()
    rows = []
    for document in documents:
        account = document["account"]
        facts = (account["name"], account["industry"], account["hq_country"], account["tier"])
        if wanted and not any(wanted in str(fact).casefold() for fact in facts):
            continue
        rows.append({
            **{k: account[k] for k in ("id", "name", "industry", "hq_country", "tier", "reporting_currency")},
            "archived": account["archived"], "units": len(document["units"]), "plans": len(document["plans"]),
            "open_deals": sum(1 for deal in document["deals"].values() if deal["status"] == "open"),
        })  # fmt: skip
    return sorted(rows, key=lambda row: (row["name"].casefold(), row["id"]))


def show_accounts(console: Console, rows: list[dict[str, Any]], *, wide: bool = False) -> None:
    """The accounts with their ids in full (to copy into ``gam show account``); industry,
    tier and open deals only with ``wide``, so a name fits beside the id at 80 columns."""
    columns: tuple[Col, ...]
    if wide:
        columns = (Col("name", share=2), Col("industry", share=1), Col("HQ"), Col("tier", width=6), Col("deals"))
    else:
        columns = (Col("name", share=1), Col("HQ"))
    table = _table(console, (*columns, Col("id", width=36)), wide=wide, title=f"{len(rows)} accounts")
    for row in rows:
        name = f"{row['name']} (archived)" if row["archived"] else row["name"]
        more = (
            (row["industry"], row["hq_country"], row["tier"], str(row["open_deals"])) if wide else (row["hq_country"],)
        )
        table.add_row(name, *more, row["id"])
    console.print(table)


def show_account_view(console: Console, result: ViewResult[dict[str, Any] | None], *, wide: bool = False) -> None:
    view = result.data
    if view is None:
        console.print("[red]the account view has no such account[/red]")
        return
    account = view["account"]
    console.rule(
        f"[bold]Account view[/bold]: {account['name']} · {account['governance_model']} · position {result.position}"
    )
    tree = Tree(f"{view['unit_tree'][0]['name']} ({view['unit_tree'][0]['code']})")

    def add(branch: Tree, node: dict[str, Any]) -> None:
        for child in node["children"]:
            team = ", ".join(sorted({m["member"].split("@")[0] for m in child["team"]}))
            add(branch.add(f"{child['name']} [dim]{child['level']} {child['code']} {team}[/dim]"), child)

    add(tree, view["unit_tree"][0])
    console.print(tree)

    pipeline = view["pipeline"]
    title = f"Open pipeline by stage ({pipeline['reporting_currency']}, {pipeline['rates']['source']})"
    columns = (Col("stage", share=1), Col("deals"), Col("unweighted", width=12), Col("weighted", width=12))
    stages = _table(console, columns, wide=wide, title=title)
    for stage, row in pipeline["by_stage"].items():
        stages.add_row(stage, str(row["deals"]), _money(row["unweighted"]), _money(row["weighted"]))
    console.print(stages)

    columns = (Col("unit", share=1), Col("people"), Col("mean sentiment"), Col("health"))
    people = _table(console, columns, wide=wide, title="Relationships per unit (health 0–100)")
    for row in view["stakeholders"]["per_unit"].values():
        people.add_row(row["unit"], str(row["people"]), row["mean_sentiment"] or "–", str(row["health"]))
    console.print(people)
    win = view["win_rate"]
    console.print(
        f"win rate: {win['by_count']}% by count, {win['by_value']}% by value ({win['won']} won, {win['lost']} lost); "
        f"stakeholders without an owner: {len(view['stakeholders']['without_owner'])}; "
        f"open deals past their close date: {sum(1 for deal in pipeline['deals'] if deal['overdue'])}"
    )


def show_strategy_flow(console: Console, result: ViewResult[dict[str, Any] | None], *, wide: bool = False) -> None:
    flow = result.data
    if flow is None:
        console.print("[red]the strategy flow has no such plan[/red]")
        return
    console.rule(
        f"[bold]Strategy flow[/bold]: plan {flow['fiscal_period']} ({flow['status']}) · position {result.position}"
    )
    extra = ("units", "taken %") if wide else ()  # derived from the answers: only where there is room
    headers = (*extra, "adopt", "adapt", "decline", "wait", "prog. %")
    table = _table(console, (Col("HQ objective", share=1), *(Col(h) for h in headers)), wide=wide)
    for objective in flow["objectives"]:
        r = objective["rollup"]
        shown = (str(r["addressed_units"]), r["share_taken_on"] or "–") if wide else ()
        table.add_row(
            objective["title"], *shown, str(r["adopted"]), str(r["adapted"]), str(r["declined"]),
            str(r["awaiting_response"]), r["weighted_progress"],
        )  # fmt: skip
    console.print(table)
    for gap in flow["gaps"]["declined"]:
        console.print(f"  declined by {gap['unit']}: {gap['objective']} — {gap['rationale']}")
    up = sum(1 for f in flow["flows"] if f["direction"] == "up")
    console.print(f"flows: {len(flow['flows']) - up} down (directives), {up} up (answers, actions, progress)")


def show_audit_trail(console: Console, result: ViewResult[list[AuditRow]], *, wide: bool = False) -> None:
    rows = result.data
    console.rule(f"[bold]Audit trail[/bold]: {len(rows)} events for the account · position {result.position}")
    columns = (
        Col("#", width=len(str(result.position or 0))), Col("when (UTC)", width=16), Col("who", share=1),
        Col("what", share=2), Col("changed", share=3), Col("why", share=2),
    )  # fmt: skip
    table = _table(console, columns, wide=wide, title=f"the last {RECENT_AUDIT_ROWS}")
    for row in rows[-RECENT_AUDIT_ROWS:]:
        changed = "; ".join(f"{c['field']}: {c['before']} → {c['after']}" for c in row.changes[:2])
        table.add_row(
            str(row.position), row.occurred_at.strftime("%Y-%m-%d %H:%M"), row.actor.split("@")[0], row.event_type,
            changed, row.reason or "",
        )  # fmt: skip
    console.print(table)


def show_plans(console: Console, view: dict[str, Any], *, wide: bool = False) -> None:
    """Each plan of the account view: its status and, per objective, how its cascade was answered."""
    for plan in view["plans"]:
        cascade = plan["cascade"]
        console.rule(f"[bold]Plan[/bold] {plan['fiscal_period']} ({plan['status']})")
        answers = f"{cascade['adopted']} adopted, {cascade['adapted']} adapted, {cascade['declined']} declined"
        console.print(
            f"cascade: {sum(cascade.values())} directives — {answers}, {cascade['awaiting_response']} waiting; "
            f"{len(plan['actions'])} actions, {plan['overdue_actions']} overdue",
            highlight=False,
        )
        columns = (Col("objective", share=3), Col("unit", share=1), *map(Col, ("adopt", "adapt", "decline", "wait")))
        table = _table(console, (*columns, Col("prog. %")), wide=wide)
        for owner in plan["objectives_by_unit"].values():
            for objective in owner["objectives"]:
                counts = objective["cascade"]
                progress = objective["progress_percent"]
                counted = (counts[state] for state in ("adopted", "adapted", "declined", "awaiting_response"))
                table.add_row(
                    objective["title"], owner["unit"] or owner["unit_id"], *(str(n) for n in counted),
                    "–" if progress is None else str(progress),
                )  # fmt: skip
        console.print(table)


def show_next_steps(console: Console, account_id: UUID, plan_id: UUID, now: datetime) -> None:
    """Where to go from the demo: the ids it made, and commands that use them."""
    day = now.date().isoformat()
    console.rule("[bold]Try next[/bold]")
    console.print(f"account id: {account_id}\nplan id:    {plan_id}", highlight=False)
    for command in (
        f"gam replay --account {account_id} --as-of 2026-10-01",
        f"gam diff --account {account_id} --from 2026-10-01 --to {day}",
        f"gam audit verify --account {account_id}",
        f"gam audit export --account {account_id} --format csv",
        "gam serve   (the HTTP API, OpenAPI at /docs)",
    ):
        console.print(f"  {command}", highlight=False, soft_wrap=True)
