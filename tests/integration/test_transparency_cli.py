"""``gam audit checkpoint | prove | consistency | witness`` as an operator and an
auditor run them, on the embedded SQLite default: in this process (the commands are
many, a process start is slow on a busy machine), and a real process for the alarm."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from infra.hash_chain import CHAIN_TABLE
from infra.merkle_store import CHECKPOINTS
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from services.cli import cli
from tests.api_support import SECRET, token
from tests.integration.test_cli import _gam
from tests.kafka_broker import free_port, wait_for_port
from tests.support import meta
from tests.unit.builders import build_org


def _store(tmp_path: Path, deal: object = None, changes: int = 0) -> object:
    app = GamApplication(Settings(store="sqlite", sqlite_path=tmp_path / "gam.db").eventsourcing_env())
    try:
        deal = deal or build_org(app).deal()
        for n in range(changes):
            h.change_deal_probability(app, meta(), deal_id=deal, probability=20 + n)
        return deal
    finally:
        app.close()


def _run(*args: str, cwd: Path) -> Result:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        for name in ("GAM_STORE", "GAM_SQLITE_PATH", "GAM_SIGNING_KEY_FILE", "GAM_CHECKPOINT_DIR"):
            patch.delenv(name, raising=False)
        return CliRunner().invoke(cli, list(args))


def test_an_operator_signs_proves_and_a_witness_follows_then_catches_a_deletion(tmp_path: Path) -> None:
    deal = _store(tmp_path)
    signed = _run("audit", "checkpoint", cwd=tmp_path)
    assert signed.exit_code == 0, signed.output
    origin, size, _root, blank, signature = signed.stdout.splitlines()
    assert (origin, blank, signature.split(" ")[:2]) == ("gam.local/events", "", ["\u2014", "gam.local/events"])
    key = _run("audit", "checkpoint", "--public-key", cwd=tmp_path).stdout.strip()
    assert key.startswith("gam.local/events+")
    assert (tmp_path / "gam.db.signing-key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "gam.db.checkpoints" / f"{int(size):020d}.checkpoint").read_text() == signed.stdout

    held = tmp_path / "witness.checkpoint"
    first = _run("audit", "witness", "--checkpoint", str(held), "--key", key, cwd=tmp_path)
    assert (first.exit_code, first.stdout) == (0, f"holding the first checkpoint: {size} events\n")
    (tmp_path / "old.checkpoint").write_text(held.read_text())

    _store(tmp_path, deal, changes=4)
    proof = json.loads(_run("audit", "prove", "--position", "3", cwd=tmp_path).stdout)
    assert (proof["position"], proof["leaf_index"], proof["tree_size"]) == (3, 2, int(size) + 4)
    consistency = _run("audit", "consistency", "--from", str(tmp_path / "old.checkpoint"), cwd=tmp_path)
    assert json.loads(consistency.stdout)["first"] == int(size)
    grew = _run("audit", "witness", "--checkpoint", str(held), "--every", "0.1", "--seconds", "0.25", cwd=tmp_path)
    assert grew.exit_code == 0, grew.output
    checks = grew.stdout.splitlines()  # a witness process: it checks again until its time is up
    assert len(checks) >= 2
    assert set(checks) == {f"consistent: the log grew to {int(size) + 4} events"}

    with sqlite3.connect(tmp_path / "gam.db") as conn:  # an insider drops the newest events and their links
        conn.execute("DELETE FROM stored_events WHERE rowid > ?", (int(size),))
        conn.execute(f"DELETE FROM {CHAIN_TABLE} WHERE position > ?", (int(size),))
    caught = _gam("audit", "witness", "--checkpoint", str(held), cwd=tmp_path)
    assert caught.returncode == 1
    assert "Traceback" not in caught.stderr
    (line,) = [line for line in caught.stderr.splitlines() if not line.startswith("store:")]
    assert line == f"deleted events: the store holds {size} events, the signed checkpoint covers {int(size) + 4}"
    assert held.read_text().splitlines()[1] == str(int(size) + 4)  # the witness still holds what it verified


@contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    """``gam serve``'s app on a real socket (the witness speaks HTTP with urllib), in a thread."""
    import uvicorn

    from services.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_witness_over_http_follows_the_log_and_catches_a_rollback(tmp_path: Path) -> None:
    deal = _store(tmp_path)
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", jwt_secret=SECRET)
    officer = token("auditor@vendor.example", "compliance")["Authorization"].removeprefix("Bearer ")
    held = tmp_path / "held.checkpoint"

    def witness(base: str) -> Result:
        return _run("audit", "witness", "--checkpoint", str(held), "--url", base, "--token", officer, cwd=tmp_path)

    with _serving(settings) as base:
        key = _run("audit", "checkpoint", "--public-key", cwd=tmp_path).stdout.strip()
        first = _until_signed(lambda: _run("audit", "witness", "--checkpoint", str(held), "--url", base,
                                           "--token", officer, "--key", key, cwd=tmp_path))  # fmt: skip
        assert first.stdout.startswith("holding the first checkpoint")
        size = int(held.read_text().splitlines()[1])
        _store(tmp_path, deal, changes=3)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GAM_CHECKPOINT_VERIFIER_KEY", key)
            deadline = time.monotonic() + 20
            while int(held.read_text().splitlines()[1]) < size + 3:  # the server signs every 0.5 s
                grew = witness(base)
                assert grew.exit_code == 0, grew.output
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert grew.stdout == f"consistent: the log grew to {size + 3} events\n"
            with sqlite3.connect(tmp_path / "gam.db") as conn:  # an insider drops the newest checkpoints
                conn.execute(f"DELETE FROM {CHECKPOINTS} WHERE tree_size > ?", (size,))
            caught = witness(base)
    assert caught.exit_code == 1
    assert (
        f"rollback: the log's latest checkpoint covers {size} events, fewer than the {size + 3} held" in caught.output
    )
    assert not caught.stdout


