"""The personal-key store's contract: in memory, and in the key-store file beside the
SQLite database or the PostgreSQL one (never inside either).

What erasure relies on (``infra/personal_keys.py``): a subject's key is made once,
on first use, and the same key is handed out afterwards (also to racing first
users); personal data sealed under it opens again with it; a destroyed key is gone
for good: it is never handed out nor made again, sealed data no longer opens and
nothing new can be sealed for the subject. Other subjects are untouched.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from infra.personal_keys import (
    KEY_TABLE,
    FileKeys,
    KeyErased,
    MasterKey,
    MasterKeyMissing,
    MemoryKeys,
    PersonalKeys,
    keys_for,
    pending_path,
    rotate_master_key,
)
from infra.settings import Settings
from services.bootstrap import bootstrap
from tests.contract.stores import MemoryStore, PostgresStore, SQLiteStore

RACERS = 8
ERASED_AT = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def destroy(keys: PersonalKeys, subject: UUID) -> None:
    keys.destroy(subject, erased_by="dpo@vendor.example", erased_at=ERASED_AT, legal_basis="GDPR Art. 17")


class PersonalKeysContract:
    adapter: type[PersonalKeys]

    @pytest.fixture
    def opened(self) -> Iterator[list[PersonalKeys]]:
        stores: list[PersonalKeys] = []
        yield stores
        for store in stores:
            store.close()

    @pytest.fixture
    def keys(self, settings: Settings, opened: list[PersonalKeys]) -> PersonalKeys:
        """The key store beside the events, as the application builds it."""
        store = keys_for(settings)
        opened.append(store)
        return store

    def test_the_store_beside_the_events_is_this_adapter(self, keys: PersonalKeys) -> None:
        assert type(keys) is self.adapter

    def test_a_key_is_made_on_first_use_and_the_same_key_is_handed_out_after(self, keys: PersonalKeys) -> None:
        ada, bob = uuid4(), uuid4()
        assert keys.key(ada, create=False) is None  # reading never makes a key
        assert keys.key(ada, create=False) is None
        made = keys.key(ada, create=True)
        assert isinstance(made, bytes)
        assert len(made) == 32  # AES-256
        assert keys.key(ada, create=True) == made
        assert keys.key(ada, create=False) == made
        assert keys.key(bob, create=True) not in (None, made)

    def test_sealed_data_opens_with_the_subjects_key_only(self, keys: PersonalKeys) -> None:
        ada, bob = uuid4(), uuid4()
        plaintext = "Ada Lovelace, +44 20 7946 0958, ünïcödé".encode()
        sealed = keys.seal(ada, "name", plaintext)
        assert plaintext not in sealed.sealed.encode()
        assert keys.seal(ada, "name", plaintext) != sealed  # a fresh nonce each time
        assert keys.open(ada, "name", sealed) == plaintext
        keys.key(bob, create=True)
        with pytest.raises(InvalidTag):
            keys.open(bob, "name", sealed)  # another subject's key
        with pytest.raises(InvalidTag):
            keys.open(ada, "email", sealed)  # the field is bound in too

    def test_a_destroyed_key_is_gone_for_good(self, keys: PersonalKeys) -> None:
        ada = uuid4()
        sealed = keys.seal(ada, "name", b"Ada")
        destroy(keys, ada)
        assert keys.key(ada, create=False) is None
        assert keys.key(ada, create=True) is None  # never made again
        assert keys.open(ada, "name", sealed) is None
        with pytest.raises(KeyErased):
            keys.seal(ada, "name", b"Ada again")
        destroy(keys, ada)  # erasing twice is harmless
        assert keys.key(ada, create=True) is None

    def test_destroying_a_key_never_made_bars_personal_data_from_then_on(self, keys: PersonalKeys) -> None:
        ada = uuid4()
        destroy(keys, ada)
        assert keys.key(ada, create=True) is None
        with pytest.raises(KeyErased):
            keys.seal(ada, "name", b"Ada")

    def test_destroying_one_subjects_key_leaves_the_others(self, keys: PersonalKeys) -> None:
        ada, bob = uuid4(), uuid4()
        sealed = keys.seal(bob, "name", b"Bob")
        bobs_key = keys.key(bob, create=False)
        keys.key(ada, create=True)
        destroy(keys, ada)
        assert keys.key(bob, create=False) == bobs_key
        assert keys.open(bob, "name", sealed) == b"Bob"

    def test_racing_first_users_of_a_subject_get_one_key(self, keys: PersonalKeys) -> None:
        ada = uuid4()
        barrier = threading.Barrier(RACERS)
        handed_out: list[bytes | None] = []

        def first_use() -> None:
            barrier.wait()
            handed_out.append(keys.key(ada, create=True))

        threads = [threading.Thread(target=first_use) for _ in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(handed_out) == RACERS
        assert len(set(handed_out)) == 1
        assert handed_out[0] == keys.key(ada, create=False) is not None


class DurablePersonalKeysContract(PersonalKeysContract):
    """Keys in the key-store file are shared by every process and are not cached, so an
    erasure takes effect everywhere at once; they are wrapped under the master key and
    never kept in the events' database."""

    def test_another_process_gets_the_same_key_and_sees_its_erasure_at_once(
        self, settings: Settings, keys: PersonalKeys, opened: list[PersonalKeys]
    ) -> None:
        other = keys_for(settings)
        opened.append(other)
        ada = uuid4()
        sealed = keys.seal(ada, "name", b"Ada")
        assert other.key(ada, create=False) == keys.key(ada, create=False)
        assert other.open(ada, "name", sealed) == b"Ada"
        destroy(other, ada)
        assert keys.key(ada, create=True) is None
        assert keys.open(ada, "name", sealed) is None

    def test_the_events_database_holds_no_key_and_the_key_store_only_wrapped_ones(
        self, settings: Settings, keys: PersonalKeys
    ) -> None:
        ada = uuid4()
        key = keys.key(ada, create=True)
        assert key is not None
        assert key_tables_in_the_events_database(settings) == []
        key_store = settings.key_store_file()
        assert key_store is not None
        assert key not in raw_files(key_store)  # wrapped under the master key
        destroyed = keys.key(uuid4(), create=True)
        assert destroyed is not None
        assert destroyed in unwrapped_keys(settings, key_store).values()
        subject = next(s for s, k in unwrapped_keys(settings, key_store).items() if k == destroyed)
        destroy(keys, subject)
        assert destroyed not in unwrapped_keys(settings, key_store).values()

    def test_another_master_key_is_refused_at_once(self, settings: Settings, keys: PersonalKeys) -> None:
        keys.key(uuid4(), create=True)
        stranger = settings.model_copy(update={"master_key": SecretStr(MasterKey.generate().text())})
        with pytest.raises(MasterKeyMissing, match="master key"):
            keys_for(stranger)

    def test_rotating_the_master_key_keeps_every_key_and_retires_old_copies(
        self, settings: Settings, keys: PersonalKeys, opened: list[PersonalKeys], tmp_path: Path
    ) -> None:
        ada, bob = uuid4(), uuid4()
        sealed = keys.seal(ada, "name", b"Ada")
        destroy(keys, bob)
        key_store = settings.key_store_file()
        assert key_store is not None
        before = tmp_path / "key-store-backup"
        shutil.copyfile(key_store, before)
        rotation = rotate_master_key(settings)
        assert rotation.rewrapped == 1
        assert keys.open(ada, "name", sealed) == b"Ada"  # a running process follows the rotation
        after = keys_for(settings)
        opened.append(after)
        assert after.open(ada, "name", sealed) == b"Ada"
        assert after.key(bob, create=True) is None
        # The key-store backup from before holds Ada's key wrapped under the retired master key.
        with pytest.raises(MasterKeyMissing):
            FileKeys(before, lambda: [MasterKey.parse(settings.master_key_path(key_store).read_text())])

    def test_keys_kept_in_the_events_database_before_are_moved_out_at_start(self, settings: Settings) -> None:
        ada, bob = uuid4(), uuid4()
        adas_key = AESGCM.generate_key(bit_length=256)
        keys_kept_the_old_way(settings, [(ada, adas_key), (bob, None)])
        runtime = bootstrap(settings)
        try:
            assert runtime.personal_keys.key(ada, create=False) == adas_key
            assert runtime.personal_keys.key(bob, create=True) is None  # erased stays erased
            assert key_tables_in_the_events_database(settings) == []
        finally:
            runtime.close()

    def test_a_rotation_stopped_half_way_opens_everything_and_finishes_when_run_again(
        self, settings: Settings, keys: PersonalKeys, opened: list[PersonalKeys]
    ) -> None:
        ada = uuid4()
        sealed = keys.seal(ada, "name", b"Ada")
        key_store = settings.key_store_file()
        assert key_store is not None
        master_file = settings.master_key_path(key_store)
        old = MasterKey.parse(master_file.read_text())
        new = MasterKey.generate()
        pending_path(master_file).write_text(new.text())
        FileKeys(key_store, lambda: [new, old]).rewrap(old, new)  # then the process died
        halfway = keys_for(settings)
        opened.append(halfway)
        assert halfway.open(ada, "name", sealed) == b"Ada"
        assert rotate_master_key(settings).master_key_id == new.key_id
        assert not pending_path(master_file).exists()
        assert MasterKey.parse(master_file.read_text()).key_id == new.key_id
        assert keys.open(ada, "name", sealed) == b"Ada"


