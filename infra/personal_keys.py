"""One encryption key per person, so erasing a person is destroying a key.

Personal data (see ``domain.catalog.PERSONAL_DATA_FIELDS``) is stored sealed with
AES-256-GCM (``cryptography``) under its subject's key; the events themselves never
change, so the history and its hash chain stay intact.

The keys live **outside the events' database**, in a key store of their own, so a
database backup never holds a key and restoring one taken before an erasure cannot
bring the person back. The store here is a file (:class:`FileKeys`, an SQLite file,
by default ``<sqlite file>.keys`` beside the embedded database); each key in it is
wrapped under a master key (:class:`KeyWrapper`: :class:`MasterKey` from
``GAM_MASTER_KEY_FILE`` or ``GAM_MASTER_KEY``, or a KMS implementing the same two
calls), so a copy of the key-store file alone opens nothing. A deployment that wants
its keys in a KMS implements :class:`PersonalKeys` (or just :class:`KeyWrapper`).

Keys are not cached, so an erasure takes effect in every process at once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.sql import SQL, Identifier
from pydantic import SecretStr

from infra.settings import Settings
from infra.sqlite_hygiene import use_wal

NONCE_BYTES = 12
KEY_BYTES = 32
KEY_TABLE = "gam_personal_keys"
MASTER_TABLE = "gam_master_key"
log = logging.getLogger("gam.keys")


class KeyErased(LookupError):
    """The subject's key was destroyed: their personal data is gone for good."""


class MasterKeyMissing(LookupError):
    """A wrapped key names a master key this process does not hold."""


@dataclass(frozen=True)
class Sealed:
    """A personal-data value encrypted under its subject's key (nonce ‖ ciphertext, base64)."""

    sealed: str


class PersonalKeys(ABC):
    """The port erasure relies on: one key per subject, made once, destroyable for good."""

    @abstractmethod
    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        """The subject's key (made on first use if ``create``); None once erased or never made."""

    @abstractmethod
    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        """Forget the key for good, recording who, when and why."""

    def close(self) -> None:  # noqa: B027 - only stores holding connections close anything
        """Nothing to close unless the store holds connections."""

    def keys(self, subjects: Collection[UUID]) -> dict[UUID, bytes | None]:
        """Several subjects' keys, none made (a store may read them in one go)."""
        return {subject: self.key(subject, create=False) for subject in subjects}

    def seal(self, subject: UUID, field: str, plaintext: bytes) -> Sealed:
        key = self.key(subject, create=True)
        if key is None:
            msg = f"personal data of {subject} was erased; nothing new can be stored for them"
            raise KeyErased(msg)
        return Sealed(seal_with(key, f"{subject}/{field}", plaintext))

    def open(self, subject: UUID, field: str, sealed: Sealed) -> bytes | None:
        """The plaintext, or None if the subject's key was destroyed."""
        key = self.key(subject, create=False)
        if key is None:
            return None
        return open_with(key, f"{subject}/{field}", sealed.sealed)


KEY_ALGORITHM = "A256GCM"
"""How a sealed value is made (JOSE's name): AES-256-GCM, the 12-byte nonce first, the
16-byte tag last, the context (``<subject>/<field>``) as additional authenticated data."""


def key_id_of(subject: UUID | str) -> str:
    """The id of a subject's key. A person has one key for life (erasure destroys it,
    nothing replaces it), so the id follows from the subject: the relay names the key of
    every sealed field it publishes without reading the key store, and a consumer keys
    its cache by it. The ``v1`` leaves room for a store that ever re-keys a person."""
    return f"personal:{subject}:v1"


def seal_with(key: bytes, context: str, plaintext: bytes) -> str:
    """AES-256-GCM under ``key`` with a fresh nonce; ``context`` is bound in (AAD), so a
    sealed value moved to another subject or field no longer opens."""
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())).decode()


def open_with(key: bytes, context: str, sealed: str) -> bytes:
    raw = base64.b64decode(sealed)
    return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())


class MemoryKeys(PersonalKeys):
    def __init__(self) -> None:
        self._keys: dict[UUID, bytes | None] = {}
        self._lock = threading.Lock()

    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        with self._lock:
            if subject not in self._keys and create:
                self._keys[subject] = AESGCM.generate_key(bit_length=256)
            return self._keys.get(subject)

    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        with self._lock:
            self._keys[subject] = None


