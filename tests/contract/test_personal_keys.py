"""The personal-key store's contract, on memory, SQLite and PostgreSQL.

What erasure relies on (``infra/personal_keys.py``): a subject's key is made once,
on first use, and the same key is handed out afterwards (also to racing first
users); personal data sealed under it opens again with it; a destroyed key is gone
for good: it is never handed out nor made again, sealed data no longer opens and
nothing new can be sealed for the subject. Other subjects are untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from cryptography.exceptions import InvalidTag

from infra.personal_keys import KeyErased, MemoryKeys, PersonalKeys, PostgresKeys, SQLiteKeys, keys_for
from infra.settings import Settings
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
    """Keys in the database are shared by every process and are not cached, so an
    erasure takes effect everywhere at once."""

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


class TestMemoryKeys(MemoryStore, PersonalKeysContract):
    adapter = MemoryKeys


class TestSQLiteKeys(SQLiteStore, DurablePersonalKeysContract):
    adapter = SQLiteKeys


class TestPostgresKeys(PostgresStore, DurablePersonalKeysContract):
    adapter = PostgresKeys
