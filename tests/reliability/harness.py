"""What the reliability tests and the soak share: gam's processes as an operator
runs them (``gam serve``, ``gam project``, ``gam relay``, each its own OS process
that can be killed with SIGKILL), a load generator of HTTP clients that keeps a
ledger of every answer, and the checks that hold after any fault:

* every command that got a 2xx is in the store, at the version and log position
  its answer gave, with the payload it asked for;
* no command that got a clean refusal (412, 409) is in the store;
* each entity's versions run without gaps, and each acknowledged change was made
  on the version its If-Match named (no lost update);
* the views equal a rebuild from the log; downstream, every event is on the topic.

Every request carries its own id as ``X-Correlation-ID`` (stored with its events),
so a stored event is traced back to the exact request that caused it. A request
whose answer never arrived (the server died, the connection broke) is *in doubt*:
it may be stored or not, and it is counted apart.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx

from domain.deal import Deal
from domain.metadata import EventMetadata
from domain.plan import plan_id_for
from domain.stakeholder import Stakeholder
from domain.values import Money, PersonalData
from domain.values import Target as Target_
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from services.demo import demo_id, seed_account
from services.projector import Projector
from tests.api_support import SECRET, token
from tests.kafka_broker import free_port
from tests.views import dump_views

ROOT = Path(__file__).resolve().parents[2]
ADMIN = token("reliability@vendor.example", "admin", expires_in=6 * 3600)


# --------------------------------------------------------------------------- processes


def gam_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The ``GAM_*`` environment an operator would give gam's processes for ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAM_")}
    env.update(
        PYTHONPATH=str(ROOT),
        GAM_STORE=settings.store,
        GAM_POSTGRES_DSN=settings.postgres_dsn or "",
        GAM_POSTGRES_SCHEMA=settings.postgres_schema or "",
        GAM_POSTGRES_POOL_SIZE=str(settings.postgres_pool_size),
        GAM_KEY_STORE_PATH=str(settings.key_store_file()),
        GAM_JWT_SECRET=SECRET,
        GAM_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        GAM_KAFKA_TOPIC=settings.kafka_topic,
        GAM_KAFKA_IDEMPOTENCE="true" if settings.kafka_idempotence else "false",
    )
    env.update(extra)
    return env


@dataclass
class GamProcess:
    """One ``gam`` command as its own OS process; its output goes to a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n--- start #{self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.alive(), f"{self.name} died before the kill:\n{self.tail()}"
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=30)
        assert self.process.returncode == -signal.SIGKILL
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def rss_kib(self) -> int | None:
        return rss_kib(self.pid) if self.alive() else None


