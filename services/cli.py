"""The ``gam`` command line.

Every command prints which event store it uses first (on standard error, so
``--json`` and exports stay clean on standard output), so nobody wonders where
their data went. The store comes from the ``GAM_*`` environment (see
``infra.settings``): SQLite ``gam.db`` in the working directory by default.

Bad input never ends in a traceback: a usage error, a refusal by a rule or an
unreachable store is one line on standard error and a non-zero exit
(:class:`GamGroup`). ``GAM_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import eventsourcing.persistence as es
import psycopg
import typer
from psycopg_pool import PoolTimeout
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer carries its own click
from typer.core import TyperGroup

from domain.account import GlobalAccount
from domain.errors import DomainError, NotFound
from domain.plan import plan_id_for
from infra.settings import Settings
from infra.views_lease import RebuildRunning
from projections.ports import AuditQuery
from services.bootstrap import Runtime, bootstrap
from services.demo import FISCAL_PERIOD, demo_id, seed_account
from services.demo_views import (
    account_rows,
    show_account_view,
    show_accounts,
    show_audit_trail,
    show_next_steps,
    show_plans,
    show_strategy_flow,
)
from services.gc_freeze import freeze_start_up_objects
from services.observability.startup import describe as describe_failure
from services.parallel_rebuild import DEFAULT_PROCESSES
from services.projector import CATCH_UP_BATCH, PROJECTIONS, bring_up_to_date, follow, rebuild_views
from services.read_models import ViewResult as ReadModelsResult
from services.transparency_cli import register as register_transparency


class Refused(typer.TyperException):
    """The command cannot do what was asked (an unknown account, a missing secret):
    one line on standard error, exit 1 (2 for what the configuration lacks)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _version() -> str:
    try:
        return version("gam")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
        return "unknown"


def _say_error(message: str) -> None:
    """One line, never wrapped (a terminal's width must not split it); with
    ``GAM_LOG_FORMAT=json``, a log record, so standard error holds JSON lines only."""
    line = " ".join(message.split())
    if os.environ.get("GAM_LOG_FORMAT", "").lower() == "json":
        logging.getLogger("gam").critical(line)
    else:
        typer.echo(line, err=True)


STORE_UNAVAILABLE = (
    es.OperationalError,
    es.InterfaceError,
    es.ConnectionUnavailableError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
    sqlite3.OperationalError,
)
"""What a store that is down, unreachable or not there raises (as the API's 503)."""


class GamGroup(TyperGroup):
    """The ``gam`` command group: every failure is one line on standard error with a
    non-zero exit: 2 for a usage error (a malformed id, an unknown option), 1 for a
    refusal (a rule, an unknown entity, an unreachable store). A person reading a
    traceback learns nothing they can act on."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = {"args": args, "prog_name": prog_name, "complete_var": complete_var, **extra}
        if not standalone_mode:
            return super().main(**run, standalone_mode=False, windows_expand_args=windows_expand_args)
        try:
            code = super().main(**run, standalone_mode=False, windows_expand_args=windows_expand_args)
        except NoArgsIsHelpError as error:
            typer.echo(error.ctx.get_help() if error.ctx else error.format_message())
            sys.exit(error.exit_code)
        except typer.TyperException as error:
            ctx = getattr(error, "ctx", None)
            where = ctx.command_path if ctx is not None else "gam"
            hint = f" (see '{where} --help')" if isinstance(error, UsageError) else ""
            _say_error(f"{where}: {error.format_message()}{hint}")
            sys.exit(error.exit_code)
        except typer.Abort:
            _say_error("gam: aborted")
            sys.exit(1)
        except DomainError as refused:
            _say_error(f"gam: refused ({refused.rule}): {refused}")
            sys.exit(1)
        except STORE_UNAVAILABLE as error:
            if os.environ.get("GAM_DEBUG"):
                raise
            cause = describe_failure(error)  # PostgreSQL: where it was looked for, never the password
            if not cause.startswith("the PostgreSQL database"):
                cause = f"the event store is unavailable ({Settings().describe_store()}): {error}"
            _say_error(f"gam: {cause}")
            sys.exit(1)
        except Exception as error:  # the store unreachable, a bug: still one line unless asked
            if os.environ.get("GAM_DEBUG"):
                raise
            _say_error(f"gam: {type(error).__name__}: {error} (GAM_DEBUG=1 shows the traceback)")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


if TYPE_CHECKING:
    from services.observability.operations import Operations
    from services.relay import Relay

cli = typer.Typer(
    cls=GamGroup,
    help="gam: an event-sourced backend for global account plans.\n\n"
    "The store is chosen by GAM_STORE (sqlite, postgres, memory), GAM_SQLITE_PATH and GAM_POSTGRES_DSN.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: choices and formats shown, no type noise on flags
)
console = Console()
diagnostics = Console(stderr=True)
"""What is said about the run (the store used, progress), kept off standard output."""


def _show_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"gam {_version()}")
        raise typer.Exit


@cli.callback()
def _gam(
    _: Annotated[
        bool | None,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show gam's version and exit."),
    ] = None,
) -> None:
    # No docstring: typer would show it instead of the group's help.
    pass


TIME_HELP = (
    "A date (2027-03-31, meaning 00:00 UTC), a UTC time (2027-03-31T14:30 or 2027-03-31 14:30:00), "
    "or a time with its offset (2027-03-31T14:30+02:00, ...Z)."
)


def parse_moment(text: str) -> datetime:
    """A moment from the command line: ISO 8601, UTC unless it carries an offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time; {TIME_HELP}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_option(*names: str, help: str) -> Any:
    """An option taking a moment (:func:`parse_moment`), shown as TIME in the help."""
    return typer.Option(*names, parser=parse_moment, metavar="TIME", help=help)


