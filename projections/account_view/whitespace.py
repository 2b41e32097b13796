"""The whitespace grid: offerings × units, from the latest plan that has cells."""

from __future__ import annotations

from collections import Counter
from typing import Any

from projections.account_view.units import in_tree_order, unit_label
from projections.ports import Document


def whitespace_grid(plans: dict[str, Document], units: dict[str, Document]) -> dict[str, Any]:
    """Offerings × units → status, from the latest plan (by fiscal period) that has cells."""
    latest = sorted(
        ((plan["fiscal_period"], plan_id) for plan_id, plan in plans.items() if plan["whitespace"]), reverse=True
    )
    if not latest:
        return {"fiscal_period": None, "offerings": [], "units": [], "cells": {}, "counts": {}}
    cells: dict[str, dict[str, str]] = plans[latest[0][1]]["whitespace"]
    columns = in_tree_order((u for row in cells.values() for u in row), units)
    counts = Counter(status for row in cells.values() for status in row.values())
    return {
        "fiscal_period": latest[0][0],
        "offerings": sorted(cells),
        "units": [unit_label(units, u) for u in columns],
        "cells": {
            offering: {u: cells[offering][u] for u in columns if u in cells[offering]} for offering in sorted(cells)
        },
        "counts": dict(sorted(counts.items())),
    }
