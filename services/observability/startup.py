"""How every ``gam`` process starts and how it fails.

Logging is configured before the command runs (:mod:`.logs`). A command that
fails with an error nobody handled (typically: the database cannot be reached)
ends with one log line naming the cause and a non-zero exit, instead of a
screenful of traceback that hides it; ``--debug`` (anywhere on the command line)
shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from services.observability import tracing
from services.observability.logs import configured_from_environment

log = logging.getLogger("gam")

EXIT_FAILED = 1


def run(main: Callable[[], object], argv: list[str] | None = None) -> None:
    """Run the CLI's ``main`` as a process: logging configured, failures as one line."""
    argv = sys.argv if argv is None else argv
    debug = "--debug" in argv[1:]
    if debug:
        argv.remove("--debug")
        os.environ["GAM_LOG_LEVEL"] = "DEBUG"
        os.environ["GAM_DEBUG"] = "1"  # the command group then lets the traceback through
    process = _command(argv)
    configured_from_environment(process)
    tracing.configured_from_environment(process)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        if debug:
            raise
        log.critical("cannot go on: %s (run with --debug for the traceback)", describe(error))
        sys.exit(EXIT_FAILED)


def _command(argv: list[str]) -> str:
    """The subcommand's name (``serve``, ``project``...), which names the process in its logs."""
    return next((arg for arg in argv[1:] if not arg.startswith("-")), "gam")


def describe(error: BaseException) -> str:
    """The cause in one line: for the database, where gam tried to reach it (never the password)."""
    import psycopg
    from eventsourcing import persistence
    from psycopg_pool import PoolTimeout
    from pydantic import ValidationError

    if isinstance(error, ValidationError):  # the settings: name each bad variable and why
        return "; ".join(f"GAM_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}" for e in error.errors())
    first_line = (str(error).strip().splitlines() or [""])[0]
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(
            cause, psycopg.OperationalError | PoolTimeout | persistence.OperationalError | persistence.InterfaceError
        ):
            return f"the PostgreSQL database at {_where()} cannot be reached ({first_line or type(error).__name__})"
        cause = cause.__cause__ or cause.__context__
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def _where() -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(os.environ.get("GAM_POSTGRES_DSN", ""))
    except Exception:
        return "GAM_POSTGRES_DSN (which cannot be parsed)"
    host = str(params.get("host") or "localhost")
    place = f"socket directory {host}" if host.startswith("/") else f"host {host} port {params.get('port') or 5432}"
    return f"{place}, database {params.get('dbname') or '?'}"
