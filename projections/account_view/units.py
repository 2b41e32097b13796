"""The unit tree: its order (depth first from HQ, siblings by name), a unit's
ancestors, how a row names a unit, and the tree with our team on each unit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from projections.ports import Document


class UnitsOfOneRead(dict[str, Document]):
    """An account's units while one read derives its sections, during which nothing
    changes them: the tree order, its ranks and each unit's ancestors are worked out
    once and remembered (a read of the demo account asked for the tree order 27 times,
    a tenth of the read). The functions below take plain dicts too, and then work
    everything out each time."""

    __slots__ = ("_ancestors", "_children", "_order", "_rank")

    def __init__(self, units: dict[str, Document]) -> None:
        super().__init__(units)
        self._children: dict[str | None, list[str]] | None = None
        self._order: list[str] | None = None
        self._rank: dict[str, int] | None = None
        self._ancestors: dict[str, list[str]] = {}


def children_of(units: dict[str, Document]) -> dict[str | None, list[str]]:
    """Parent id (``None`` for the root) → child unit ids, siblings by name."""
    if isinstance(units, UnitsOfOneRead):
        if units._children is None:
            units._children = _children_of(units)
        return units._children
    return _children_of(units)


def _children_of(units: dict[str, Document]) -> dict[str | None, list[str]]:
    children: dict[str | None, list[str]] = defaultdict(list)
    for unit_id in sorted(units, key=lambda u: (units[u]["name"], u)):
        parent = units[unit_id]["parent_id"]
        children[parent if parent in units else None].append(unit_id)
    return children


def tree_order(units: dict[str, Document]) -> list[str]:
    """Unit ids depth first from HQ: the order a GAM reads the tree in."""
    if isinstance(units, UnitsOfOneRead):
        if units._order is None:
            units._order = _tree_order(units)
        return list(units._order)
    return _tree_order(units)


def _tree_order(units: dict[str, Document]) -> list[str]:
    children = children_of(units)
    order: list[str] = []

    def visit(unit_id: str) -> None:
        order.append(unit_id)
        for child in children[unit_id]:
            visit(child)

    for root in children[None]:
        visit(root)
    return order


def in_tree_order(unit_ids: Iterable[str], units: dict[str, Document]) -> list[str]:
    """The given unit ids in tree order; ids the tree does not know come last."""
    rank = tree_ranks(units)
    return sorted(set(unit_ids), key=lambda u: (rank.get(u, len(rank)), u))


def tree_ranks(units: dict[str, Document]) -> dict[str, int]:
    """Each unit's place in :func:`tree_order`."""
    if isinstance(units, UnitsOfOneRead):
        if units._rank is None:
            units._rank = {unit_id: n for n, unit_id in enumerate(tree_order(units))}
        return units._rank
    return {unit_id: n for n, unit_id in enumerate(tree_order(units))}


def ancestors(units: dict[str, Document], unit_id: str) -> list[str]:
    """Unit ids from the parent up to HQ (not to be changed by the caller)."""
    if isinstance(units, UnitsOfOneRead):
        known = units._ancestors.get(unit_id)
        if known is None:
            known = units._ancestors[unit_id] = _ancestors(units, unit_id)
        return known
    return _ancestors(units, unit_id)


def _ancestors(units: dict[str, Document], unit_id: str) -> list[str]:
    chain: list[str] = []
    parent = units.get(unit_id, {}).get("parent_id")
    while parent in units and parent not in chain:
        chain.append(parent)
        parent = units[parent]["parent_id"]
    return chain


def unit_label(units: dict[str, Document], unit_id: str | None) -> dict[str, Any]:
    """How an output row names a unit: id, name and level (name and level ``None`` if unknown)."""
    unit = units.get(unit_id or "", {})
    return {"unit_id": unit_id, "unit": unit.get("name"), "level": unit.get("level")}


def unit_tree(units: dict[str, Document], team: dict[str, Document]) -> list[dict[str, Any]]:
    """The units nested HQ → region → country → local, each with our team on it."""
    members: dict[str, list[dict[str, str]]] = defaultdict(list)
    for assignment in sorted(team.values(), key=lambda a: (a["role"], a["member"])):
        members[assignment["unit_id"]].append({"member": assignment["member"], "role": assignment["role"]})
    children = children_of(units)

    def node(unit_id: str) -> dict[str, Any]:
        unit = units[unit_id]
        return {
            "unit_id": unit_id, "name": unit["name"], "level": unit["level"], "code": unit["code"],
            "closed": unit["closed"], "team": members[unit_id], "children": [node(c) for c in children[unit_id]],
        }  # fmt: skip

    return [node(root) for root in children[None]]