def keys_kept_the_old_way(settings: Settings, kept: list[tuple[UUID, bytes | None]]) -> None:
    """``gam_personal_keys`` in the events' database, as versions before the key store kept it."""
    ddl = (
        "CREATE TABLE gam_personal_keys (subject {0} PRIMARY KEY, key {1}, erased_at {2}, "
        "erased_by text, legal_basis text)"
    )
    erasure = (ERASED_AT.isoformat(), "dpo", "Art. 17")
    rows = [(str(s), k, *((None, None, None) if k else erasure)) for s, k in kept]
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            conn.execute(ddl.format("TEXT", "BLOB", "TEXT"))
            conn.executemany("INSERT INTO gam_personal_keys VALUES (?, ?, ?, ?, ?)", rows)
        return
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.postgres_schema}"')
        conn.execute(ddl.format("uuid", "bytea", "timestamptz"))
        conn.cursor().executemany("INSERT INTO gam_personal_keys VALUES (%s, %s, %s, %s, %s)", rows)


def raw_files(path: Path) -> bytes:
    """The key store's file and its write-ahead log, as a copy of the disk would hold them."""
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def unwrapped_keys(settings: Settings, key_store: Path) -> dict[UUID, bytes]:
    master = MasterKey.parse(settings.master_key_path(key_store).read_text())
    with sqlite3.connect(key_store) as conn:
        rows = conn.execute(f"SELECT subject, wrapped FROM {KEY_TABLE} WHERE wrapped IS NOT NULL").fetchall()
    return {UUID(s): master.unwrap(UUID(s), bytes(w)) for s, w in rows}


def key_tables_in_the_events_database(settings: Settings) -> list[str]:
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
            query = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            names = [r[0] for r in conn.execute(query, (settings.postgres_schema,))]
    return [name for name in names if "key" in name]


class TestMemoryKeys(MemoryStore, PersonalKeysContract):
    adapter = MemoryKeys


class TestFileKeysBesideSQLite(SQLiteStore, DurablePersonalKeysContract):
    adapter = FileKeys

    def test_the_key_store_and_its_master_key_sit_beside_the_database(
        self, settings: Settings, keys: PersonalKeys
    ) -> None:
        keys.key(uuid4(), create=True)
        database = settings.sqlite_path
        assert settings.key_store_file() == database.with_name("gam.db.keys")
        master = database.with_name("gam.db.keys.master-key")
        assert master.exists()
        assert master.stat().st_mode & 0o077 == 0  # the owner's only


class TestFileKeysBesidePostgres(PostgresStore, DurablePersonalKeysContract):
    adapter = FileKeys

    def test_postgres_without_a_key_store_is_refused(self, settings: Settings) -> None:
        with pytest.raises(ValueError, match="GAM_KEY_STORE_PATH"):
            keys_for(settings.model_copy(update={"key_store_path": None}))
