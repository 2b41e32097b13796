"""Many clients change the same deal and the same plan at once, through the real
API (``gam serve``, uvicorn) on PostgreSQL: every acknowledged change is stored as
answered, every other one was refused with 412 or 409 and left nothing behind, the
versions have no gaps, and the final state is the acknowledged changes replayed
in version order (no lost update)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from services.app import GamApplication
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import (
    ADMIN,
    Account,
    ApiServer,
    Client,
    Ledger,
    Load,
    check_final_state,
    check_store,
    gam_env,
    record_figures,
    small_account,
    stored_events,
)

pytestmark = pytest.mark.postgres

CLIENTS = 8
COMMANDS_PER_CLIENT = 25


@dataclass
class Stack:
    settings: Settings
    app: GamApplication
    api: ApiServer


@pytest.fixture(scope="module")
def stack(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One store and one API server for the module; each test works on an account of its own."""
    settings = fresh_settings(postgres_dsn)
    app = GamApplication(settings.eventsourcing_env())
    api = ApiServer(gam_env(settings), tmp_path_factory.mktemp("races"))
    api.start()
    yield Stack(settings, app, api)
    api.stop()
    app.close()
    drop_schema(settings)


@pytest.fixture
def account(stack: Stack) -> Account:
    return small_account(stack.app)


def test_clients_racing_on_one_deal_and_one_plan_lose_nothing_and_store_nothing_refused(
    stack: Stack, account: Account
) -> None:
    app, targets = stack.app, account.targets()
    deal = account.deals[0]
    racing = [t for t in targets["deals"] if t.entity_id == deal] + targets["plan"]
    before = {t.entity_id: app.stored_version(t.entity_id) or 0 for t in racing}
    baseline = app.recorder.max_notification_id() or 0
    ledger = Ledger()
    load = Load([Client(stack.api.base_url, ledger, racing, seed=n) for n in range(CLIENTS)])
    load.start(max_commands=COMMANDS_PER_CLIENT)
    load.join(timeout=180)

    assert ledger.sent == CLIENTS * COMMANDS_PER_CLIENT, ledger.summary()
    assert not ledger.server_errors, ledger.server_errors[:3]
    assert not ledger.unexpected, ledger.unexpected[:3]
    assert (ledger.in_doubt, ledger.abandoned, ledger.client_timeouts) == ([], [], 0)
    assert {a.status for a in ledger.refused} <= {409, 412}
    assert ledger.refused, "the clients never collided: the test proves nothing"
    assert all(a.body["current_version"] > a.command.if_match for a in ledger.refused if a.status == 412)

    verdict = check_store(app, ledger, baseline)
    assert not verdict.problems(), verdict.problems()
    assert verdict.acknowledged == len(ledger.acknowledged) > 0
    # Every version after the start is one acknowledged change, each made on the one before it.
    for entity_id, base in before.items():
        acknowledged = sorted(a.body["version"] for a in ledger.acknowledged if a.command.entity_id == entity_id)
        assert acknowledged == list(range(base + 1, (app.stored_version(entity_id) or 0) + 1))
    assert not check_final_state(app, ledger)
    record_figures({"test": "races (one deal, one plan)", "clients": CLIENTS, **ledger.summary()})


def _post_all_at_once(base_url: str, count: int, path: str, body: dict[str, Any], headers: dict[str, str]) -> list:
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=base_url, headers=ADMIN, timeout=30) as http:
            barrier.wait()
            answer = http.post(path, json=body, headers=headers)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=post) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_one_of_many_racing_creates_of_the_same_deal_wins_and_the_rest_are_409(stack: Stack, account: Account) -> None:
    deal_id = uuid.uuid4()
    body = {
        "deal_id": str(deal_id), "account_id": str(account.account_id), "unit_id": str(account.hq),
        "title": "Raced deal", "amount": {"amount": "1000.00", "currency": "EUR"}, "expected_close": "2099-06-30",
        "owner": "race@vendor.example",
    }  # fmt: skip
    answers = _post_all_at_once(stack.api.base_url, CLIENTS, "/deals", body, {})
    assert Counter(a.status_code for a in answers) == {201: 1, 409: CLIENTS - 1}
    assert [e.version for e in stored_events(stack.app) if e.entity_id == deal_id] == [1]


def test_racing_retries_with_one_idempotency_key_store_one_change_and_agree_on_it(
    stack: Stack, account: Account
) -> None:
    deal = account.deals[0]
    correlation = uuid.uuid4()
    headers = {"Idempotency-Key": "race-" + correlation.hex, "X-Correlation-ID": str(correlation),
               "If-Match": f'"{stack.app.stored_version(deal)}"'}  # fmt: skip
    answers = _post_all_at_once(stack.api.base_url, CLIENTS, f"/deals/{deal}/probability", {"probability": 42}, headers)
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 409}, statuses  # 409: the first is still in progress
    accepted = {(a.json()["version"], a.json()["position"]) for a in answers if a.status_code == 200}
    assert len(accepted) == 1  # the first answer and its replays agree
    assert sum(a.headers.get("idempotent-replayed") != "true" for a in answers if a.status_code == 200) == 1
    stored = [e for e in stored_events(stack.app) if e.correlation_id == correlation]
    assert [(e.version, e.position) for e in stored] == list(accepted)