class ShownKind(StrEnum):
    ACCOUNT = "account"


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


def _open_store(views: Sequence[str] | None = None, out: Console = diagnostics) -> Runtime:
    """This process's runtime (``services.bootstrap``), after saying which store it uses."""
    settings = Settings()
    if settings.log_format == "json" and out is diagnostics:  # standard error holds JSON lines only
        logging.getLogger("gam").info("store: %s", settings.describe_store())
    else:
        out.print(f"[dim]store:[/dim] {settings.describe_store()}", soft_wrap=True)  # one line, however long
    return bootstrap(settings, views=views)


@contextmanager
def _store(views: Sequence[str] | None = None) -> Iterator[Runtime]:
    """The runtime for the length of one command, closed however the command ends."""
    runtime = _open_store(views)
    try:
        yield runtime
    finally:
        runtime.close()


def _group(name: str, help: str) -> typer.Typer:
    """A group of subcommands under ``gam NAME`` (``gam keys status``)."""
    group = typer.Typer(help=help)
    cli.add_typer(group, name=name)
    return group


def _require_account(runtime: Runtime, account_id: UUID) -> GlobalAccount:
    """The account, or a refusal naming the id: a command about an account that does
    not exist must not report on nothing as if all were well."""
    try:
        return runtime.app.load(GlobalAccount, account_id)
    except NotFound:
        raise Refused(f"no account {account_id} in {runtime.settings.describe_store()}") from None


WIDE_HELP = "Show every title and column in full (default: fit the terminal, cutting long titles with …)."


@cli.command()
def demo(
    accounts: Annotated[int, typer.Option(min=1, help="How many demo accounts to seed (the first is shown).")] = 1,
    wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
) -> None:
    """Seed a realistic global account (HQ, 3 regions, 6 countries, 10 local units, 20 stakeholders,
    30 deals in 6 currencies, 10 HQ objectives cascaded and answered), bring the views up to date,
    and show the account view, the strategy flow and the audit trail. Safe to re-run."""
    with _store() as runtime:
        settings, app, projector = runtime.settings, runtime.app, runtime.projector
        for index in range(accounts):
            if app.exists(demo_id(index, "account")):
                console.print(f"demo account #{index} is already in the store; leaving it as it is")
                continue
            started = time.perf_counter()
            result = seed_account(app, index)
            elapsed = time.perf_counter() - started
            console.print(
                f"seeded demo account #{index}: {result.commands} commands in {elapsed:.2f} s "
                f"({result.commands / elapsed:,.0f} commands/s)"
            )
        bring_up_to_date(projector, settings)
        account_id = demo_id(0, "account")
        reads = runtime.reads
        now = datetime.now(UTC)
        plan_id = plan_id_for(account_id, FISCAL_PERIOD)
        show_account_view(console, reads.account_view(account_id, now=now), wide=wide)
        show_strategy_flow(console, reads.strategy_flow(plan_id, now=now), wide=wide)
        show_audit_trail(console, reads.audit_trail(AuditQuery(account_id=account_id, limit=10**6)), wide=wide)
        show_next_steps(console, account_id, plan_id, now)


