"""Where the Merkle tree over the events and its signed checkpoints are kept:
beside the events (the same SQLite file or PostgreSQL schema), or in memory.

Three tables. ``gam_merkle_nodes`` holds the hash of every perfect subtree
(``infra.merkle``), keyed by one integer (``level << 50 | index``) so a proof is
one primary-key look-up of a few hundred ids; ``gam_merkle_leaves`` maps each
leaf index to the event's log position (PostgreSQL's positions have gaps, leaf
indexes do not); ``gam_checkpoints`` keeps every checkpoint signed, as its note.

Nothing here is trusted against the database's owner: these rows can be edited
like the events. What makes tampering evident is the checkpoints published
outside and the witnesses holding them (``services.transparency``).

Appending takes a lock (SQLite's write lock, a PostgreSQL advisory lock) and
re-reads the tree's end inside it, so two followers appending at once never
append an event twice or out of order.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from infra.merkle import NodeKey, append_leaves, root_keys
from infra.postgres_ddl import lock_for_this_transaction
from infra.settings import Settings
from infra.sqlite_hygiene import secure

NODES, LEAVES, CHECKPOINTS = "gam_merkle_nodes", "gam_merkle_leaves", "gam_checkpoints"
LEVEL_SHIFT = 50

# SQLite statements (table names are the constants above, never input)
_SQLITE_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {NODES} (id INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {LEAVES} (leaf_index INTEGER PRIMARY KEY, position INTEGER NOT NULL UNIQUE)",
    f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (tree_size INTEGER PRIMARY KEY, root BLOB NOT NULL, "
    "note TEXT NOT NULL, signed_at TEXT NOT NULL)",
)
_SQLITE_END = f"SELECT leaf_index, position FROM {LEAVES} ORDER BY leaf_index DESC LIMIT 1"  # noqa: S608
_SQLITE_NODES = f"SELECT id, hash FROM {NODES} WHERE id IN "  # noqa: S608
_SQLITE_LEAF_INDEXES = f"SELECT position, leaf_index FROM {LEAVES} WHERE position BETWEEN ? AND ?"  # noqa: S608
_SQLITE_LEAF_RANGE = (
    f"SELECT l.position, n.hash FROM {LEAVES} l JOIN {NODES} n ON n.id = l.leaf_index "  # noqa: S608
    "WHERE l.leaf_index >= ? AND l.leaf_index < ? ORDER BY l.leaf_index"
)
_SQLITE_INSERT_LEAF = f"INSERT INTO {LEAVES} (leaf_index, position) VALUES (?, ?)"  # noqa: S608
_SQLITE_INSERT_NODE = f"INSERT INTO {NODES} (id, hash) VALUES (?, ?)"  # noqa: S608
_SQLITE_INSERT_CHECKPOINT = (
    f"INSERT INTO {CHECKPOINTS} (tree_size, root, note, signed_at) VALUES (?, ?, ?, ?) "  # noqa: S608
    "ON CONFLICT (tree_size) DO NOTHING"
)
_SQLITE_LATEST = f"SELECT tree_size, root, note, signed_at FROM {CHECKPOINTS} ORDER BY tree_size DESC LIMIT 1"  # noqa: S608


def node_id(key: NodeKey) -> int:
    level, index = key
    return (level << LEVEL_SHIFT) | index


def node_key(identifier: int) -> NodeKey:
    return identifier >> LEVEL_SHIFT, identifier & ((1 << LEVEL_SHIFT) - 1)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as recorded: the tree size and root it commits to, and its signed note."""

    size: int
    root: bytes
    note: str
    signed_at: datetime