class ApiServer(GamProcess):
    """``gam serve`` on a port of its own; it keeps the port across restarts."""

    def __init__(self, env: dict[str, str], workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__("api", ["serve", "--host", "127.0.0.1", "--port", str(self.port)], env, workdir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        super().start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until ``/healthz`` answers."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            assert self.alive(), f"the API exited:\n{self.tail()}"
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        msg = f"the API did not answer within {timeout} s:\n{self.tail()}"
        raise TimeoutError(msg)


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process in KiB (psutil when installed, else /proc)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss // 1024)
    except ImportError:
        pass
    except Exception:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- the load


@dataclass(frozen=True)
class Command:
    """One logical request: retried attempts of it share its id (the correlation id)
    and its Idempotency-Key."""

    id: UUID
    kind: str
    entity_id: UUID
    path: str
    body: dict[str, Any]
    if_match: int | None  # None: a create


@dataclass(frozen=True)
class Answer:
    command: Command
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class Ledger:
    """Every command sent and how it ended, safe to fill from many threads."""

    acknowledged: list[Answer] = field(default_factory=list)
    refused: list[Answer] = field(default_factory=list)  # 412, 409: nothing may be stored
    in_doubt: list[Command] = field(default_factory=list)  # no answer: stored or not
    abandoned: list[Command] = field(default_factory=list)  # never reached a server (or only 503s)
    unavailable: int = 0  # 503 answers (each retried)
    unavailable_without_retry_after: int = 0
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503: never allowed
    unexpected: list[str] = field(default_factory=list)  # any other status
    client_timeouts: int = 0  # no answer within the client's timeout: a hang
    connection_errors: int = 0
    slowest_answer: float = 0.0  # seconds, of any attempt that got an HTTP answer
    acknowledged_at: list[float] = field(default_factory=list)  # monotonic time of each 2xx
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        settled = (self.acknowledged, self.refused, self.in_doubt, self.abandoned, self.server_errors, self.unexpected)
        return sum(len(outcome) for outcome in settled)

    def settle(self, outcome: str, item: Any) -> None:
        with self.lock:
            getattr(self, outcome).append(item)
            if outcome == "acknowledged":
                self.acknowledged_at.append(time.monotonic())

    def took(self, seconds: float) -> None:
        with self.lock:
            self.slowest_answer = max(self.slowest_answer, seconds)

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def summary(self) -> dict[str, int | float]:
        return {
            "sent": self.sent,
            "acknowledged": len(self.acknowledged),
            "refused": len(self.refused),
            "in_doubt": len(self.in_doubt),
            "abandoned": len(self.abandoned),
            "answered_503": self.unavailable,
            "client_timeouts": self.client_timeouts,
            "server_errors": len(self.server_errors),
            "slowest_answer_seconds": round(self.slowest_answer, 2),
        }


@dataclass(frozen=True)
class Target:
    """An entity the load changes, and how to make a change to it."""

    kind: str
    entity_id: UUID
    make: Callable[[random.Random], tuple[str, dict[str, Any]]]


PAYLOAD: dict[str, tuple[str, str, str]] = {
    "deal_probability": ("ProbabilityChanged", "to_probability", "probability"),
    "deal_close_date": ("CloseDateChanged", "to_date", "expected_close"),
    "sentiment": ("SentimentRated", "to_sentiment", "sentiment"),
    "progress": ("ProgressReported", "percent", "percent"),
    "whitespace": ("WhitespaceCellSet", "status", "status"),
    "open_deal": ("Opened", "title", "title"),
}
"""Per kind of command: the event it stores, the event's field and the body's field that must agree."""

WHITESPACE = ("in_use", "opportunity", "competitor_holds", "not_a_fit")


@dataclass(frozen=True)
class Account:
    """What the load changes in one account: its open deals, the people still there,
    its plan, the HQ unit and the HQ unit's own objectives."""

    account_id: UUID
    hq: UUID
    plan_id: UUID
    objectives: tuple[UUID, ...]
    deals: tuple[UUID, ...]
    people: tuple[UUID, ...]

    def targets(self) -> dict[str, list[Target]]:
        """Changes the account accepts at any time (the demo's plan is approved; these
        need no editable plan): deals' probability and close date, people's sentiment,
        progress on HQ objectives and the HQ unit's whitespace."""
        hq, plan, objectives = self.hq, self.plan_id, self.objectives

        def probability(deal: UUID) -> Target:
            return Target(
                "deal_probability", deal, lambda r: (f"/deals/{deal}/probability", {"probability": r.randrange(101)})
            )

        def close_date(deal: UUID) -> Target:
            def make(r: random.Random) -> tuple[str, dict[str, Any]]:
                day = date(2027, 1, 1) + timedelta(days=r.randrange(700))
                return f"/deals/{deal}/close-date", {"expected_close": day.isoformat()}

            return Target("deal_close_date", deal, make)

        def sentiment(person: UUID) -> Target:
            return Target(
                "sentiment", person, lambda r: (f"/stakeholders/{person}/sentiment", {"sentiment": r.randint(-2, 2)})
            )

        def progress(r: random.Random) -> tuple[str, dict[str, Any]]:
            objective = r.choice(objectives)
            return f"/plans/{plan}/objectives/{objective}/progress", {"unit_id": str(hq), "percent": r.randrange(101)}

        def whitespace(r: random.Random) -> tuple[str, dict[str, Any]]:
            cell = {"offering": f"Offering {r.randrange(5)}", "unit_id": str(hq), "status": r.choice(WHITESPACE)}
            return f"/plans/{plan}/whitespace", cell

        return {
            "deals": [t for d in self.deals for t in (probability(d), close_date(d))],
            "people": [sentiment(p) for p in self.people],
            "plan": [Target("progress", plan, progress), Target("whitespace", plan, whitespace)],
        }


def demo_account(app: GamApplication, index: int = 0) -> Account:
    """The demo's realistic account (about 580 events), through the service layer."""
    seeded = seed_account(app, index, name=f"Reliability {uuid4().hex[:6]}")
    return Account(
        seeded.account_id,
        demo_id(index, "unit", "HQ"),
        seeded.plan_id,
        tuple(demo_id(index, "objective", n) for n in range(10)),
        tuple(d for d in seeded.deal_ids if app.load(Deal, d).status == "open"),
        tuple(p for p in seeded.stakeholder_ids if app.load(Stakeholder, p).left_on is None),
    )


def small_account(app: GamApplication, deals: int = 4, people: int = 4, objectives: int = 3) -> Account:
    """A small account with fresh ids (a few dozen events): quick to seed."""
    meta = EventMetadata(actor="seed@vendor.example", at=datetime.now(UTC), correlation_id=uuid4())
    account_id, hq = uuid4(), uuid4()
    h.onboard_account(
        app, meta, account_id=account_id, hq_unit_id=hq, name=f"Reliability {account_id.hex[:6]}",
        industry="Industrial manufacturing", hq_country="DE", reporting_currency="EUR", tier="tier_1",
        governance_model="coordinated", fiscal_period="FY2027",
    )  # fmt: skip
    plan_id = plan_id_for(account_id, "FY2027")
    objective_ids = tuple(uuid4() for _ in range(objectives))
    for n, objective in enumerate(objective_ids):
        h.set_objective(
            app, meta, plan_id=plan_id, objective_id=objective, unit_id=hq, title=f"Objective {n}",
            description="", target=Target_("revenue", Decimal(1_000_000), "EUR"), due_date=date(2027, 12, 31),
        )  # fmt: skip
    person_ids = tuple(uuid4() for _ in range(people))
    for n, person in enumerate(person_ids):
        personal = PersonalData(f"Person {n}", f"person.{n}@customer.example", None)
        h.identify_stakeholder(
            app, meta, stakeholder_id=person, account_id=account_id, unit_id=hq, title="CFO", personal=personal
        )
    deal_ids = tuple(uuid4() for _ in range(deals))
    for n, deal in enumerate(deal_ids):
        h.open_deal(
            app, meta, deal_id=deal, account_id=account_id, unit_id=hq, title=f"Deal {n}",
            amount=Money(Decimal(100_000), "EUR"), expected_close=date(2099, 6, 30), owner="owner@vendor.example",
        )  # fmt: skip
    return Account(account_id, hq, plan_id, objective_ids, deal_ids, person_ids)


class Client:
    """One HTTP client working on its own thread: it changes its targets one command
    after another, each against the version it last saw (If-Match), and records how
    each ended. 412 and 409 are refusals (it re-reads the version and goes on); 503 is
    retried after ``Retry-After``; a lost connection leaves the command in doubt."""

    def __init__(
        self,
        base_url: str,
        ledger: Ledger,
        targets: Sequence[Target],
        *,
        seed: int,
        timeout: float = 15.0,
        account: tuple[UUID, UUID] | None = None,
        creates: float = 0.0,
        pause: float = 0.0,
        idempotency_keys: bool = True,
        fresh_reads: bool = False,
    ) -> None:
        self.base_url = base_url
        self.ledger = ledger
        self.targets = list(targets)
        self.random = random.Random(seed)
        self.timeout = timeout
        self.account = account  # (account id, unit id) where new deals are opened
        self.creates = creates  # share of commands that open a new deal
        self.pause = pause
        self.idempotency_keys = idempotency_keys  # without them a retry after a lost answer may apply twice
        self.fresh_reads = fresh_reads  # read the entity (its ETag) before each change, as a user's screen would
        self.versions: dict[UUID, int] = {}
        self.http = httpx.Client(
            base_url=base_url, headers=ADMIN, timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0))
        )

    def run(self, stop: threading.Event, max_commands: int | None = None) -> None:
        sent = 0
        try:
            while not stop.is_set() and (max_commands is None or sent < max_commands):
                self.send(self.next_command(), stop)
                sent += 1
                if self.pause:
                    stop.wait(self.pause)
        finally:
            self.http.close()

    def next_command(self) -> Command:
        if self.account and self.random.random() < self.creates:
            account_id, unit_id = self.account
            deal_id = uuid4()
            body = {
                "deal_id": str(deal_id), "account_id": str(account_id), "unit_id": str(unit_id),
                "title": f"Load deal {deal_id.hex[:8]}", "amount": {"amount": "125000.00", "currency": "EUR"},
                "expected_close": "2099-09-30", "owner": "load@vendor.example",
            }  # fmt: skip
            return Command(uuid4(), "open_deal", deal_id, "/deals", body, None)
        target = self.random.choice(self.targets)
        path, body = target.make(self.random)
        return Command(uuid4(), target.kind, target.entity_id, path, body, self.version(target.entity_id))

    def version(self, entity_id: UUID) -> int:
        if self.fresh_reads or entity_id not in self.versions:
            self.versions[entity_id] = self.read_version(entity_id)
        return self.versions[entity_id]

    def read_version(self, entity_id: UUID) -> int:
        """The entity's current version (its ETag), waiting out a server that is down."""
        kind = next((t.kind for t in self.targets if t.entity_id == entity_id), "open_deal")
        path = f"/{COLLECTION[kind]}/{entity_id}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answer = self.http.get(path)
                if answer.status_code == 200:
                    return int(answer.json()["version"])
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        msg = f"could not read the version of {path}"
        raise TimeoutError(msg)

    def send(self, command: Command, stop: threading.Event) -> None:
        """Send one command (again, with the same key, while unsettled) until an answer settles it."""
        headers = {"X-Correlation-ID": str(command.id)}
        if self.idempotency_keys:
            headers["Idempotency-Key"] = command.id.hex
        if command.if_match is not None:
            headers["If-Match"] = f'"{command.if_match}"'
        body = {**command.body, "reason": f"reliability {command.id}"}
        doubtful = False  # an attempt reached a server and its answer never came back
        give_up: float | None = None
        while give_up is None or time.monotonic() < give_up:
            if stop.is_set() and give_up is None:
                give_up = time.monotonic() + GRACE_SECONDS
            try:
                sent = time.monotonic()
                answer = self.http.post(command.path, json=body, headers=headers)
                self.ledger.took(time.monotonic() - sent)
            except httpx.TimeoutException:
                self.ledger.count("client_timeouts")
                doubtful = True
                continue
            except httpx.ConnectError:  # nothing reached a server: safe to send again
                self.ledger.count("connection_errors")
                time.sleep(0.1)
                continue
            except httpx.TransportError:
                self.ledger.count("connection_errors")
                doubtful = True
                time.sleep(0.1)
                continue
            status = answer.status_code
            if status == 503:
                self.ledger.count("unavailable")
                if "retry-after" not in answer.headers:
                    self.ledger.count("unavailable_without_retry_after")
                retry_after = min(float(answer.headers.get("retry-after", "1")), 1.0)
                time.sleep(retry_after * self.random.uniform(0.2, 0.6))
                continue
            if 200 <= status < 300:
                payload = answer.json()
                replayed = answer.headers.get("idempotent-replayed") == "true"
                self.ledger.settle("acknowledged", Answer(command, status, payload, replayed))
                self.versions[command.entity_id] = int(payload["version"])
                return
            self.versions.pop(command.entity_id, None)
            if status in (409, 412) and doubtful:
                break  # our own earlier attempt holds the key, or already moved the version
            if status in (409, 412):
                self.ledger.settle("refused", Answer(command, status, _json(answer)))
                current = _json(answer).get("current_version")
                if isinstance(current, int):
                    self.versions[command.entity_id] = current
                return
            kind = "server_errors" if status >= 500 else "unexpected"
            self.ledger.settle(kind, f"{status} {command.path}: {answer.text[:300]}")
            return
        self.ledger.settle("in_doubt" if doubtful else "abandoned", command)


