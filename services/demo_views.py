"""The three views as a person reads them in a terminal (``gam demo``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from projections.ports import AuditRow
from services.read_models import ViewResult

RECENT_AUDIT_ROWS = 12


def _money(text: str) -> str:
    return f"{Decimal(text):,.0f}"


def show_account_view(console: Console, result: ViewResult[dict[str, Any] | None]) -> None:
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
    stages = Table(title=f"Open pipeline by stage ({pipeline['reporting_currency']}, {pipeline['rates']['source']})")
    for column in ("stage", "deals", "unweighted", "weighted"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for stage, row in pipeline["by_stage"].items():
        stages.add_row(stage, str(row["deals"]), _money(row["unweighted"]), _money(row["weighted"]))
    console.print(stages)

    people = Table(title="Relationships per unit (health 0–100)")
    for column in ("unit", "people", "mean sentiment", "health"):
        people.add_column(column, justify="left" if column == "unit" else "right")
    for row in view["stakeholders"]["per_unit"].values():
        people.add_row(row["unit"], str(row["people"]), row["mean_sentiment"] or "–", str(row["health"]))
    console.print(people)
    win = view["win_rate"]
    console.print(
        f"win rate: {win['by_count']}% by count, {win['by_value']}% by value ({win['won']} won, {win['lost']} lost); "
        f"stakeholders without an owner: {len(view['stakeholders']['without_owner'])}"
    )


def show_strategy_flow(console: Console, result: ViewResult[dict[str, Any] | None]) -> None:
    flow = result.data
    if flow is None:
        console.print("[red]the strategy flow has no such plan[/red]")
        return
    console.rule(
        f"[bold]Strategy flow[/bold]: plan {flow['fiscal_period']} ({flow['status']}) · position {result.position}"
    )
    table = Table()
    for column in ("HQ objective", "units", "adopted", "adapted", "declined", "waiting", "taken on %", "progress %"):
        table.add_column(column, justify="left" if column == "HQ objective" else "right")
    for objective in flow["objectives"]:
        r = objective["rollup"]
        table.add_row(
            objective["title"], str(r["addressed_units"]), str(r["adopted"]), str(r["adapted"]), str(r["declined"]),
            str(r["awaiting_response"]), r["share_taken_on"] or "–", r["weighted_progress"],
        )  # fmt: skip
    console.print(table)
    for gap in flow["gaps"]["declined"]:
        console.print(f"  declined by {gap['unit']}: {gap['objective']} — {gap['rationale']}")
    up = sum(1 for f in flow["flows"] if f["direction"] == "up")
    console.print(f"flows: {len(flow['flows']) - up} down (directives), {up} up (answers, actions, progress)")


def show_audit_trail(console: Console, result: ViewResult[list[AuditRow]]) -> None:
    rows = result.data
    console.rule(f"[bold]Audit trail[/bold]: {len(rows)} events for the account · position {result.position}")
    table = Table(title=f"the last {RECENT_AUDIT_ROWS}")
    for column in ("#", "when (UTC)", "who", "what", "changed", "why"):
        table.add_column(column)
    for row in rows[-RECENT_AUDIT_ROWS:]:
        changed = "; ".join(f"{c['field']}: {c['before']} → {c['after']}" for c in row.changes[:2])
        table.add_row(
            str(row.position), row.occurred_at.strftime("%Y-%m-%d %H:%M"), row.actor.split("@")[0], row.event_type,
            changed[:70], row.reason or "",
        )  # fmt: skip
    console.print(table)