@cli.command()
def store() -> None:
    """Show which event store is configured and how many events it holds."""
    with _store() as runtime:
        console.print(f"events stored: {runtime.app.recorder.max_notification_id() or 0}")


@cli.command()
def project(
    follow_new: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep following new events.")] = True,
    seconds: Annotated[float | None, typer.Option(help="Stop following after this many seconds.")] = None,
) -> None:
    """Bring every view (account view, audit trail, strategy flow) up to date with the event log,
    then follow new events as they are stored (Ctrl-C stops)."""
    with _store() as runtime:
        settings, projector, lease = runtime.settings, runtime.projector, runtime.lease
        operations = _operations_port(settings)  # up during the first catch-up too, which may be long
        if lease.holds():
            processed = projector.catch_up()
            console.print(f"caught up: {processed} view updates; positions {projector.positions()}")
        else:
            console.print("another process (gam serve or gam project) writes the views; standing by")
    if follow_new:
        console.print("following new events …")
        freeze_start_up_objects()
        try:
            follow(settings, timeout=seconds)
        except KeyboardInterrupt:
            console.print("stopped")
        finally:
            if operations is not None:
                operations.close()
    elif operations is not None:
        operations.close()


def _operations_port(settings: Settings, relay: Relay | None = None) -> Operations | None:
    """``/metrics`` and ``/readyz`` of ``gam project`` (the views) or ``gam relay`` on
    GAM_METRICS_PORT, if set."""
    if settings.metrics_port is None:
        return None
    from services.observability.operations import Operations

    return Operations.start(settings, relay)


@cli.command()
def rebuild(
    view: Annotated[str | None, typer.Argument(help=f"One of: {', '.join(PROJECTIONS)} (default: all).")] = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Start a new generation even if an interrupted rebuild left one to resume."),
    ] = False,
    batch: Annotated[
        int, typer.Option(min=1, help="Events applied and committed per batch (a smaller batch holds less memory).")
    ] = CATCH_UP_BATCH,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="From 100,000 events: processes to share the views out between (one per core, at most 3).",
        ),
    ] = DEFAULT_PROCESSES,
) -> None:
    """Rebuild a view (or all) from the first event, blue/green, with a progress bar.
    A new generation of each view is built beside the live one, which keeps serving
    readers and following new events (gam serve, gam project go on as they are); once the
    new generation has caught up, it takes over in one transaction and the old one is
    dropped. An interrupted rebuild leaves the live views as they were: run it again to
    resume where it got to (--fresh: start over). One rebuild runs at a time; a second
    one is refused."""
    if view is not None and view not in PROJECTIONS:
        raise typer.BadParameter(f"unknown view {view!r}; choose from {', '.join(PROJECTIONS)}")
    runtime = _open_store()
    settings, app, projector = runtime.settings, runtime.app, runtime.projector
    names = [view] if view else list(PROJECTIONS)
    operations = _operations_port(settings)  # gam_view_catch_up_progress_ratio while it runs
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        before = projector.generations()
        with Progress(*columns, console=diagnostics) as bar:
            tasks = {n: bar.add_task(n, total=app.recorder.max_notification_id() or 0) for n in names}
            started = time.perf_counter()
            rebuild_views(
                projector,
                settings,
                names,
                progress=lambda name, done, total: bar.update(tasks[name], completed=done, total=total),
                fresh=fresh,
                batch=batch,
                processes=processes,
            )
            elapsed = time.perf_counter() - started
        after = projector.generations()
        switched = ", ".join(f"{n} {before[n].live} → {after[n].live}" for n in names)
        console.print(
            f"rebuilt {', '.join(names)} in {elapsed:.2f} s; generations {switched}; positions {projector.positions()}"
        )
    except RebuildRunning as error:
        raise Refused(f"{error}; the views are left as they were") from None
    finally:
        if operations is not None:
            operations.close()
        runtime.close()