class TreeStore(ABC):
    """The Merkle tree's storage; :meth:`append` is the only writer of nodes."""

    @abstractmethod
    def end(self) -> tuple[int, int]:
        """(tree size, log position of the last leaf); (0, 0) for an empty tree."""

    @abstractmethod
    def nodes(self, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hashes of these perfect subtrees (missing ones are left out)."""

    @abstractmethod
    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        """Leaf index of each of these log positions that the tree holds."""

    @abstractmethod
    def leaf_range(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        """``(log position, leaf hash)`` of leaves ``start`` to ``stop`` (exclusive), in order."""

    @abstractmethod
    def append(self, entries: Sequence[tuple[int, bytes]]) -> int:
        """Append ``(log position, leaf hash)`` pairs past the tree's last position; returns how many."""

    @abstractmethod
    def record_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    @abstractmethod
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    def close(self) -> None:  # noqa: B027 - only stores holding connections close anything
        """Nothing to close unless the store holds connections."""

    @staticmethod
    def _appended(
        size: int, last: int, frontier: dict[NodeKey, bytes], entries: Sequence[tuple[int, bytes]]
    ) -> tuple[list[tuple[int, int]], dict[NodeKey, bytes]]:
        """The new leaves (position, index) and nodes for ``entries`` past position ``last``."""
        fresh = [(p, h) for p, h in entries if p > last]
        made = append_leaves(size, frontier, [h for _, h in fresh])
        leaves = [(size + i, p) for i, (p, _) in enumerate(fresh)]
        return leaves, made


class MemoryTreeStore(TreeStore):
    def __init__(self) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self._positions: list[int] = []
        self._index_of: dict[int, int] = {}
        self._checkpoints: dict[int, StoredCheckpoint] = {}
        self._lock = threading.Lock()

    def end(self) -> tuple[int, int]:
        with self._lock:
            return len(self._positions), (self._positions[-1] if self._positions else 0)

    def nodes(self, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        with self._lock:
            return {k: self._nodes[k] for k in keys if k in self._nodes}

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        with self._lock:
            return {p: self._index_of[p] for p in positions if p in self._index_of}

    def leaf_range(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return [(self._positions[i], self._nodes[(0, i)]) for i in range(start, min(stop, len(self._positions)))]

    def append(self, entries: Sequence[tuple[int, bytes]]) -> int:
        with self._lock:
            size = len(self._positions)
            last = self._positions[-1] if self._positions else 0
            frontier = {k: self._nodes[k] for k in root_keys(size)}
            leaves, made = self._appended(size, last, frontier, entries)
            self._nodes.update(made)
            for index, position in leaves:
                self._positions.append(position)
                self._index_of[position] = index
            return len(leaves)

    def record_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._lock:
            self._checkpoints.setdefault(checkpoint.size, checkpoint)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._lock:
            return self._checkpoints[max(self._checkpoints)] if self._checkpoints else None


class SQLiteTreeStore(TreeStore):
    def __init__(self, path: str) -> None:
        self.path = path
        with self._connection() as conn:
            for statement in _SQLITE_CREATE:
                conn.execute(statement)

    @contextmanager
    def _connection(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        conn = secure(sqlite3.connect(self.path, timeout=10, isolation_level=None))
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")  # the write lock first: the tree's end is read under it
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                yield conn
        finally:
            conn.close()

    @staticmethod
    def _nodes(conn: sqlite3.Connection, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        ids = [node_id(k) for k in keys]
        rows = conn.execute(_SQLITE_NODES + f"({','.join('?' * len(ids))})", ids)
        return {node_key(i): bytes(h) for i, h in rows}

    def end(self) -> tuple[int, int]:
        with self._connection(write=False) as conn:
            return _end(conn.execute(_SQLITE_END).fetchone())

    def nodes(self, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        with self._connection(write=False) as conn:
            return self._nodes(conn, keys)

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        if not positions:
            return {}
        wanted = set(positions)
        with self._connection(write=False) as conn:
            rows = conn.execute(_SQLITE_LEAF_INDEXES, (min(positions), max(positions)))
            return {p: i for p, i in rows if p in wanted}

    def leaf_range(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        with self._connection(write=False) as conn:
            return [(p, bytes(h)) for p, h in conn.execute(_SQLITE_LEAF_RANGE, (start, stop))]

    def append(self, entries: Sequence[tuple[int, bytes]]) -> int:
        with self._connection() as conn:
            size, last = _end(conn.execute(_SQLITE_END).fetchone())
            leaves, made = self._appended(size, last, self._nodes(conn, root_keys(size)), entries)
            conn.executemany(_SQLITE_INSERT_LEAF, leaves)
            conn.executemany(_SQLITE_INSERT_NODE, [(node_id(k), h) for k, h in made.items()])
            return len(leaves)

    def record_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self._connection() as conn:
            conn.execute(
                _SQLITE_INSERT_CHECKPOINT,
                (checkpoint.size, checkpoint.root, checkpoint.note, checkpoint.signed_at.isoformat()),
            )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._connection(write=False) as conn:
            row = conn.execute(_SQLITE_LATEST).fetchone()
        return None if row is None else StoredCheckpoint(row[0], bytes(row[1]), row[2], datetime.fromisoformat(row[3]))


class PostgresTreeStore(TreeStore):
    def __init__(self, conninfo: str, schema: str) -> None:
        self.schema = schema
        self.nodes_table, self.leaves_table, self.checkpoints_table = (
            SQL("{0}.{1}").format(Identifier(schema), Identifier(name)) for name in (NODES, LEAVES, CHECKPOINTS)
        )
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=2, open=True)
        with self.pool.connection() as conn:
            lock_for_this_transaction(conn, schema)  # other processes may be starting too
            conn.execute(
                SQL("CREATE TABLE IF NOT EXISTS {0} (id bigint PRIMARY KEY, hash bytea NOT NULL)").format(
                    self.nodes_table
                )
            )
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (leaf_index bigint PRIMARY KEY, position bigint NOT NULL UNIQUE)"
                ).format(self.leaves_table)
            )
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (tree_size bigint PRIMARY KEY, root bytea NOT NULL, "
                    "note text NOT NULL, signed_at timestamptz NOT NULL)"
                ).format(self.checkpoints_table)
            )

    def _end(self, conn: psycopg.Connection[Any]) -> tuple[int, int]:
        row = conn.execute(
            SQL("SELECT leaf_index, position FROM {0} ORDER BY leaf_index DESC LIMIT 1").format(self.leaves_table)
        ).fetchone()
        return _end(row)

    def _nodes(self, conn: psycopg.Connection[Any], keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        rows = conn.execute(
            SQL("SELECT id, hash FROM {0} WHERE id = ANY(%s)").format(self.nodes_table), ([node_id(k) for k in keys],)
        )
        return {node_key(i): bytes(h) for i, h in rows}

    def end(self) -> tuple[int, int]:
        with self.pool.connection() as conn:
            return self._end(conn)

    def nodes(self, keys: set[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        with self.pool.connection() as conn:
            return self._nodes(conn, keys)

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        if not positions:
            return {}
        with self.pool.connection() as conn:
            rows = conn.execute(
                SQL("SELECT position, leaf_index FROM {0} WHERE position = ANY(%s)").format(self.leaves_table),
                (list(positions),),
            )
            return dict(rows)

    def leaf_range(self, start: int, stop: int) -> list[tuple[int, bytes]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                SQL(
                    "SELECT l.position, n.hash FROM {0} l JOIN {1} n ON n.id = l.leaf_index "
                    "WHERE l.leaf_index >= %s AND l.leaf_index < %s ORDER BY l.leaf_index"
                ).format(self.leaves_table, self.nodes_table),
                (start, stop),
            )
            return [(p, bytes(h)) for p, h in rows]

    def append(self, entries: Sequence[tuple[int, bytes]]) -> int:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"gam: merkle tree in {self.schema}",))
            size, last = self._end(conn)
            frontier = self._nodes(conn, root_keys(size))
            leaves, made = self._appended(size, last, frontier, entries)
            with conn.cursor() as cur:
                if leaves:
                    cur.executemany(
                        SQL("INSERT INTO {0} (leaf_index, position) VALUES (%s, %s)").format(self.leaves_table), leaves
                    )
                    cur.executemany(
                        SQL("INSERT INTO {0} (id, hash) VALUES (%s, %s)").format(self.nodes_table),
                        [(node_id(k), h) for k, h in made.items()],
                    )
            return len(leaves)

    def record_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                SQL(
                    "INSERT INTO {0} (tree_size, root, note, signed_at) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (tree_size) DO NOTHING"
                ).format(self.checkpoints_table),
                (checkpoint.size, checkpoint.root, checkpoint.note, checkpoint.signed_at),
            )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                SQL("SELECT tree_size, root, note, signed_at FROM {0} ORDER BY tree_size DESC LIMIT 1").format(
                    self.checkpoints_table
                )
            ).fetchone()
        if row is None:
            return None
        return StoredCheckpoint(row[0], bytes(row[1]), row[2], row[3].astimezone(UTC))

    def close(self) -> None:
        self.pool.close()


def _end(row: Any) -> tuple[int, int]:
    return (0, 0) if row is None else (int(row[0]) + 1, int(row[1]))


def tree_store_for(settings: Settings) -> TreeStore:
    """The tree's storage beside the events, as the settings choose it."""
    if settings.store == "sqlite":
        return SQLiteTreeStore(str(settings.sqlite_path))
    if settings.store == "postgres":
        return PostgresTreeStore(settings.postgres_conninfo(), settings.postgres_schema or "public")
    return MemoryTreeStore()
