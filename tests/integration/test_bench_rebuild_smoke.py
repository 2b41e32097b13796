"""The rebuild and read benchmarks at a tiny size on SQLite: every figure is
positive and finite, the tables render. Never a speed assertion."""

from __future__ import annotations

import math
from pathlib import Path

from bench import reads, rebuild
from bench.report import rebuild_section
from infra.settings import Settings
from services.projector import PROJECTIONS


def test_the_rebuild_benchmark_measures_every_view_and_the_read_baseline(tmp_path: Path) -> None:
    figures = rebuild.measure_store(
        Settings(store="sqlite", sqlite_path=tmp_path / "rebuild.db"), 700, 1, 1, lambda _: None
    )

    assert figures["events"] == 700
    assert set(figures["events_per_s"]) == {*PROJECTIONS, rebuild.ALL, rebuild.ALL_IN_PROCESSES}
    rates = [figures["read_rows_per_s"], *figures["events_per_s"].values(), *figures["events_per_cpu_s"].values()]
    assert all(math.isfinite(r["median"]) and r["median"] > 0 for r in rates)
    assert all(v > 0 for v in figures["vs_sequential_read"].values())
    table = rebuild.render({"size": {"events": 700, "accounts": 1, "repeats": 1}, "stores": {"sqlite": figures}})
    (tmp_path / "rebuild.md").write_text(table)
    assert rebuild_section(tmp_path)[-2] == table.strip()


def test_the_read_benchmark_times_each_route_whole_and_in_part(tmp_path: Path) -> None:
    figures = reads.measure_store(Settings(store="sqlite", sqlite_path=tmp_path / "reads.db"), 2, 1)

    assert all(f["median"] > 0 for f in figures["ms"].values())
    assert set(figures["speedup"]) == {*reads.ROUTES, "orjson"}
    assert "| sqlite | pipeline: its sections only |" in reads.render(
        {"size": {"reads": 2, "repeats": 1}, "stores": {"sqlite": figures}}
    )