@cli.command()
def relay(
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Kafka brokers, host:port[,…] (default GAM_KAFKA_BOOTSTRAP_SERVERS).")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Topic to publish to (default GAM_KAFKA_TOPIC, gam.events).")
    ] = None,
    from_position: Annotated[
        int | None, typer.Option("--from", min=1, help="Republish from this log position (backfill a new topic).")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    until_caught_up: Annotated[bool, typer.Option(help="Stop once every stored event is published.")] = False,
) -> None:
    """Publish every event to Kafka as a CloudEvent, in order per account, at least once.
    The relay's position is kept in the event store and advanced only after the broker acknowledges."""
    from infra.kafka import create_producer
    from services.relay import Relay

    runtime = _open_store()
    settings = runtime.settings
    if bootstrap_servers:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers})
    producer = create_producer(settings)
    publisher = Relay(runtime.app, settings, producer, topic, producer_factory=lambda: create_producer(settings))
    operations = _operations_port(settings, relay=publisher)
    try:
        if from_position is not None:
            publisher.start_from(from_position)
        where = f"{publisher.topic} on {settings.kafka_bootstrap_servers}"
        console.print(f"relaying to {where} from position {publisher.position() + 1}")
        freeze_start_up_objects()
        published = publisher.run(seconds=seconds, until_caught_up=until_caught_up)
        console.print(f"published {published} events; position {publisher.position()}")
    except KeyboardInterrupt:
        console.print(f"stopped at position {publisher.position()}")
    finally:
        if operations is not None:
            operations.close()
        publisher.producer.close()
        publisher.close()
        runtime.close()


@cli.command()
def subscribe(
    group: Annotated[str, typer.Option(help="Consumer group id.")],
    account: Annotated[UUID | None, typer.Option(help="Only this account's events (its id).")] = None,
    topic: Annotated[str | None, typer.Option(help="Topic (default GAM_KAFKA_TOPIC).")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(help="Kafka brokers (default from the environment).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    max_events: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    api_url: Annotated[
        str | None, typer.Option(envvar="GAM_API_URL", help="gam's API, to fetch people's keys (e.g. http://gam:8000).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="GAM_API_KEY", help="A service API key with the personal_data scope.", show_default=False),
    ] = None,
) -> None:
    """A reference downstream consumer: prints each event readably, drops duplicates, commits after processing.

    With --api-url and --api-key (personal_data scope) it opens people's sealed data: each
    person's key is fetched once and kept, and forgotten at their erasure (then [erased]);
    without them personal data shows [sealed]."""
    from services.subscriber import HttpKeySource, KeyServiceUnavailable, SealedOpener, describe
    from services.subscriber import subscribe as consume

    settings = Settings()
    if bootstrap_servers:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_servers})
    if (api_url is None) != (api_key is None):
        raise typer.BadParameter("give both --api-url and --api-key (or neither: personal data stays sealed)")
    opener = SealedOpener(HttpKeySource(api_url, api_key).get if api_url and api_key else None)
    try:
        handled = consume(
            settings,
            group=group,
            account=str(account) if account else None,
            topic=topic,
            seconds=seconds,
            max_events=max_events,
            handle=lambda envelope: print(describe(envelope), flush=True),
            opener=opener,
        )
        console.print(f"{handled} events")
        for subject, why in sorted(opener.refused.items()):
            console.print(f"the key of {subject} was refused: {why}")
    except KeyServiceUnavailable as error:  # the record was not committed: it comes again next time
        diagnostics.print(f"stopped: {error}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopped")


@cli.command()
def schemas() -> None:
    """Regenerate the JSON Schemas of the published events (schemas/events/)."""
    from services.event_schemas import write_schemas

    paths = write_schemas()
    console.print(f"wrote {len(paths)} schemas to {paths[0].parent}")


audit_cli = _group(
    "audit",
    "Compliance: verify the tamper-evident hash chain, export the audit trail with its links; the transparency "
    "log: signed checkpoints, inclusion and consistency proofs, a witness.",
)
register_transparency(audit_cli, _open_store)  # checkpoint, prove, consistency, witness, checkpointer


@audit_cli.command("verify")
def audit_verify(
    account: Annotated[
        UUID | None, typer.Option(help="Also name the first of this account's events that is affected (its id).")
    ] = None,
) -> None:
    """Recompute the hash chain over every stored event; report the first broken position (exit 1 if broken)."""
    from infra.hash_chain import verify_chain
    from projections.ports import AuditQuery

    with _store(views=["audit_trail"]) as runtime:
        if account is not None:
            _require_account(runtime, account)
        started = time.perf_counter()
        report = verify_chain(runtime.app.recorder)
        elapsed = time.perf_counter() - started
        if report.intact:
            console.print(f"chain intact: {report.checked} events verified in {elapsed:.2f} s")
            return
        console.print(f"[red]chain broken at position {report.first_broken}[/red]: {report.problem}")
        if account is not None and report.first_broken is not None:
            bring_up_to_date(runtime.projector, runtime.settings)
            rows = runtime.projector.view("audit_trail").select_audit(
                AuditQuery(account_id=account, after_position=report.first_broken - 1, limit=1)
            )
            where = f"position {rows[0].position}" if rows else "none of its events"
            console.print(f"first affected event of account {account}: {where}")
        raise typer.Exit(1)


