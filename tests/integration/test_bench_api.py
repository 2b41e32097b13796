"""The API benchmark at a tiny size, against a real ``gam serve`` on PostgreSQL: the
result file has every figure, each positive with min ≤ median ≤ max. Never a speed
assertion: the figures are checked for sense, not for size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.api import WORKERS, Sizes, demo_traces, postgres_run, to_step, write
from services.api.routes.commands import PATHS

pytestmark = pytest.mark.postgres

TINY = Sizes(concurrency=2, commands_per_account=45, repeats=1, reads=4)
"""45 commands reach the plan, whose ETag the client must first read (onboarding answers with the account's)."""


def sane(figure: dict[str, float]) -> bool:
    values = figure["min"], figure["median"], figure["max"]
    return all(math.isfinite(v) and v > 0 for v in values) and values[0] <= values[1] <= values[2]


def test_every_command_of_the_demo_mix_has_a_route() -> None:
    (trace,) = demo_traces(1)
    steps = [to_step(command) for command in trace]
    assert {type(step.command.command) for step in steps} <= set(PATHS)
    assert all("{" not in step.path for step in steps)
    assert all((step.entity_id is None) == step.command.command.creates for step in steps)


def test_the_benchmark_writes_sane_figures(postgres_dsn: str, tmp_path: Path) -> None:
    write(postgres_run(postgres_dsn, TINY, tmp_path), tmp_path)

    result = json.loads((tmp_path / "api.json").read_text(encoding="utf-8"))
    assert result["benchmark"] == "api"
    assert result["machine"]["postgresql"]
    assert result["sizes"] == {
        "concurrency": 2,
        "accounts": 2,
        "commands_per_repeat": 90,
        "etag_reads_per_repeat": 2,
        "repeats": 1,
        "view_reads_per_repeat": 4,
    }
    commands = result["commands"]
    assert set(commands) == {"http", "http_views_apart", "http_workers", "direct", "direct_with_views"}
    for name, figures in commands.items():
        assert {"commands_per_s", "p50_ms", "p99_ms", "bench_cpu_ms_per_command"} <= set(figures), name
        assert all(sane(figure) for figure in figures.values()), (name, figures)
    assert "server_cpu_ms_per_command" in commands["http"]
    assert {"server_cpu_ms_per_command", "project_cpu_ms_per_command"} <= set(commands["http_views_apart"])
    assert {"server_cpu_ms_per_command", "project_cpu_ms_per_command"} <= set(commands["http_workers"])
    assert "project_cpu_ms_per_command" not in commands["http"]
    assert all(math.isfinite(r) and r > 0 for r in result["ratios"].values())
    assert set(result["ratios"]) == {
        "http_vs_direct",
        "http_vs_direct_with_views",
        "http_views_apart_vs_direct",
        "http_workers_vs_direct",
    }
    for mode in ("sequential", "concurrent"):
        figures = result["view_reads"][mode]
        assert set(figures) == {"reads_per_s", "p50_ms", "p99_ms"}
        assert all(sane(figure) for figure in figures.values()), (mode, figures)
    table = (tmp_path / "api.md").read_text(encoding="utf-8")
    assert "HTTP ÷ service layer" in table
    assert "views in `gam project`" in table
    assert f"`gam serve --workers {WORKERS}`" in table
    assert "/accounts/{id}/view" in table