COLLECTION = {"deal_probability": "deals", "deal_close_date": "deals", "open_deal": "deals",
              "sentiment": "stakeholders", "progress": "plans", "whitespace": "plans"}  # fmt: skip
GRACE_SECONDS = 30.0
"""How long a client keeps retrying its last command once the load is told to stop."""


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class Load:
    """Clients on threads, started and stopped together."""

    clients: list[Client]
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def start(self, max_commands: int | None = None) -> None:
        def work(client: Client) -> None:
            try:
                client.run(self.stop, max_commands)
            except BaseException as error:
                self.errors.append(error)

        self.threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in self.clients]
        for thread in self.threads:
            thread.start()

    def finish(self, timeout: float = 120) -> None:
        self.stop.set()
        self.join(timeout)

    def join(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "a client hung"
        assert not self.errors, self.errors[0]


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class StoredEvent:
    position: int
    entity_id: UUID
    version: int
    type: str
    correlation_id: UUID | None
    event: Any


def stored_events(app: GamApplication, start: int = 1) -> list[StoredEvent]:
    """Every event in the log from ``start``, in order."""
    events: list[StoredEvent] = []
    while True:
        page = app.recorder.select_notifications(start=start, limit=5_000)
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            events.append(
                StoredEvent(
                    notification.id, event.originator_id, event.originator_version, type(event).__name__,
                    getattr(event, "correlation_id", None), event,
                )
            )  # fmt: skip
        if len(page) < 5_000:
            return events
        start = page[-1].id + 1


@dataclass
class Verdict:
    """What the store holds compared with what the clients were told."""

    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not stored as answered
    refused_but_stored: list[str] = field(default_factory=list)
    in_doubt_stored: int = 0
    in_doubt_not_stored: int = 0
    unexplained: list[str] = field(default_factory=list)  # stored by the load, from no known request
    version_gaps: list[str] = field(default_factory=list)
    wrong_payload: list[str] = field(default_factory=list)
    stale_base: list[str] = field(default_factory=list)  # stored on another version than If-Match named
    stored_twice: list[str] = field(default_factory=list)  # one request, more than one event

    def problems(self) -> dict[str, list[str]]:
        fields = ("lost", "refused_but_stored", "unexplained", "version_gaps", "wrong_payload", "stale_base",
                  "stored_twice")  # fmt: skip
        return {name: getattr(self, name)[:10] for name in fields if getattr(self, name)}


def check_store(app: GamApplication, ledger: Ledger, baseline: int) -> Verdict:
    """The whole log against the ledger (events after ``baseline`` came from the load)."""
    events = stored_events(app)
    verdict = Verdict(acknowledged=len(ledger.acknowledged))
    by_request: dict[UUID, list[StoredEvent]] = {}
    versions: dict[UUID, list[int]] = {}
    for stored in events:
        versions.setdefault(stored.entity_id, []).append(stored.version)
        if stored.position > baseline and stored.correlation_id is not None:
            by_request.setdefault(stored.correlation_id, []).append(stored)
    for entity_id, seen in versions.items():
        if sorted(seen) != list(range(1, len(seen) + 1)):
            verdict.version_gaps.append(f"{entity_id}: {sorted(seen)[:20]}")

    for request_id, found in by_request.items():
        if len(found) > 1:  # every command of the load stores exactly one event
            verdict.stored_twice.append(f"{request_id}: {[(s.type, s.entity_id, s.version) for s in found]}")
    for answer in ledger.acknowledged:
        command = answer.command
        found = by_request.get(command.id, [])
        position, version = answer.body.get("position"), answer.body.get("version")
        match = [s for s in found if s.entity_id == command.entity_id and s.version == version]
        if not match or match[-1].position != position:
            verdict.lost.append(f"{command.kind} {command.entity_id} v{version} @{position}: stored {found}")
            continue
        _check_payload(verdict, command, match[-1])
        if command.if_match is not None and version != command.if_match + 1:
            verdict.stale_base.append(f"{command.kind} {command.entity_id}: If-Match {command.if_match}, v{version}")
    for answer in ledger.refused:
        if answer.command.id in by_request:
            verdict.refused_but_stored.append(f"{answer.status} {answer.command.kind} {answer.command.entity_id}")
    for command in ledger.in_doubt:
        if command.id in by_request:
            verdict.in_doubt_stored += 1
            _check_payload(verdict, command, by_request[command.id][-1])
        else:
            verdict.in_doubt_not_stored += 1
    known = {a.command.id for a in ledger.acknowledged} | {c.id for c in ledger.in_doubt}
    known |= {a.command.id for a in ledger.refused}  # if stored, already listed as refused_but_stored
    for request_id, found in by_request.items():
        if request_id not in known and any("reliability" in str(getattr(s.event, "reason", "")) for s in found):
            verdict.unexplained.append(f"{request_id}: {[(s.type, s.entity_id, s.version) for s in found]}")
    return verdict


def _check_payload(verdict: Verdict, command: Command, stored: StoredEvent) -> None:
    event_type, event_field, body_field = PAYLOAD[command.kind]
    value = getattr(stored.event, event_field, None)
    if stored.type != event_type or str(value) != str(command.body[body_field]):
        verdict.wrong_payload.append(f"{command.kind}: asked {command.body[body_field]}, stored {stored.type} {value}")


def check_final_state(app: GamApplication, ledger: Ledger) -> list[str]:
    """The last stored change to each field, replayed from the requests, is what the entity holds."""
    latest: dict[tuple[UUID, str], tuple[int, Any]] = {}
    events = {(s.entity_id, s.version): s for s in stored_events(app)}
    settled = [(a.command, int(a.body["version"])) for a in ledger.acknowledged]
    settled += [(c, s.version) for c in ledger.in_doubt for s in events.values() if s.correlation_id == c.id]
    for command, version in settled:
        key = _field_key(command)
        if key is not None and (key not in latest or latest[key][0] < version):
            latest[key] = (version, command.body[PAYLOAD[command.kind][2]])
    mismatches = []
    for (entity_id, name), (version, expected) in latest.items():
        actual = _current(app, entity_id, name)
        if str(actual) != str(expected):
            mismatches.append(f"{entity_id} {name}: replayed {expected} (v{version}), holds {actual}")
    return mismatches


def _field_key(command: Command) -> tuple[UUID, str] | None:
    if command.kind == "progress":
        return None  # progress is a history (a list), checked event by event
    if command.kind == "whitespace":
        return command.entity_id, f"whitespace:{command.body['offering']}:{command.body['unit_id']}"
    return command.entity_id, command.kind


def _current(app: GamApplication, entity_id: UUID, name: str) -> Any:
    aggregate: Any = app.repository.get(entity_id)
    if name.startswith("whitespace:"):
        _, offering, unit = name.split(":", 2)
        return aggregate.whitespace.get((offering, UUID(unit)))
    attribute = {"deal_probability": "probability", "deal_close_date": "expected_close", "sentiment": "sentiment",
                 "open_deal": "title"}[name]  # fmt: skip
    value = getattr(aggregate, attribute)
    return value.isoformat() if isinstance(value, date) else value


# --------------------------------------------------------------------------- views and downstream


def views_equal_a_rebuild(app: GamApplication, settings: Settings) -> bool:
    """The views as the processes left them, compared with a rebuild from the first event
    (through the same Projector API ``gam rebuild`` uses). Every writer must be stopped."""
    projector = Projector.open(app, settings)
    try:
        last = app.recorder.max_notification_id() or 0
        assert set(projector.positions().values()) == {last}, projector.positions()
        incremental = dump_views(projector)
        projector.rebuild()
        return bool(dump_views(projector) == incremental)
    finally:
        projector.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() > started + timeout:
            msg = f"timed out waiting for {what}"
            raise TimeoutError(msg)
        time.sleep(0.1)
    return time.monotonic() - started


def read_topic(bootstrap: str, topic: str, at_least: int, timeout: float = 90.0) -> list[dict[str, Any]]:
    """Every message on the topic (duplicates included), partition by partition from the start."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            time.sleep(0.1)
        assert partitions, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        messages: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = [r for records in consumer.poll(timeout_ms=300).values() for r in records]
            messages.extend(json.loads(r.value) for r in batch)
            if batch:
                quiet_since = time.monotonic()
            elif len(messages) >= at_least and time.monotonic() - quiet_since > 1.0:
                break
        return messages
    finally:
        consumer.close()


@dataclass(frozen=True)
class Downstream:
    delivered: int
    distinct: int
    duplicates: int
    missing: int


def check_downstream(app: GamApplication, bootstrap: str, topic: str) -> Downstream:
    events = stored_events(app)
    messages = read_topic(bootstrap, topic, at_least=len(events))
    ids = Counter(m["id"] for m in messages)
    expected = {str(s.event.event_id) for s in events}
    return Downstream(
        delivered=len(messages),
        distinct=len(ids),
        duplicates=sum(ids.values()) - len(ids),
        missing=len(expected - set(ids)),
    )


@dataclass
class Throughput:
    """Acknowledged commands per interval, from the ledger's timestamps."""

    started: float
    interval: float = 60.0

    def per_interval(self, ledger: Ledger, until: float) -> list[int]:
        buckets = [0] * max(1, int((until - self.started) // self.interval))
        for at in ledger.acknowledged_at:
            slot = int((at - self.started) // self.interval)
            if 0 <= slot < len(buckets):
                buckets[slot] += 1
        return buckets


def record_figures(figures: dict[str, Any]) -> None:
    """Print a test's figures, and append them as a JSON line to ``$GAM_RELIABILITY_FIGURES`` if set
    (docs/reliability.md is written from that file)."""
    line = json.dumps(figures, default=str)
    print(line)
    target = os.environ.get("GAM_RELIABILITY_FIGURES")
    if target:
        with Path(target).open("a") as out:
            out.write(line + "\n")