@audit_cli.command("export")
def audit_export(
    account: Annotated[UUID | None, typer.Option(help="Only this account's events (default: every event).")] = None,
    since: Annotated[datetime | None, time_option("--from", help=f"From this time (inclusive). {TIME_HELP}")] = None,
    until: Annotated[datetime | None, time_option("--to", help="Until this time (exclusive); as --from.")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="One JSON object a line, or CSV.")] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output).")] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Write the signed checkpoint the export is cut at here (default: OUTPUT.checkpoint)."),
    ] = None,
) -> None:
    """Stream the audit trail with each row's hash-chain link, its Merkle leaf index and inclusion proof
    against a signed checkpoint (saved beside it), for checking outside the system."""
    from services.audit_export import export_rows, render
    from services.transparency_cli import export_checkpoint

    with _store(views=["audit_trail"]) as runtime:
        settings, projector = runtime.settings, runtime.projector
        if account is not None:
            _require_account(runtime, account)
        bring_up_to_date(projector, settings)
        note_file = checkpoint or (output.with_name(output.name + ".checkpoint") if output else None)
        log, size = export_checkpoint(runtime, note_file)
        rows = export_rows(projector, account_id=account, since=since, until=until, transparency=log, tree_size=size)
        with output.open("w", encoding="utf-8", newline="") if output else nullcontext(sys.stdout) as sink:
            for line in render(rows, fmt.value):
                sink.write(line)


@cli.command()
def replay(
    account: Annotated[UUID, typer.Option(help="The account's id.")],
    as_of: Annotated[datetime, time_option("--as-of", help=f"The moment. {TIME_HELP}")],
    as_json: Annotated[bool, typer.Option("--json", help="Everything as JSON (alone on standard output).")] = False,
    wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
) -> None:
    """The account (plan and its cascade, stakeholders, deals and the account view) as it stood at a moment."""
    from services.time_travel import account_as_of

    with _store(views=["audit_trail", "account_view"]) as runtime:
        settings, app, projector = runtime.settings, runtime.app, runtime.projector
        _require_account(runtime, account)
        bring_up_to_date(projector, settings)
        started = time.perf_counter()
        state = account_as_of(app, projector, account, as_of)
        elapsed = time.perf_counter() - started
        if as_json:
            print(json.dumps(state.as_json(), indent=2, ensure_ascii=False, sort_keys=True))
            return
        view = state.view()
        if view is None:
            raise Refused(f"account {account} did not exist yet at {as_of.isoformat()}")
        kinds = Counter(a.entity_type for a in state.aggregates.values())
        console.print(
            f"as of {state.as_of.astimezone(UTC).isoformat()}: {dict(kinds)}, "
            f"{sum(state.versions.values())} events ({elapsed:.2f} s)"
        )
        show_account_view(console, ReadModelsResult(view, sum(state.versions.values())), wide=wide)
        show_plans(console, view, wide=wide)


@cli.command()
def accounts(
    search: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="Only accounts whose name, industry, HQ country or tier contains it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON (alone on standard output).")] = False,
    wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
) -> None:
    """List the accounts (from the account view, brought up to date; nothing is replayed)."""
    from projections.account_view.evolve import KEY_PREFIX

    with _store(views=["account_view"]) as runtime:
        bring_up_to_date(runtime.projector, runtime.settings)
        documents = runtime.projector.view("account_view").documents_with_prefix(KEY_PREFIX)
    rows = account_rows(documents.values(), search)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    show_accounts(console, rows, wide=wide)


@cli.command()
def worklist(
    member: Annotated[str, typer.Option("--member", metavar="WHO", help="Whose worklist (their token's sub).")],
    stale_days: Annotated[
        int, typer.Option(min=1, max=3650, help="List key stakeholders not contacted for this many days.")
    ] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON (alone on standard output).")] = False,
) -> None:
    """What waits for one person across the accounts whose team they are on: directives
    their units must answer, overdue actions, deals past their close date, key people not
    contacted, plans waiting for their approval (from the account view; nothing is replayed)."""
    from services.worklist import WorklistQuery, counts

    with _store(views=["account_view"]) as runtime:
        bring_up_to_date(runtime.projector, runtime.settings)
        query = WorklistQuery(member, datetime.now(UTC), frozenset(runtime.settings.approver_roles), stale_days)
        answer = runtime.reads.worklist(query).data
    if as_json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return
    console.print(f"Worklist of {member}: {answer['accounts']} account(s)")
    for section, number in counts(answer).items():
        console.print(f"\n{section.replace('_', ' ').capitalize()}: {number}")
        for row in answer[section]:
            console.print("  - " + _worklist_line(section, row), overflow="ellipsis", no_wrap=True)


