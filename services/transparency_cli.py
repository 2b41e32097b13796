"""``gam audit checkpoint | prove | consistency | witness | checkpointer``: the
transparency log from the command line (``services.transparency``).

Proofs and checkpoints go to standard output (JSON, or the checkpoint note as it
is signed), so they can be piped to ``docs/verify_audit_log.py`` or saved for a
witness; which store is used goes to standard error. The witness prints one line
and exits 1 on anything wrong, never a traceback.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.checkpoints import CheckpointError, NoteVerifier
from services.bootstrap import Runtime
from services.transparency import (
    CheckpointSource,
    HttpSource,
    LogInconsistent,
    ProofUnavailable,
    StoreSource,
    TransparencyLog,
    WitnessAlarm,
    witness,
)

OpenStore = Callable[..., Runtime]
err = Console(stderr=True)


def _log(runtime: Runtime) -> TransparencyLog:
    try:
        return runtime.transparency
    except CheckpointError as error:
        raise _fail(str(error)) from None


def _up_to_date(runtime: Runtime) -> None:
    """Bring the tree up to date and sign a checkpoint over it if it grew, as a follower would."""
    try:
        _log(runtime).step(force=True)
    except LogInconsistent as error:
        err.print(f"[red]not signing:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def export_checkpoint(runtime: Runtime, note_file: Path | None) -> tuple[TransparencyLog | None, int]:
    """The log and the size of the signed checkpoint an audit export is cut at (signed now if the
    tree grew), its note written to ``note_file``; (None, 0) for a store that signs no checkpoints."""
    try:
        transparency = runtime.transparency
    except CheckpointError as error:
        err.print(f"[yellow]the export carries no checkpoint:[/yellow] {error}", highlight=False)
        return None, 0
    _up_to_date(runtime)
    latest = transparency.latest()
    if latest is None:
        return None, 0
    if note_file is not None:
        note_file.write_text(latest.note, encoding="utf-8")
    return transparency, latest.size


def _witness_once(checkpoint_file: Path, verifier: NoteVerifier, source: CheckpointSource) -> None:
    held = checkpoint_file.read_text(encoding="utf-8") if checkpoint_file.exists() else None
    new = witness(held, verifier, source)
    if new.note != held:  # written whole, then renamed: a crash never leaves half a checkpoint held
        temporary = checkpoint_file.with_name(checkpoint_file.name + ".tmp")
        temporary.write_text(new.note, encoding="utf-8")
        os.replace(temporary, checkpoint_file)
    if held is None:
        print(f"holding the first checkpoint: {new.size} events", flush=True)
    else:
        print(f"consistent: the log grew to {new.size} events", flush=True)


def register(audit: typer.Typer, open_store: OpenStore) -> None:
    """Add the transparency commands to ``gam audit``."""

    def runtime_for() -> Runtime:
        return open_store(out=err)

    @audit.command("checkpoint")
    def checkpoint(
        public_key: Annotated[
            bool, typer.Option("--public-key", help="Print the note verifier key (name+keyid+key) instead.")
        ] = False,
    ) -> None:
        """Print the log's latest signed checkpoint (C2SP tlog-checkpoint, signed note), after bringing
        the Merkle tree up to date and signing a new checkpoint if it grew."""
        runtime = runtime_for()
        try:
            if public_key:
                print(_log(runtime).verifier)
                return
            _up_to_date(runtime)
            latest = _log(runtime).latest()
            if latest is None:
                raise _fail("the log is empty: no checkpoint to sign yet")
            print(latest.note, end="")
        finally:
            runtime.close()

    @audit.command("prove")
    def prove(
        position: Annotated[int, typer.Option(min=1, help="The event's log position.")],
        tree_size: Annotated[
            int | None, typer.Option(min=1, help="Prove against this tree size (default: the latest checkpoint).")
        ] = None,
    ) -> None:
        """An inclusion proof (RFC 9162) of one event against the latest signed checkpoint, as JSON."""
        runtime = runtime_for()
        try:
            _up_to_date(runtime)
            try:
                proof = _log(runtime).inclusion(position, tree_size)
            except ProofUnavailable as error:
                raise _fail(str(error)) from None
            print(json.dumps(proof.as_json(), indent=2, ensure_ascii=False))
        finally:
            runtime.close()

    @audit.command("consistency")
    def consistency(
        from_file: Annotated[
            Path, typer.Option("--from", exists=True, dir_okay=False, help="An older signed checkpoint.")
        ],
    ) -> None:
        """A consistency proof (RFC 9162) from an older checkpoint to the latest one, as JSON."""
        runtime = runtime_for()
        try:
            _up_to_date(runtime)
            from infra.checkpoints import open_checkpoint

            try:
                older = open_checkpoint(from_file.read_text(encoding="utf-8"), _log(runtime).verifier)
                proof = _log(runtime).consistency(older.size)
            except (CheckpointError, ProofUnavailable) as error:
                raise _fail(f"{from_file}: {error}") from None
            print(json.dumps(proof.as_json(), indent=2, ensure_ascii=False))
        finally:
            runtime.close()

    @audit.command("witness")
    def witness_command(
        checkpoint_file: Annotated[
            Path, typer.Option("--checkpoint", dir_okay=False, help="The checkpoint this witness holds (updated).")
        ],
        url: Annotated[
            str | None, typer.Option(help="Fetch from this gam API instead of the store, e.g. http://host:8000.")
        ] = None,
        token: Annotated[str | None, typer.Option(envvar="GAM_TOKEN", help="Bearer token for --url.")] = None,
        key: Annotated[
            str | None,
            typer.Option(
                envvar="GAM_CHECKPOINT_VERIFIER_KEY",
                help="The log's note verifier key (default: the local signing key's; required with --url).",
            ),
        ] = None,
        every: Annotated[
            float | None, typer.Option(min=0.05, help="Keep watching: check again every this many seconds.")
        ] = None,
        seconds: Annotated[float | None, typer.Option(help="With --every: stop after this many seconds.")] = None,
    ) -> None:
        """Check the log's latest checkpoint against the one held: signature, consistency (the log only
        grew) and, reading the store, the events themselves. Exit 0 and hold the new checkpoint when the
        log only grew; exit 1 with one line on a fork, a rollback, a deleted or rewritten event. With
        --every, a witness process that checks until it finds something wrong (or is stopped)."""
        if url is not None and key is None:
            raise _fail("--url needs the log's verifier key (--key or GAM_CHECKPOINT_VERIFIER_KEY)")
        runtime: Runtime | None = None
        try:
            source: CheckpointSource
            if url is not None:
                source = HttpSource(url, token)
            else:
                runtime = runtime_for()
                source = StoreSource(_log(runtime))
            if key:
                verifier = NoteVerifier.parse(key)
            else:
                assert runtime is not None  # without a key, the store was opened above (--url needs a key)
                verifier = _log(runtime).verifier
            deadline = None if seconds is None else time.monotonic() + seconds
            while True:
                _witness_once(checkpoint_file, verifier, source)
                if every is None or (deadline is not None and time.monotonic() >= deadline):
                    return
                time.sleep(every)
        except (WitnessAlarm, CheckpointError) as alarm:
            raise _fail(str(alarm)) from None
        except KeyboardInterrupt:
            err.print("stopped")
        finally:
            if runtime is not None:
                runtime.close()

    @audit.command("checkpointer")
    def checkpointer(
        seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    ) -> None:
        """Keep the Merkle tree up to date and sign and publish checkpoints every
        GAM_CHECKPOINT_EVERY_EVENTS events or GAM_CHECKPOINT_EVERY_SECONDS seconds (gam serve does it too)."""
        runtime = runtime_for()
        try:
            err.print(f"checkpointing as {_log(runtime).verifier}", highlight=False)
            signed = _log(runtime).run(seconds=seconds)
            err.print(f"signed {signed} checkpoints")
        except KeyboardInterrupt:
            err.print("stopped")
        finally:
            runtime.close()