class LookedUpKeys(PersonalKeys):
    """Several subjects' keys read in one go, for one read that opens many of them (an
    as-of opens every stakeholder's snapshot: one read of the key store instead of one
    per person). Other subjects, and any change, go to the store itself. Kept only for
    that read, so an erasure is seen by the next one."""

    def __init__(self, store: PersonalKeys, subjects: Collection[UUID]) -> None:
        self._store = store
        self._found = store.keys(subjects) if subjects else {}

    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        found = self._found.get(subject)
        if found is not None or (subject in self._found and not create):
            return found
        return self._store.key(subject, create=create)

    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        self._found.pop(subject, None)
        self._store.destroy(subject, erased_by=erased_by, erased_at=erased_at, legal_basis=legal_basis)


class KeyWrapper(ABC):
    """Wraps personal keys for storage. A KMS implements these two calls with its own
    encrypt/decrypt (the subject as encryption context); :class:`MasterKey` does it
    locally."""

    @property
    @abstractmethod
    def key_id(self) -> str:
        """Names the master key a wrapped key was made under (stored beside it)."""

    @abstractmethod
    def wrap(self, subject: UUID, key: bytes) -> bytes: ...

    @abstractmethod
    def unwrap(self, subject: UUID, wrapped: bytes) -> bytes: ...


class MasterKey(KeyWrapper):
    """A local AES-256 master key; a wrapped key is bound to its subject (AAD)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            msg = f"a master key is {KEY_BYTES} bytes (base64 or hex in GAM_MASTER_KEY / the key file)"
            raise ValueError(msg)
        self._secret = secret
        self._id = hashlib.sha256(b"gam master key id\0" + secret).hexdigest()[:16]

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def parse(cls, text: str) -> MasterKey:
        """Base64 or hex text, as ``GAM_MASTER_KEY`` and the key file hold it."""
        text = text.strip()
        with contextlib.suppress(ValueError):
            return cls(bytes.fromhex(text))
        try:
            return cls(base64.b64decode(text, validate=True))
        except binascii.Error:
            msg = "the master key is neither hex nor base64"
            raise ValueError(msg) from None

    def text(self) -> str:
        return base64.b64encode(self._secret).decode()

    @property
    def key_id(self) -> str:
        return self._id

    def wrap(self, subject: UUID, key: bytes) -> bytes:
        return seal_with(self._secret, f"personal key/{subject}", key).encode()

    def unwrap(self, subject: UUID, wrapped: bytes) -> bytes:
        return open_with(self._secret, f"personal key/{subject}", wrapped.decode())


def write_master_key_file(path: Path, key: MasterKey) -> None:
    """Owner-only, written whole (a temporary file renamed over), so a crash leaves the
    old key or the new one, never half of one."""
    partial = _written_whole(path, key)
    os.replace(partial, path)


def create_master_key_file(path: Path, key: MasterKey) -> bool:
    """Like :func:`write_master_key_file`, but only if there is none yet: gam's processes
    start together on a fresh volume (``docker compose up``), and each would otherwise
    make a key of its own, wrapping its keys under one the others then replace.
    Whether this call's key was the one kept."""
    partial = _written_whole(path, key)
    try:
        os.link(partial, path)  # atomic, and refused if the file exists
    except FileExistsError:
        return False
    finally:
        partial.unlink()
    return True