def _worklist_line(section: str, row: dict[str, Any]) -> str:
    where = row["account"]
    if section == "directives_awaiting_answer":
        late = " OVERDUE" if row["overdue"] else ""
        waiting = f"{row['days_waiting']} d waiting, due {row['answer_due']}{late}"
        return f"{row['unit']}: {row['objective']} ({waiting}) — {where}"
    if section == "overdue_actions":
        return f"{row['title']} (due {row['due_date']}, {row['days_overdue']} d late) — {where}"
    if section == "deals_past_expected_close":
        return f"{row['title']} ({row['stage']}, close {row['expected_close']}) — {where}"
    if section == "stakeholders_not_contacted":
        last = row["last_contact"] or "never"
        return f"{row['name']}, {row['title']} (last contact {last}) — {where}"
    return f"plan {row['fiscal_period']} submitted by {row['submitted_by']} — {where}"


@cli.command("show")
def show_account(
    kind: Annotated[ShownKind, typer.Argument(metavar="KIND", help="What to show: account.")],
    entity_id: Annotated[UUID, typer.Argument(metavar="ID", help="Its id (gam accounts lists them).")],
    wide: Annotated[bool, typer.Option("--wide", help=WIDE_HELP)] = False,
) -> None:
    """Show an account as its GAM reads it: units and team, pipeline, relationships, plans and their cascade."""
    with _store(views=["account_view"]) as runtime:
        _require_account(runtime, entity_id)
        bring_up_to_date(runtime.projector, runtime.settings)
        result = runtime.reads.account_view(entity_id, now=datetime.now(UTC))
    show_account_view(console, result, wide=wide)
    if result.data is not None:
        show_plans(console, result.data, wide=wide)


@cli.command("diff")
def diff_command(
    account: Annotated[UUID, typer.Option(help="The account's id.")],
    from_time: Annotated[datetime, time_option("--from", help=f"The earlier moment. {TIME_HELP}")],
    to_time: Annotated[datetime, time_option("--to", help="The later moment; as --from.")],
) -> None:
    """What changed in an account between two moments: objectives, answers, stakeholders, deals."""
    from services.time_travel import account_as_of, describe, diff, names_in

    with _store(views=["audit_trail", "account_view"]) as runtime:
        settings, app, projector = runtime.settings, runtime.app, runtime.projector
        _require_account(runtime, account)
        bring_up_to_date(projector, settings)
        before = account_as_of(app, projector, account, from_time).document
        after = account_as_of(app, projector, account, to_time).document
        changes = diff(before, after)
        names = names_in(after) | names_in(before)
        for change in changes:
            console.print(describe(change, names), highlight=False)
        console.print(f"{len(changes)} changes")


erase_cli = _group("erase", "Compliance: erase a person's personal data (crypto-shredding).")


@erase_cli.command("stakeholder")
def erase_stakeholder(
    stakeholder_id: Annotated[UUID, typer.Argument(help="The stakeholder's id.")],
    legal_basis: Annotated[str, typer.Option(help="Why, e.g. 'GDPR Art. 17 request #4711'.")],
    actor: Annotated[str, typer.Option(envvar="GAM_ACTOR", help="Who asks (default: $GAM_ACTOR).")],
) -> None:
    """Destroy the person's key and record the erasure: their name, contact details and
    interaction notes can no longer be read anywhere; every other fact stays."""
    from uuid import uuid4

    from domain.commands import ErasePersonalData
    from domain.metadata import EventMetadata

    with _store() as runtime:
        meta = EventMetadata(actor=actor, at=datetime.now(UTC), correlation_id=uuid4(), reason=legal_basis)
        erasure = ErasePersonalData(stakeholder_id=stakeholder_id, legal_basis=legal_basis)
        result = runtime.bus.handle(erasure, meta)
        console.print(f"erased the personal data of {stakeholder_id} (position {result.position})")


