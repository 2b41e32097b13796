"""Optimistic concurrency and idempotent retries, through real HTTP on SQLite and
PostgreSQL.

The server is uvicorn in a thread on a port of its own; racing clients are
threads, each with its own connection, released together by a barrier, so the
requests really overlap in the server's thread pool and in the store. The
idempotency stores themselves are driven directly by their contract suite
(tests/contract/test_idempotency.py).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
import uvicorn

from domain.deal import Deal
from domain.values import Money
from infra.idempotency import IdempotencyStore
from infra.settings import Settings
from services import handlers as h
from services.api.app import create_app
from services.app import GamApplication
from tests.api_support import ADMIN, SECRET, token
from tests.support import meta

WRITERS = 8
ROUNDS = 3
Headers = dict[str, str]


@dataclass
class Served:
    """A running server and its application (the same store, read directly)."""

    url: str
    app: GamApplication
    idempotency: IdempotencyStore

    def client(self) -> httpx.Client:
        # Plain HTTP on the loopback: skip loading a certificate store (~0.2 s per client).
        return httpx.Client(base_url=self.url, timeout=30, verify=False)

    def open_deal(self) -> UUID:
        account_id, hq, deal_id = uuid4(), uuid4(), uuid4()
        h.create_account(
            self.app, meta(), account_id=account_id, hq_unit_id=hq, name="Racing Co", industry="Logistics",
            hq_country="SE", reporting_currency="EUR", tier="tier_1", governance_model="coordinated",
        )  # fmt: skip
        h.open_deal(
            self.app, meta(), deal_id=deal_id, account_id=account_id, unit_id=hq, title="Fleet telematics",
            amount=Money(Decimal(250_000), "EUR"), expected_close=date(2027, 6, 30), owner="gam@vendor.example",
        )  # fmt: skip
        return deal_id

    def versions(self, entity_id: UUID) -> list[int]:
        return [event.originator_version for event in self.app.recorder.select_events(entity_id)]

    def version(self, entity_id: UUID) -> int:
        return self.versions(entity_id)[-1]


@pytest.fixture
def served(durable_settings: Settings) -> Iterator[Served]:
    settings = durable_settings.model_copy(update={"jwt_secret": SECRET})
    api = create_app(settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", api.state.runtime.app, api.state.runtime.idempotency)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def race(served: Served, requests: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Send the requests at once, one thread and one connection each; answers in order."""
    clients = [served.client() for _ in requests]
    for client in clients:
        client.get("/healthz").raise_for_status()  # connect now, so the race is about requests only
    barrier = threading.Barrier(len(requests))
    answers: list[httpx.Response | None] = [None] * len(requests)

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = requests[index](clients[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    assert all(answer is not None for answer in answers), "a racing request never finished"
    return [answer for answer in answers if answer is not None]


def probability(
    deal_id: UUID, value: int, version: int, who: Headers = ADMIN, key: str | None = None
) -> Callable[[httpx.Client], httpx.Response]:
    """The request that sets the deal's probability, made against ``version``."""
    headers = {**who, "If-Match": f'"{version}"'}
    if key is not None:
        headers["Idempotency-Key"] = key

    def send(client: httpx.Client) -> httpx.Response:
        return client.post(f"/deals/{deal_id}/probability", json={"probability": value}, headers=headers)

    return send


def test_two_clients_one_version_the_second_is_told_where_the_deal_is(served: Served) -> None:
    deal = served.open_deal()
    with served.client() as first, served.client() as second:
        seen = first.get(f"/deals/{deal}", headers=ADMIN).headers["etag"]
        assert second.get(f"/deals/{deal}", headers=ADMIN).headers["etag"] == seen == '"1"'
        won = probability(deal, 30, 1)(first)
        assert (won.status_code, won.headers["etag"], won.json()["version"]) == (200, '"2"', 2)
        lost = probability(deal, 70, 1)(second)
        assert lost.status_code == 412
        assert lost.headers["content-type"] == "application/problem+json"
        assert (lost.json()["current_version"], lost.json()["rule"], lost.headers["etag"]) == (
            2, "concurrency_conflict", '"2"'
        )  # fmt: skip
        assert served.versions(deal) == [1, 2]
        assert served.app.load(Deal, deal).probability == 30
        url = f"/deals/{deal}/probability"
        assert second.post(url, json={"probability": 70}, headers=ADMIN).status_code == 428
        assert second.post(url, json={"probability": 70}, headers={**ADMIN, "If-Match": "2"}).status_code == 400
        assert served.versions(deal) == [1, 2]
        retried = probability(deal, 70, lost.json()["current_version"])(second)
        assert (retried.status_code, retried.json()["version"]) == (200, 3)
        assert probability(deal, 70, 2)(second).status_code == 412  # still stale, still refused
    assert served.versions(deal) == [1, 2, 3]
    assert served.app.load(Deal, deal).probability == 70


def test_writers_racing_on_one_version_exactly_one_wins(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round, WRITERS clients change the same deal against the same version at
    once: one 200, the rest 412 naming the winner's version; nothing lost, no gap.

    From the second round on, every writer waits inside the command before it
    stores, so all have loaded the same version and the store itself (its unique
    entity and version) must turn the losers away, not the check on loading."""
    deal = served.open_deal()
    at_commit = Counter[int]()
    conflict, save = served.app._conflict, served.app.save

    def counted(*args: Any) -> Exception:
        at_commit[round_] += 1
        return conflict(*args)

    def held(*args: Any, **kwargs: Any) -> Any:
        if round_ > 0:
            time.sleep(0.2)
        return save(*args, **kwargs)

    monkeypatch.setattr(served.app, "_conflict", counted)
    monkeypatch.setattr(served.app, "save", held)
    for round_ in range(ROUNDS):
        version = served.version(deal)
        values = [10 + round_ * WRITERS + i for i in range(WRITERS)]
        answers = race(served, [probability(deal, value, version) for value in values])
        statuses = [answer.status_code for answer in answers]
        assert sorted(statuses) == [200] + [412] * (WRITERS - 1), [a.text for a in answers]
        winner = statuses.index(200)
        assert answers[winner].json()["version"] == version + 1
        for loser in answers[:winner] + answers[winner + 1 :]:
            assert loser.json()["current_version"] == version + 1
            assert loser.headers["etag"] == f'"{version + 1}"'
        assert served.versions(deal) == list(range(1, version + 2))
        with served.client() as reader:
            stored = reader.get(f"/deals/{deal}", headers=ADMIN)
        assert stored.headers["etag"] == f'"{version + 1}"'
        assert stored.json()["state"]["probability"] == values[winner]  # the winner's change, no other
    assert sum(at_commit[r] for r in range(1, ROUNDS)) > 0, "the writers never overlapped in the store"
    print(
        f"{WRITERS} writers, one version, {ROUNDS} rounds: losers turned away by the store per round {dict(at_commit)}"
    )


def test_a_retry_with_the_same_key_replays_the_first_answer(served: Served) -> None:
    deal = served.open_deal()
    key = f"retry-{uuid4()}"
    url = f"/deals/{deal}/probability"
    headers = {**ADMIN, "If-Match": '"1"', "Idempotency-Key": key}
    with served.client() as client:
        first = client.post(url, json={"probability": 33, "reason": "Pilot agreed"}, headers=headers)
        assert first.status_code == 200
        assert "idempotent-replayed" not in first.headers
        same = b'{ "reason": "Pilot agreed",  "probability": 33 }'  # the same request, written differently
        again = client.post(url, content=same, headers={**headers, "Content-Type": "application/json"})
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        for name in ("etag", "x-correlation-id"):
            assert again.headers[name] == first.headers[name]
        assert served.versions(deal) == [1, 2]

        other_body = client.post(url, json={"probability": 34, "reason": "Pilot agreed"}, headers=headers)
        other_version = client.post(url, json={"probability": 33, "reason": "Pilot agreed"},
                                    headers={**headers, "If-Match": '"2"'})  # fmt: skip
        for reused in (other_body, other_version):
            assert reused.status_code == 422
            assert "different request" in reused.json()["detail"]
        assert served.versions(deal) == [1, 2]
        assert client.post(url, content=same, headers={**headers, "Content-Type": "application/json"}).content == (
            first.content
        )  # the answer is still there after the refusals

        # Another caller's key of the same name is theirs: their request runs (and is stale).
        colleague = {**token("gam@vendor.example", "admin"), "If-Match": '"1"', "Idempotency-Key": key}
        theirs = client.post(url, json={"probability": 33, "reason": "Pilot agreed"}, headers=colleague)
        assert theirs.status_code == 412
        assert "idempotent-replayed" not in theirs.headers
        mine_again = client.post(url, content=same, headers={**headers, "Content-Type": "application/json"})
        assert mine_again.headers["idempotent-replayed"] == "true"
        fresh = client.post(url, json={"probability": 33}, headers={**colleague, "If-Match": '"2"'})
        assert (fresh.status_code, fresh.json()["version"]) == (200, 3)
        assert "idempotent-replayed" not in fresh.headers
    assert served.versions(deal) == [1, 2, 3]
    actors = [event.actor for event in served.app.events.get(deal)]  # type: ignore[attr-defined]
    assert actors[1:] == ["root@vendor.example", "gam@vendor.example"]


def test_a_refused_request_forgets_its_key(served: Served) -> None:
    """A refusal stored nothing, so it is not remembered: the same request with the
    same key is decided again (the same refusal while nothing changed), and once the
    cause is fixed the same key goes through, and is remembered from then on."""
    deal = served.open_deal()
    key = f"reopen-{uuid4()}"
    reopen = f"/deals/{deal}/reopen"
    headers = {**ADMIN, "If-Match": '"1"', "Idempotency-Key": key}
    with served.client() as client:
        refusals = [client.post(reopen, json={}, headers=headers) for _ in range(2)]
        for refused in refusals:
            assert refused.status_code == 409
            assert refused.json()["rule"] == "deal_not_closed"
            assert "idempotent-replayed" not in refused.headers
        assert refusals[0].json() == refusals[1].json()
        assert served.versions(deal) == [1]

        invalid = client.post(f"/deals/{deal}/lose", json={"loss_reason": ""}, headers=headers)
        assert invalid.status_code == 422  # refused before the key was taken
        lost = client.post(f"/deals/{deal}/lose", json={"loss_reason": "Budget frozen"},
                           headers={**ADMIN, "If-Match": '"1"'})  # fmt: skip
        assert lost.status_code == 200
        stale = client.post(reopen, json={}, headers=headers)
        assert stale.status_code == 412  # also a refusal: also forgotten
        fixed = client.post(reopen, json={}, headers={**headers, "If-Match": '"2"'})
        assert (fixed.status_code, fixed.json()["version"]) == (200, 3)
        replayed = client.post(reopen, json={}, headers={**headers, "If-Match": '"2"'})
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.content == fixed.content
        assert client.post(reopen, json={}, headers=headers).status_code == 422  # now the key is taken
    assert served.versions(deal) == [1, 2, 3]


def test_identical_requests_racing_with_one_key_store_one_effect(served: Served) -> None:
    """WRITERS copies of one request with one key, at once: exactly one is decided;
    the others replay its answer or are told it is still in progress (409)."""
    deal = served.open_deal()
    seen: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        version = served.version(deal)
        key = f"race-{round_}-{uuid4()}"
        answers = race(served, [probability(deal, 50 + round_, version, key=key)] * WRITERS)
        decided = [a for a in answers if a.status_code == 200 and "idempotent-replayed" not in a.headers]
        assert len(decided) == 1, [(a.status_code, dict(a.headers)) for a in answers]
        for answer in answers:
            if answer.status_code == 200:
                assert answer.content == decided[0].content
                assert answer.headers["etag"] == f'"{version + 1}"'
                seen["decided" if answer is decided[0] else "replayed"] += 1
            else:
                assert answer.status_code == 409, answer.text
                assert "in progress" in answer.json()["detail"]
                seen["in progress"] += 1
        assert served.versions(deal) == list(range(1, version + 2))
    assert seen["decided"] == ROUNDS
    assert seen["replayed"] + seen["in progress"] == ROUNDS * (WRITERS - 1)
    print(f"one key, {WRITERS} at once, {ROUNDS} rounds: {dict(seen)}")


def test_an_answer_that_cannot_be_remembered_is_still_given(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events are stored before the answer is remembered. When remembering fails,
    the caller still learns what was stored (not a 503 telling them nothing was), and
    a retry within the lease is told the key is in progress rather than run again."""
    deal = served.open_deal()

    def unavailable(*_: object) -> None:
        raise psycopg.OperationalError("the connection was lost")

    monkeypatch.setattr(served.idempotency, "complete", unavailable)
    with served.client() as client:
        answer = probability(deal, 60, 1, key="flaky-store")(client)
        assert (answer.status_code, answer.json()["version"]) == (200, 2), answer.text
        retry = probability(deal, 60, 1, key="flaky-store")(client)
        assert retry.status_code == 409, retry.text
    assert served.versions(deal) == [1, 2]