def _written_whole(path: Path, key: MasterKey) -> Path:
    """The key in a temporary file of this call's own beside ``path``, synced to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.text() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return partial


def pending_path(path: Path) -> Path:
    """Where ``gam keys rotate-master`` puts the new master key until every key is re-wrapped."""
    return path.with_name(path.name + ".new")


class FileKeys(PersonalKeys):
    """Keys in an SQLite file of their own, each wrapped under the master key.

    ``secure_delete`` zeroes a destroyed key's bytes in the file, and the write-ahead
    log is truncated after each destruction, so the wrapped key does not linger on in
    either file. Several processes share the file, and a destruction is seen by all of
    them at once: every read is a transaction of its own (on a connection each thread
    keeps: opening one cost more than a view read's every other query), every write
    opens its own connection.

    The file names the master key new keys are wrapped under (``gam_master_key``); a
    process holding another one reloads its master keys (``load``) before it wraps, so
    a key made while ``gam keys rotate-master`` runs elsewhere is never wrapped under
    the key being retired.
    """

    def __init__(self, path: Path, load: Callable[[], list[KeyWrapper]]) -> None:
        self.path = path
        self._load = load
        self._reader = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        # The file first, and no folder made for it: a key store (or the SQLite store beside
        # it) named in a folder that is not there is a mistake to report, before a master
        # key is made anywhere.
        use_wal(path)
        self._use(load())
        with self._connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (subject TEXT PRIMARY KEY, wrapped BLOB, "
                "master_key_id TEXT, erased_at TEXT, erased_by TEXT, legal_basis TEXT)"
            )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MASTER_TABLE} (one INTEGER PRIMARY KEY CHECK (one = 1), key_id TEXT)"
            )
            conn.execute(f"INSERT OR IGNORE INTO {MASTER_TABLE} VALUES (1, ?)", (self.wrapper.key_id,))  # noqa: S608
            self._current_wrapper(conn)  # refuses a master key that is not the store's

    def _use(self, wrappers: list[KeyWrapper]) -> None:
        self.wrapper = wrappers[0]
        self._unwrappers = {w.key_id: w for w in wrappers}

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on this thread's connection: it sees every destruction
        committed before it began."""
        conn: sqlite3.Connection | None = getattr(self._reader, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            self._reader.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._reader = threading.local()

    @contextlib.contextmanager
    def _connect(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction; a writing one takes the write lock at once (two first users of a
        subject must not both make a key), a reading one none."""
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _current_wrapper(self, conn: sqlite3.Connection) -> KeyWrapper:
        (current,) = conn.execute(f"SELECT key_id FROM {MASTER_TABLE}").fetchone()  # noqa: S608
        if current not in self._unwrappers:
            self._use(self._load())
        if current not in self._unwrappers:
            msg = (
                f"the key store {self.path} wraps its keys under master key {current}; this process holds "
                f"{sorted(self._unwrappers)} (check GAM_MASTER_KEY_FILE / GAM_MASTER_KEY)"
            )
            raise MasterKeyMissing(msg)
        return self._unwrappers[current]

    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        with self._reading() as reader:  # a subject's key is made once and read every time after
            row = _key_row(reader, subject)
        if row is None and create:
            with self._connect() as conn:
                row = _key_row(conn, subject)
                if row is None:
                    wrapper = self._current_wrapper(conn)
                    row = (wrapper.wrap(subject, AESGCM.generate_key(bit_length=256)), wrapper.key_id)
                    conn.execute(
                        f"INSERT INTO {KEY_TABLE} (subject, wrapped, master_key_id) VALUES (?, ?, ?)",  # noqa: S608
                        (str(subject), *row),
                    )
        if row is None or row[0] is None:
            return None
        return self._unwrap(subject, bytes(row[0]), row[1])

    def keys(self, subjects: Collection[UUID]) -> dict[UUID, bytes | None]:
        """Several subjects' keys in one read (None: erased or never made)."""
        wanted = {str(s): s for s in subjects}
        found: dict[UUID, bytes | None] = dict.fromkeys(subjects)
        with self._reading() as conn:
            for start in range(0, len(wanted), 500):
                chunk = list(wanted)[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT subject, wrapped, master_key_id FROM {KEY_TABLE} WHERE subject IN ({marks})"  # noqa: S608
                for subject, wrapped, master_key_id in conn.execute(query, chunk).fetchall():
                    if wrapped is not None:
                        found[wanted[subject]] = self._unwrap(wanted[subject], bytes(wrapped), master_key_id)
        return found

    def _unwrap(self, subject: UUID, wrapped: bytes, master_key_id: str) -> bytes:
        if master_key_id not in self._unwrappers:
            self._use(self._load())  # rotated by another process since this one started
        wrapper = self._unwrappers.get(master_key_id)
        if wrapper is None:
            msg = (
                f"the key of {subject} is wrapped under master key {master_key_id}, which this process "
                f"does not hold (GAM_MASTER_KEY_FILE / GAM_MASTER_KEY); held: {sorted(self._unwrappers)}"
            )
            raise MasterKeyMissing(msg)
        return wrapper.unwrap(subject, wrapped)

    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO {KEY_TABLE} (subject, wrapped, master_key_id, erased_at, erased_by, legal_basis) "  # noqa: S608
                "VALUES (?, NULL, NULL, ?, ?, ?) ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, "
                "master_key_id = NULL, erased_at = excluded.erased_at, erased_by = excluded.erased_by, "
                "legal_basis = excluded.legal_basis",
                (str(subject), erased_at.isoformat(), erased_by, legal_basis),
            )
        self.checkpoint()

    def checkpoint(self) -> None:
        """Move the write-ahead log into the file and truncate it to nothing."""
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def rewrap(self, old: KeyWrapper, new: KeyWrapper) -> int:
        """Wrap every live key under ``new`` and make it the store's master key, in one
        transaction; the number of keys re-wrapped."""
        self._unwrappers |= {old.key_id: old, new.key_id: new}
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT subject, wrapped, master_key_id FROM {KEY_TABLE} WHERE wrapped IS NOT NULL"  # noqa: S608
            ).fetchall()
            for subject_text, wrapped, master_key_id in rows:
                subject = UUID(subject_text)
                key = self._unwrap(subject, bytes(wrapped), master_key_id)
                conn.execute(
                    f"UPDATE {KEY_TABLE} SET wrapped = ?, master_key_id = ? WHERE subject = ?",  # noqa: S608
                    (new.wrap(subject, key), new.key_id, subject_text),
                )
            conn.execute(f"UPDATE {MASTER_TABLE} SET key_id = ?", (new.key_id,))  # noqa: S608
        self._use([new])
        self.checkpoint()
        return len(rows)

    def adopt(self, subject: UUID, key: bytes | None, erasure: tuple[str, str, str] | None) -> bool:
        """Take over a key kept elsewhere before (or its erasure: erased at, by, legal
        basis); a subject this store knows already is left as it is. Whether it was taken."""
        with self._connect() as conn:
            wrapper = self._current_wrapper(conn)
            wrapped = wrapper.wrap(subject, key) if key is not None else None
            erased_at, erased_by, legal_basis = erasure or (None, None, None)
            taken = conn.execute(
                f"INSERT INTO {KEY_TABLE} (subject, wrapped, master_key_id, erased_at, erased_by, legal_basis) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject) DO NOTHING",
                (str(subject), wrapped, wrapper.key_id if key is not None else None, erased_at, erased_by, legal_basis),
            ).rowcount
        return bool(taken)

    def counts(self) -> dict[str, int]:
        """Live keys per master key id, and destroyed ones under ``erased``."""
        with self._connect(write=False) as conn:
            rows = conn.execute(
                f"SELECT coalesce(master_key_id, 'erased'), count(*) FROM {KEY_TABLE} GROUP BY 1"  # noqa: S608
            ).fetchall()
        return {str(name): int(n) for name, n in rows}


def _key_row(conn: sqlite3.Connection, subject: UUID) -> tuple[bytes | None, str] | None:
    """The subject's wrapped key (``None`` once erased) and its master key's id; ``None`` if never made."""
    row: tuple[bytes | None, str] | None = conn.execute(
        f"SELECT wrapped, master_key_id FROM {KEY_TABLE} WHERE subject = ?",  # noqa: S608
        (str(subject),),
    ).fetchone()
    return row


def master_keys(settings: Settings, key_store: Path) -> list[KeyWrapper]:
    """The master key (first) and, while a rotation is unfinished, the one it replaces.

    ``GAM_MASTER_KEY`` wins over ``GAM_MASTER_KEY_FILE``; with neither, the key file is
    ``<key store>.master-key``, made on first use (and logged, so the operator knows
    what to keep apart from the database backups)."""
    if settings.master_key is not None:
        return [MasterKey.parse(settings.master_key.get_secret_value())]
    path = settings.master_key_path(key_store)
    pending = pending_path(path)
    if not path.exists() and not pending.exists() and create_master_key_file(path, MasterKey.generate()):
        log.warning("made a master key for the personal-data keys at %s: keep it apart from backups", path.resolve())
    found: list[KeyWrapper] = []
    if pending.exists():  # a rotation stopped half-way: both keys open what they wrapped
        found.append(MasterKey.parse(pending.read_text()))
    if path.exists():
        found.append(MasterKey.parse(path.read_text()))
    return found


def keys_for(settings: Settings) -> PersonalKeys:
    """The key store the settings choose: memory for the memory store, else a file."""
    key_store = settings.key_store_file()
    if key_store is None:
        return MemoryKeys()
    return FileKeys(key_store, lambda: master_keys(settings, key_store))


def keys_for_env(env: Mapping[str, str]) -> PersonalKeys:
    """For an application built from a bare ``eventsourcing`` environment (tests do);
    :meth:`Settings.eventsourcing_env` puts the key store's settings into it, and
    processes build theirs through ``services.bootstrap`` with :func:`keys_for`."""
    module = env.get("PERSISTENCE_MODULE", "")
    if not module or module.endswith("popo"):
        return MemoryKeys()
    names = ("GAM_KEY_STORE_PATH", "GAM_MASTER_KEY_FILE", "GAM_MASTER_KEY")
    store_path, key_file, key_text = (env.get(name) for name in names)
    settings = Settings(
        store="sqlite" if module.endswith("sqlite") else "postgres",
        sqlite_path=Path(env.get("SQLITE_DBNAME", "gam.db")),
        key_store_path=Path(store_path) if store_path else None,
        master_key_file=Path(key_file) if key_file else None,
        master_key=SecretStr(key_text) if key_text else None,
    )
    return keys_for(settings)


@dataclass(frozen=True)
class Rotation:
    rewrapped: int
    master_key_id: str
    master_key_file: Path


def rotate_master_key(settings: Settings, new_key_file: Path | None = None) -> Rotation:
    """Re-wrap every personal key under a fresh master key, then retire the old one.

    With a key file, the new key waits beside it (``<file>.new``) until every key is
    re-wrapped in one transaction, then replaces it: a crash at any point leaves each
    wrapped key openable, and running the rotation again finishes it. With
    ``GAM_MASTER_KEY`` in the environment, the new key goes to ``new_key_file`` and the
    operator moves the processes to it."""
    key_store = settings.key_store_file()
    if key_store is None:
        msg = "the memory store keeps its keys in memory: there is no master key to rotate"
        raise ValueError(msg)
    if settings.master_key is not None:
        if new_key_file is None:
            msg = "GAM_MASTER_KEY is set: name the file for the new master key (--new-key-file)"
            raise ValueError(msg)
        old = MasterKey.parse(settings.master_key.get_secret_value())
        new = MasterKey.generate()
        write_master_key_file(new_key_file, new)
        keys = FileKeys(key_store, lambda: [old, new])
        rewrapped = keys.rewrap(old, new)
        return Rotation(rewrapped, new.key_id, new_key_file)
    path = settings.master_key_path(key_store)
    pending = pending_path(path)
    if not path.exists():
        msg = f"no master key at {path}"
        raise ValueError(msg)
    old = MasterKey.parse(path.read_text())
    if pending.exists():  # an earlier rotation stopped half-way: finish it with its key
        new = MasterKey.parse(pending.read_text())
    else:
        new = MasterKey.generate()
        write_master_key_file(pending, new)
    keys = FileKeys(key_store, lambda: master_keys(settings, key_store))
    rewrapped = keys.rewrap(old, new)
    os.replace(pending, path)
    return Rotation(rewrapped, new.key_id, path)


def move_keys_out_of_the_database(settings: Settings, keys: PersonalKeys) -> int:
    """Earlier versions kept the keys in ``gam_personal_keys`` in the events' database:
    move them into the key store and drop that table, so no later database backup holds
    a key. Run at every start (one query when there is nothing to move); the number moved."""
    if not isinstance(keys, FileKeys) or settings.store not in ("sqlite", "postgres"):
        return 0
    if settings.store == "sqlite":
        if not settings.sqlite_path.exists():
            return 0
        conn = sqlite3.connect(settings.sqlite_path, timeout=10)
        try:
            conn.execute("PRAGMA secure_delete=ON")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (KEY_TABLE,)).fetchone():
                return 0
            rows = conn.execute(f"SELECT subject, key, erased_at, erased_by, legal_basis FROM {KEY_TABLE}").fetchall()  # noqa: S608
            moved = _adopt_all(keys, [(UUID(r[0]), *r[1:]) for r in rows])
            conn.execute(f"DROP TABLE {KEY_TABLE}")
            conn.commit()
        finally:
            conn.close()
        conn = sqlite3.connect(settings.sqlite_path, timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return moved
    schema = settings.postgres_schema or "public"
    with psycopg.connect(settings.postgres_conninfo()) as pg:
        exists = pg.execute("SELECT to_regclass(%s)", (f'"{schema}".{KEY_TABLE}',)).fetchone()
        if not exists or exists[0] is None:
            return 0
        table = SQL("{0}.{1}").format(Identifier(schema), Identifier(KEY_TABLE))
        rows = pg.execute(
            SQL("SELECT subject, key, erased_at, erased_by, legal_basis FROM {0}").format(table)
        ).fetchall()
        moved = _adopt_all(keys, [(r[0], r[1], r[2].isoformat() if r[2] else None, r[3], r[4]) for r in rows])
        pg.execute(SQL("DROP TABLE {0}").format(table))
    return moved


def _adopt_all(keys: FileKeys, rows: list[tuple[UUID, object, str | None, str | None, str | None]]) -> int:
    moved = 0
    for subject, key, erased_at, erased_by, legal_basis in rows:
        erasure = (erased_at or "", erased_by or "", legal_basis or "") if key is None else None
        moved += keys.adopt(subject, bytes(key) if isinstance(key, bytes | memoryview) else None, erasure)
    if rows:
        log.warning("moved %d personal-data keys out of the events' database into %s", moved, keys.path)
    return moved