keys_cli = _group("keys", "The personal-data key store (outside the events' database) and its master key.")


@keys_cli.command("status")
def keys_status() -> None:
    """Where the keys and the master key are, and how many keys each master key wraps."""
    from infra.personal_keys import FileKeys, keys_for

    settings = Settings()
    keys = keys_for(settings)
    try:
        if not isinstance(keys, FileKeys):
            console.print("keys: in memory (GAM_STORE=memory); nothing is kept")
            return
        console.print(f"key store: {keys.path.resolve()}")
        where = "GAM_MASTER_KEY" if settings.master_key else str(settings.master_key_path(keys.path).resolve())
        console.print(f"master key: {where} (id {keys.wrapper.key_id})")
        for name, count in sorted(keys.counts().items()):
            console.print(f"{name}: {count} keys")
    finally:
        keys.close()


@keys_cli.command("rotate-master")
def keys_rotate_master(
    new_key_file: Annotated[
        Path | None, typer.Option(help="Where to write the new master key when GAM_MASTER_KEY holds the old one.")
    ] = None,
) -> None:
    """Re-wrap every personal-data key under a new master key and retire the old one
    (a key-store backup made before is then useless without the old master key)."""
    from infra.personal_keys import rotate_master_key

    try:
        rotation = rotate_master_key(Settings(), new_key_file)
    except ValueError as refused:
        raise Refused(str(refused)) from None
    console.print(
        f"re-wrapped {rotation.rewrapped} keys under master key {rotation.master_key_id} "
        f"({rotation.master_key_file.resolve()})"
    )
    if new_key_file is not None:
        console.print("point GAM_MASTER_KEY_FILE at it and remove GAM_MASTER_KEY, then restart gam's processes")


subject_access_cli = _group("subject-access", "Compliance: a person's right of access (GDPR Art. 15).")


@subject_access_cli.command("stakeholder")
def subject_access_stakeholder(
    stakeholder_id: Annotated[UUID, typer.Argument(help="The stakeholder's id.")],
    actor: Annotated[str, typer.Option(envvar="GAM_ACTOR", help="Who asks (default: $GAM_ACTOR).")],
    legal_basis: Annotated[
        str, typer.Option(help="Why the data is disclosed, e.g. 'GDPR Art. 15 request #4711'.")
    ] = "GDPR Art. 15 (right of access)",
) -> None:
    """Everything gam holds about the person, as JSON on standard output: their fields and
    interactions, the deals they influence, where they are named, and who changed what about
    them and when. The request is recorded (who asked, the legal basis, when)."""
    from services.subject_access import request_subject_access

    with _store() as runtime:
        report = request_subject_access(
            runtime.app,
            runtime.access_log,
            stakeholder_id,
            requested_by=actor,
            legal_basis=legal_basis,
            at=datetime.now(UTC),
            key_fetches=runtime.key_fetch_log,
        )
    print(json.dumps(report, indent=2, ensure_ascii=False))


@subject_access_cli.command("requests")
def subject_access_requests(
    stakeholder_id: Annotated[
        UUID | None, typer.Option("--stakeholder", help="Only requests about this person.")
    ] = None,
) -> None:
    """The subject-access requests answered so far (who asked about whom, why, when), oldest first, as JSON."""
    from services.subject_access import access_request_json

    with _store() as runtime:
        requests = runtime.access_log.requests(stakeholder_id)
    print(json.dumps([access_request_json(r) for r in requests], indent=2, ensure_ascii=False))


retention_cli = _group("retention", "Compliance: erase people some time after they left the customer.")


@retention_cli.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list who would be erased; store nothing.")] = False,
    actor: Annotated[
        str, typer.Option(envvar="GAM_ACTOR", help="Who the erasures name (default: $GAM_ACTOR, else the policy).")
    ] = "retention-policy",
) -> None:
    """Erase the personal data of everyone who left the customer more than
    GAM_RETENTION_AFTER_DEPARTURE_DAYS days ago (each an erasure with the policy as its
    legal basis). People already erased are skipped, so a run can be repeated."""
    from services.retention import erase_leavers, leavers_due

    now = datetime.now(UTC)
    with _store() as runtime:
        days = runtime.settings.retention_after_departure_days
        if days is None:
            raise Refused("no retention policy: set GAM_RETENTION_AFTER_DEPARTURE_DAYS to the days to keep leavers")
        due = leavers_due(runtime.app, days, now.date())
        if not dry_run:
            erase_leavers(runtime.bus, days, due, now=now, actor=actor)
    verb = "would erase" if dry_run else "erased"
    for leaver in due:
        console.print(f"{verb} {leaver.stakeholder_id} (account {leaver.account_id}, left on {leaver.left_on})")
    console.print(
        f"{len(due)} {'would be erased' if dry_run else 'erased'}: left more than {days} days before {now.date()}"
    )


