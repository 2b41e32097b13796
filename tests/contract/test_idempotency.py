"""The idempotency store's contract, on memory, SQLite and PostgreSQL.

What the API relies on (``infra/idempotency.py``): a key is reserved by one request
at a time, per caller; the answer it completes with is replayed to retries of the
same request and the key is refused for any other; a refused request releases the
key; a reservation whose holder died is taken over after ``LEASE``, and only the
current holder may complete or release it; answers are forgotten after ``RETENTION``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

import infra.idempotency as idempotency
from infra.idempotency import (
    IdempotencyStore,
    InProgress,
    KeyReused,
    MemoryIdempotency,
    PostgresIdempotency,
    Replay,
    Reserved,
    SQLiteIdempotency,
    StoredResponse,
    idempotency_for,
)
from infra.settings import Settings
from tests.contract.stores import MemoryStore, PostgresStore, SQLiteStore

WRITERS = 8
ANSWER = StoredResponse(200, b'{"entity_id": "e", "version": 2}', {"etag": '"2"', "x-correlation-id": "c"})


def reserved(outcome: object) -> Reserved:
    assert isinstance(outcome, Reserved), outcome
    return outcome


class IdempotencyContract:
    adapter: type[IdempotencyStore]

    @pytest.fixture
    def opened(self, settings: Settings) -> Iterator[list[IdempotencyStore]]:
        stores: list[IdempotencyStore] = []
        yield stores
        for store in stores:
            store.close()

    @pytest.fixture
    def remembered(self, settings: Settings, opened: list[IdempotencyStore]) -> IdempotencyStore:
        """The idempotency store beside the events, as the API builds it."""
        store = idempotency_for(settings)
        opened.append(store)
        return store

    def test_the_store_beside_the_events_is_this_adapter(self, remembered: IdempotencyStore) -> None:
        assert type(remembered) is self.adapter

    def test_a_key_is_reserved_completed_replayed_and_never_reused(self, remembered: IdempotencyStore) -> None:
        alice = reserved(remembered.reserve("alice", "k1", "request-1"))
        assert remembered.reserve("alice", "k1", "request-1") == InProgress()
        assert remembered.reserve("alice", "k1", "request-2") == KeyReused()
        bob = reserved(remembered.reserve("bob", "k1", "request-1"))  # another caller's key of the same name
        assert bob.token != alice.token
        assert remembered.complete("alice", "k1", alice.token, ANSWER)
        assert remembered.reserve("alice", "k1", "request-1") == Replay(ANSWER)
        assert remembered.reserve("alice", "k1", "request-2") == KeyReused()
        assert remembered.reserve("bob", "k1", "request-1") == InProgress()
        remembered.release("alice", "k1", alice.token)  # too late: an answer is kept once given
        assert remembered.reserve("alice", "k1", "request-1") == Replay(ANSWER)
        assert not remembered.complete("alice", "k1", alice.token, ANSWER)  # answered once only

    def test_an_answer_is_replayed_byte_for_byte(self, remembered: IdempotencyStore) -> None:
        answer = StoredResponse(201, bytes(range(256)), {"location": "/deals/ü", "etag": '"1"'})
        holder = reserved(remembered.reserve("alice", "k-bytes", "request-1"))
        assert remembered.complete("alice", "k-bytes", holder.token, answer)
        replayed = remembered.reserve("alice", "k-bytes", "request-1")
        assert replayed == Replay(answer)
        assert isinstance(replayed, Replay)
        assert type(replayed.response.body) is bytes

    def test_only_the_holder_of_a_reservation_can_answer_or_release_it(self, remembered: IdempotencyStore) -> None:
        holder = reserved(remembered.reserve("alice", "k-held", "request-1"))
        assert not remembered.complete("alice", "k-held", "someone-else", ANSWER)
        assert not remembered.complete("bob", "k-held", holder.token, ANSWER)  # the token is for alice's key
        assert not remembered.complete("alice", "never-reserved", holder.token, ANSWER)
        remembered.release("alice", "k-held", "someone-else")
        remembered.release("bob", "k-held", holder.token)
        assert remembered.reserve("alice", "k-held", "request-1") == InProgress()
        assert remembered.complete("alice", "k-held", holder.token, ANSWER)

    def test_a_released_key_is_free_again(self, remembered: IdempotencyStore) -> None:
        refused = reserved(remembered.reserve("alice", "k2", "refused-request"))
        remembered.release("alice", "k2", refused.token)
        reserved(remembered.reserve("alice", "k2", "corrected-request"))
        remembered.release("alice", "never-reserved", "no-token")  # harmless

    def test_an_abandoned_reservation_is_taken_over_after_its_lease(
        self, remembered: IdempotencyStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A process that died holding a key blocks retries for LEASE only; an answer
        given is kept for RETENTION. The request whose lease was taken over can no
        longer answer or release the key: it belongs to its successor."""
        monkeypatch.setattr(idempotency, "LEASE", timedelta(milliseconds=300))
        slow = reserved(remembered.reserve("alice", "k3", "request-1"))
        assert remembered.reserve("alice", "k3", "request-1") == InProgress()
        answered = reserved(remembered.reserve("alice", "k4", "request-1"))
        assert remembered.complete("alice", "k4", answered.token, ANSWER)
        time.sleep(0.5)
        successor = reserved(remembered.reserve("alice", "k3", "request-2"))  # taken over, whatever it was for
        assert remembered.reserve("alice", "k3", "request-2") == InProgress()
        remembered.release("alice", "k3", slow.token)  # the late request cannot free its successor's key
        assert not remembered.complete("alice", "k3", slow.token, ANSWER)  # nor answer for it
        assert remembered.reserve("alice", "k3", "request-2") == InProgress()
        assert remembered.complete("alice", "k3", successor.token, ANSWER)
        assert remembered.reserve("alice", "k3", "request-2") == Replay(ANSWER)
        assert remembered.reserve("alice", "k4", "request-1") == Replay(ANSWER)  # answered: no lease to expire
        monkeypatch.setattr(idempotency, "RETENTION", timedelta(milliseconds=300))
        reserved(remembered.reserve("alice", "k4", "request-2"))  # forgotten after the retention

    def test_racing_reservations_of_one_key_let_one_through(self, remembered: IdempotencyStore) -> None:
        barrier = threading.Barrier(WRITERS)
        outcomes: list[object] = []

        def reserve() -> None:
            barrier.wait()
            outcomes.append(remembered.reserve("alice", "k5", "request-1"))

        threads = [threading.Thread(target=reserve) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sum(isinstance(o, Reserved) for o in outcomes) == 1
        assert sum(o == InProgress() for o in outcomes) == WRITERS - 1


class DurableIdempotencyContract(IdempotencyContract):
    """A store in the database is shared by every process of the API."""

    def test_another_process_sees_reservations_and_answers(
        self, settings: Settings, remembered: IdempotencyStore, opened: list[IdempotencyStore]
    ) -> None:
        """Retries reach whichever API process the load balancer picks."""
        other = idempotency_for(settings)
        opened.append(other)
        holder = reserved(remembered.reserve("alice", "k6", "request-1"))
        assert other.reserve("alice", "k6", "request-1") == InProgress()
        assert other.reserve("alice", "k6", "request-2") == KeyReused()
        assert remembered.complete("alice", "k6", holder.token, ANSWER)
        assert other.reserve("alice", "k6", "request-1") == Replay(ANSWER)


class TestMemoryIdempotency(MemoryStore, IdempotencyContract):
    adapter = MemoryIdempotency


class TestSQLiteIdempotency(SQLiteStore, DurableIdempotencyContract):
    adapter = SQLiteIdempotency


class TestPostgresIdempotency(PostgresStore, DurableIdempotencyContract):
    adapter = PostgresIdempotency
