"""The benchmark harness at a tiny size: every workload and contender produces
positive figures and computed ratios. Never a speed assertion: the figures are
checked for sense, not for size."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.report import markdown
from bench.suite import TINY, WORKLOAD_ORDER, run_suite

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

CONTENDERS = {
    "commands": {"gam", "crud", "ceiling", "raw_eventsourcing"},
    "bulk_import": {"gam", "crud", "ceiling"},
    "view_read": {"gam", "crud", "ceiling"},
    "as_of": {"gam", "gam_entities_only", "crud", "ceiling"},
    "rebuild": {"gam", "crud", "ceiling"},
    "relay": {"gam", "crud", "ceiling"},
}
SCALING_METRICS = ("command_latency_ms", "view_read_ms", "as_of_s", "rebuild_s")


def sane(figure: dict[str, float]) -> bool:
    return all(math.isfinite(v) and v > 0 for v in figure.values()) and (
        figure["min"] <= figure["median"] <= figure["max"]
    )


def test_every_workload_and_contender_yields_sane_figures(
    postgres_dsn: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = run_suite(postgres_dsn, kafka_bootstrap, "test broker", TINY, log=lambda _: None)

    assert tuple(result["workloads"]) == WORKLOAD_ORDER
    for name, workload in result["workloads"].items():
        figures = workload["figures"]
        assert CONTENDERS[name] <= set(figures), name
        assert all(sane(f) for f in figures.values()), (name, figures)
        assert {"gam_vs_crud", "gam_vs_ceiling", "crud_vs_ceiling"} <= set(workload["ratios"]), name
        assert all(math.isfinite(r) and r > 0 for r in workload["ratios"].values()), (name, workload["ratios"])
    commands = result["workloads"]["commands"]
    assert "gam_vs_raw_eventsourcing" in commands["ratios"]
    # gam over HTTP is either measured or left out with a reason the report quotes.
    assert "gam_http" in commands["figures"] or result["left_out"]["gam_http"]
    if "gam_http" in commands["figures"]:
        assert commands["ratios"]["gam_http_vs_gam"] > 0

    for axis in ("events_per_account", "accounts"):
        assert result["scaling"][axis]
        for point in result["scaling"][axis]:
            assert point["events"] >= TINY.scale_events[0] * point["accounts"] * 0.9
            for metric in SCALING_METRICS:
                figures = point[metric]["figures"]
                assert {"gam", "crud", "ceiling"} <= set(figures), metric
                assert all(sane(f) for f in figures.values()), (metric, figures)

    for point in result["strategy_flow_build"]:
        assert point["strategy_flow_s"] > 0
        assert point["account_view_and_audit_trail_s"] > 0

    machine = result["machine"]
    assert machine["cores"] >= 1
    assert machine["memory_gib"] > 0
    assert machine["eventsourcing"]
    assert machine["postgresql"]

    text = markdown(result, "results/x.json", [], tmp_path, "python -m bench")
    for title in ("Demo command mix", "Bulk import", "Account view read", "As-of query", "Projection rebuild",
                  "Relay to Kafka"):  # fmt: skip
        assert f"| {title}" in text