IMPORT_BATCH = 500
"""``gam import``'s commands per transaction by default (``services.importer.DEFAULT_BATCH``:
the importer builds a model per command at import, so only ``gam import`` loads it)."""

WORKER_START_SECONDS = 60


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (each with its own PostgreSQL pools).")
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs): commands, queries (views kept up to date in process), compliance."""
    import uvicorn

    from services.api.app import create_app

    settings = Settings()
    console.print(f"[dim]store:[/dim] {settings.describe_store()}")
    if not settings.jwt_secret and settings.jwt_public_key_file is None and settings.api_keys_file is None:
        console.print(
            "[yellow]no GAM_JWT_SECRET, GAM_JWT_PUBLIC_KEY_FILE or GAM_API_KEYS_FILE: every call will be 401[/]"
        )
    served = {"host": host, "port": port, "log_config": None, "access_log": False, "server_header": False}
    if workers > 1:  # each worker builds its own app from the same GAM_* environment
        # A worker starts by importing gam (seconds on a busy machine): uvicorn's 5 s health
        # check of a new worker restarted it over and over.
        uvicorn.run(
            "services.api.app:create_worker_app",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_START_SECONDS,
            **served,  # type: ignore[arg-type]
        )
    else:
        uvicorn.run(create_app(settings, server_process=True), **served)  # type: ignore[arg-type]


@cli.command()
def token(
    subject: Annotated[str, typer.Option("--sub", help="Who the caller is; the actor of their events.")],
    role: Annotated[
        list[str] | None,
        typer.Option(help="A global role (repeatable): admin, compliance, viewer_all, account_creator."),
    ] = None,
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30, help="How long the token is valid.")] = 8,
) -> None:
    """Mint a bearer token signed with GAM_JWT_SECRET (for development and scripts;
    production tokens come from your identity provider). It names the caller and their
    global roles; what they may do on an account comes from its team."""
    import jwt

    from services.api.auth import CredentialError, principal_from_claims

    settings = Settings()
    if not settings.jwt_secret:
        raise Refused("GAM_JWT_SECRET is not set; it signs the token", exit_code=2)
    claims = {"sub": subject, "roles": role or [], "exp": int(datetime.now(UTC).timestamp() + hours * 3600)}
    try:
        principal_from_claims(claims)
    except CredentialError as error:
        raise typer.BadParameter(str(error), param_hint="--role") from None
    print(jwt.encode(claims, settings.jwt_secret, algorithm="HS256"))


@cli.command("import")
def import_commands(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines: one command per line.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and decide every command; store nothing.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Commands per transaction.")] = IMPORT_BATCH,
    actor: Annotated[str, typer.Option(help="Who the events name as their actor.")] = "import",
    reason: Annotated[str | None, typer.Option(help="Why; kept with every event.")] = None,
) -> None:
    """Load commands from a JSON-lines file (each line as POST /batches takes one: its fields and a
    ``type``), in batches of one transaction each. Every line is validated first. Re-running after a
    crash resumes where the last stored batch ended and applies nothing twice (progress: FILE.progress)."""
    from services.importer import ImportRefused, import_file

    with _store() as runtime:
        try:
            columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, console=diagnostics) as bar:
                task = bar.add_task("import", total=None)
                summary = import_file(
                    runtime.bus,
                    file,
                    actor=actor,
                    reason=reason,
                    batch_size=batch,
                    dry_run=dry_run,
                    on_batch=lambda done, total: bar.update(task, completed=done, total=total),
                )
        except ImportRefused as refused:
            raise Refused(f"refused {file}: {refused}") from None
    rate = summary.applied / summary.seconds if summary.seconds else 0.0
    verb = "checked" if dry_run else "applied"
    console.print(
        f"{summary.lines} commands: {summary.applied} {verb} in {summary.batches} batches, "
        f"{summary.skipped} already stored; {summary.seconds:.1f} s ({rate:,.0f} commands/s); "
        f"log position {summary.position}"
    )


def main() -> None:
    from services.observability.startup import run

    run(cli)


if __name__ == "__main__":
    main()
