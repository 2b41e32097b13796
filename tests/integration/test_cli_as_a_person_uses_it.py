"""The ``gam`` CLI as a person uses it, on a real SQLite store seeded by ``gam demo``:
bad input is one line on standard error and a non-zero exit, never a traceback;
help shows choices and time formats; tables fit 80 columns; ``--json`` is JSON alone."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from services.cli import cli
from services.demo import demo_id

ACCOUNT = str(demo_id(0, "account"))
TABLE_LINE = re.compile(r"^[┏┃┡│└]")


@dataclass
class Gam:
    """Runs ``gam`` in this process against one store, as a person at an 80-column terminal."""

    store: Path

    def __call__(self, *args: str, columns: int = 80) -> Result:
        env = {"GAM_STORE": "sqlite", "GAM_SQLITE_PATH": str(self.store), "COLUMNS": str(columns)}
        return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture(scope="module")
def gam(tmp_path_factory: pytest.TempPathFactory) -> Gam:
    return Gam(tmp_path_factory.mktemp("cli") / "gam.db")


@pytest.fixture(scope="module")
def demo(gam: Gam) -> Result:
    result = gam("demo")
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result: Result, code: int) -> str:
    """The failure as a person sees it: one line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("store:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


def test_version(gam: Gam) -> None:
    result = gam("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"gam \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["replay", "--account", "nope", "--as-of", "2027-01-01"], "'--account'"),
        (["audit", "verify", "--account", "nope"], "'--account'"),
        (["diff", "--account", ACCOUNT, "--from", "yesterday", "--to", "2027-01-01"], "00:00 UTC"),
        (["erase", "stakeholder", "12345", "--legal-basis", "GDPR", "--actor", "dpo"], "UUID"),
        (["audit", "export", "--format", "xml"], "'xml' is not one of 'jsonl', 'csv'"),
        (["replay", "--acount", ACCOUNT], "No such option: --acount"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(gam: Gam, args: list[str], says: str) -> None:
    line = one_line_error(gam(*args), 2)
    assert says in line
    assert "--help" in line  # where to look next


def test_an_unknown_account_is_refused_rather_than_reported_on(gam: Gam, demo: Result) -> None:
    unknown = str(uuid4())
    for args in (
        ["audit", "verify", "--account", unknown],
        ["replay", "--account", unknown, "--as-of", "2027-01-01"],
        ["diff", "--account", unknown, "--from", "2026-01-01", "--to", "2027-01-01"],
        ["audit", "export", "--account", unknown],
    ):
        line = one_line_error(gam(*args), 1)
        assert f"no account {unknown}" in line
    intact = gam("audit", "verify", "--account", ACCOUNT)
    assert intact.exit_code == 0, intact.output
    assert "chain intact" in intact.stdout


def test_a_refusal_by_a_rule_is_one_line_naming_it(gam: Gam, demo: Result) -> None:
    line = one_line_error(gam("erase", "stakeholder", str(uuid4()), "--legal-basis", "GDPR", "--actor", "dpo"), 1)
    assert "refused (not_found)" in line


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(Gam(tmp_path / "no such folder" / "gam.db")("store"), 1)
    assert line.startswith(f"gam: the event store is unavailable (SQLite file {tmp_path / 'no such folder'}")


def test_before_the_account_existed_is_said_plainly(gam: Gam, demo: Result) -> None:
    line = one_line_error(gam("replay", "--account", ACCOUNT, "--as-of", "2020-01-01"), 1)
    assert "did not exist yet at 2020-01-01T00:00:00+00:00" in line


def every_command_path() -> list[list[str]]:
    group = get_command(cli)
    paths: list[list[str]] = [[]]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


def test_help_shows_choices_and_time_formats_without_type_noise(gam: Gam) -> None:
    for path in every_command_path():
        result = gam(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, path
    export = gam("audit", "export", "--help").stdout
    assert "--format <jsonl|csv>" in export
    assert "--from TIME" in export
    replay = " ".join(gam("replay", "--help").stdout.split())
    assert "2027-03-31, meaning 00:00 UTC" in replay
    assert "2027-03-31T14:30+02:00" in replay
    assert "--version" in gam("--help").stdout


def test_a_bare_date_means_midnight_utc_and_an_offset_is_honoured(gam: Gam, demo: Result) -> None:
    for moment, shown in (
        ("2026-09-02", "as of 2026-09-02T00:00:00+00:00"),
        ("2026-09-02T02:00+02:00", "as of 2026-09-02T00:00:00+00:00"),
        ("2026-09-02 00:00:00", "as of 2026-09-02T00:00:00+00:00"),
    ):
        result = gam("replay", "--account", ACCOUNT, "--as-of", moment)
        assert result.exit_code == 0, result.output
        assert shown in result.stdout


def test_the_demo_fits_80_columns_names_the_account_and_what_to_try(demo: Result) -> None:
    tables = [line for line in demo.stdout.splitlines() if TABLE_LINE.match(line)]
    assert tables
    assert max(len(line) for line in tables) <= 80
    assert "Standardise on our automation pl…" in demo.stdout  # cut, not wrapped
    assert f"account id: {ACCOUNT}" in demo.stdout
    assert f"gam replay --account {ACCOUNT} --as-of" in demo.stdout
    assert "gam serve" in demo.stdout
    assert demo.stderr.startswith("store: SQLite file")


def test_wide_shows_every_title_in_full(gam: Gam, demo: Result) -> None:
    result = gam("demo", "--wide", columns=160)
    assert result.exit_code == 0, result.output
    assert "already in the store" in result.stdout
    assert "Standardise on our automation platform │" in result.stdout
    assert "taken %" in result.stdout


def test_the_replay_summary_shows_the_plan_and_its_cascade(gam: Gam, demo: Result) -> None:
    result = gam("replay", "--account", ACCOUNT, "--as-of", "2026-09-02")
    assert result.exit_code == 0, result.output
    assert "Plan FY2027 (draft)" in result.stdout
    cascade = next(line for line in result.stdout.splitlines() if line.startswith("cascade:"))
    assert re.match(r"cascade: \d+ directives — \d+ adopted, \d+ adapted, \d+ declined", cascade)
    assert "Grow digital services" in result.stdout
    assert "open deals past their close date: 0" in " ".join(result.stdout.split())
    later = " ".join(gam("replay", "--account", ACCOUNT, "--as-of", "2027-06-01").stdout.split())
    overdue = re.search(r"open deals past their close date: (\d+)", later)
    assert overdue is not None
    assert int(overdue.group(1)) > 0  # the demo's deals close from January 2027


def test_json_is_alone_on_stdout(gam: Gam, demo: Result) -> None:
    result = gam("replay", "--account", ACCOUNT, "--as-of", "2026-12-01", "--json")
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["account_id"] == ACCOUNT
    assert result.stderr.startswith("store: SQLite file")


def test_accounts_are_listed_from_the_views_and_searched(gam: Gam, demo: Result) -> None:
    seeded = gam("demo", "--accounts", "2")
    assert seeded.exit_code == 0, seeded.output
    listed = gam("accounts")
    assert listed.exit_code == 0, listed.output
    assert "2 accounts" in listed.stdout
    assert f"│ Nordwind Industrial Group    │ DE │ {ACCOUNT} │" in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    found = json.loads(gam("accounts", "--search", "group #1", "--json").stdout)
    assert [(row["id"], row["name"], row["open_deals"]) for row in found] == [
        (str(demo_id(1, "account")), "Nordwind Industrial Group #1", 25)
    ]
    assert json.loads(gam("accounts", "--search", "tier_1", "--json").stdout)[0]["id"] == ACCOUNT
    assert json.loads(gam("accounts", "--search", "no such text", "--json").stdout) == []


def test_show_account_reads_like_the_account_view_with_its_plans(gam: Gam, demo: Result) -> None:
    result = gam("show", "account", ACCOUNT)
    assert result.exit_code == 0, result.output
    for part in ("Account view: Nordwind Industrial Group", "Open pipeline by stage", "Plan FY2027 (approved)"):
        assert part in result.stdout
    assert max(len(line) for line in result.stdout.splitlines() if TABLE_LINE.match(line)) <= 80
    assert "no account" in one_line_error(gam("show", "account", str(uuid4())), 1)
    assert "'deal'" in one_line_error(gam("show", "deal", ACCOUNT), 2)