def _until_signed(run: Callable[[], Result]) -> Result:
    deadline = time.monotonic() + 20
    while (result := run()).exit_code != 0:
        assert time.monotonic() < deadline, result.output
        time.sleep(0.2)
    return result


def test_the_commands_refuse_in_one_line(tmp_path: Path) -> None:
    empty = _run("audit", "checkpoint", cwd=tmp_path)
    assert (empty.exit_code, empty.stderr.splitlines()[-1]) == (1, "the log is empty: no checkpoint to sign yet")
    alone = _run("audit", "witness", "--checkpoint", "held", cwd=tmp_path)
    assert (alone.exit_code, alone.stderr.splitlines()[-1]) == (1, "the log has signed no checkpoint yet")
    deal = _store(tmp_path)
    ran = _run("audit", "checkpointer", "--seconds", "0.3", cwd=tmp_path)
    assert ran.exit_code == 0, ran.output
    assert ran.stderr.splitlines()[-1] == "signed 1 checkpoints"
    _store(tmp_path, deal, changes=1)
    beyond = _run("audit", "prove", "--position", "999", cwd=tmp_path)
    assert (beyond.exit_code, beyond.stderr.splitlines()[-1]) == (
        1,
        f"position 999 is not covered by the checkpoint of {deal_size(tmp_path)} events",
    )
    (tmp_path / "forged").write_text("gam.local/events\n1\nAAAA\n\n\u2014 gam.local/events AAAAAAAA\n")
    forged = _run("audit", "consistency", "--from", str(tmp_path / "forged"), cwd=tmp_path)
    assert (forged.exit_code, forged.stderr.splitlines()[-1]) == (
        1,
        f"{tmp_path / 'forged'}: the checkpoint carries no signature of gam.local/events",
    )
    held = _run("audit", "witness", "--checkpoint", str(tmp_path / "forged"), cwd=tmp_path)
    assert held.stderr.splitlines()[-1].startswith("the checkpoint held does not verify")
    no_key = _run("audit", "witness", "--checkpoint", "held", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert no_key.stderr.splitlines()[-1].startswith("--url needs the log's verifier key")
    key = _run("audit", "checkpoint", "--public-key", cwd=tmp_path).stdout.strip()
    down = _run("audit", "witness", "--checkpoint", "held", "--url", f"http://127.0.0.1:{free_port()}", "--key", key,
                cwd=tmp_path)  # fmt: skip
    assert down.stderr.splitlines()[-1].startswith("cannot reach the log at http://127.0.0.1:")


def deal_size(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "gam.db") as conn:
        return int(conn.execute(f"SELECT MAX(tree_size) FROM {CHECKPOINTS}").fetchone()[0])
