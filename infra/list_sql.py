"""The WHERE clause of a list query, for SQLite and PostgreSQL alike.

Both databases store list rows in ``gam_view_lists`` with one column per facet
(:data:`~projections.ports.LIST_FACETS`); only how a parameter, a set of values and a
substring are written differs, so one function builds the clause for either. Column
names come from the facet constants, never from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from projections.ports import LIST_FACETS, ListQuery

FACET_INDEXES: tuple[tuple[str, str], ...] = (
    ("unit", "unit_id"),
    ("owner", "owner"),
    ("stage", "stage"),
    ("role", "role"),
    ("due", "status, due"),
)
"""Indexes on ``(view, kind, account_id, <columns>)``, by name: a filter that matches
few of an account's 10,000 rows reads those few, not all of them (and ``(view, kind,
account_id, sort_key, entity_id)`` and ``(view, kind, sort_key, entity_id)`` serve the
unfiltered pages)."""

LIST_COLUMNS = ", ".join(("kind", "entity_id", "account_id", "sort_key", *LIST_FACETS, "body"))


@dataclass(frozen=True)
class Dialect:
    mark: str
    """How a parameter is written: ``?`` or ``%s``."""
    one_of: Callable[[str, int], str]
    """``column`` is one of ``n`` parameters."""
    contains: str
    """``{column}`` holds the parameter as a substring."""


SQLITE = Dialect("?", lambda column, n: f"{column} IN ({','.join('?' * n)})", "instr({column}, ?) > 0")
POSTGRES = Dialect("%s", lambda column, n: f"{column} = ANY(%s)", "strpos({column}, %s) > 0")


def list_where(
    view_clause: str, view_params: Sequence[object], query: ListQuery, dialect: Dialect
) -> tuple[str, list[object]]:
    """The clause (without ``WHERE``) and its parameters; rows come in ``(sort_key,
    entity_id)`` order, which the caller adds with the limit. ``view_clause`` (with
    ``view_params``) picks the view's generation (see the adapters)."""
    m = dialect.mark
    clauses = [view_clause, f"kind = {m}"]
    params: list[object] = [*view_params, query.kind]

    def one_of(column: str, values: frozenset[str]) -> None:
        ordered = sorted(values)
        if len(ordered) == 1:  # the common case (one account), and what the planners estimate best
            clauses.append(f"{column} = {m}")
            params.append(ordered[0])
        elif dialect is POSTGRES:
            clauses.append(dialect.one_of(column, 1))
            params.append(ordered)
        else:
            clauses.append(dialect.one_of(column, len(ordered)) if ordered else "0")
            params.extend(ordered)

    if query.account_ids is not None:
        one_of("account_id", query.account_ids)
    if query.entity_ids is not None:
        one_of("entity_id", query.entity_ids)
    for facet, value in sorted(query.equals.items()):
        clauses.append(f"{_facet(facet)} = {m}")
        params.append(value)
    for facet, values in sorted(query.within.items()):
        one_of(_facet(facet), values)
    if query.text is not None:
        clauses.append(dialect.contains.format(column="sort_key"))
        params.append(query.text)
    if query.overdue is not None:
        if query.overdue:  # as the (status, due) index reads it
            clauses.append(f"status = 'open' AND due < {m}")
        else:  # CASE, not NOT (...): a row without a status or due date is simply not overdue
            clauses.append(f"CASE WHEN status = 'open' AND due < {m} THEN 1 ELSE 0 END = 0")
        params.append(query.today)
    if query.after is not None:
        clauses.append(f"(sort_key, entity_id) > ({m}, {m})")
        params.extend(query.after)
    return " AND ".join(clauses), params


def _facet(name: str) -> str:
    if name not in LIST_FACETS:
        msg = f"no list facet {name!r}"
        raise ValueError(msg)
    return name
