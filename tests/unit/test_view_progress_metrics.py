"""How far a rebuild (or a catch-up) has come, per view, as a gauge an operator can
watch: it moves with each batch, reads 1 at the end, and ``gam_view_rebuilding`` is 1
only while the rebuild runs."""

from __future__ import annotations

from prometheus_client import REGISTRY

from domain.commands import CreateAccount
from services.app import GamApplication
from services.handlers import bus_for
from services.projector import Projector
from tests.support import meta


def gauge(name: str, view: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"view": view})


def test_the_progress_gauges_follow_a_rebuild_view_by_view(memory_app: GamApplication) -> None:
    for _ in range(3):
        bus_for(memory_app).handle(
            CreateAccount(name="Nordwind", industry="Machinery", hq_country="DE", reporting_currency="EUR"), meta()
        )
    projector = Projector.in_memory(memory_app)
    projector.catch_up()
    assert all(gauge("gam_view_catch_up_progress_ratio", name) == 1.0 for name in projector.projections)

    seen: list[tuple[str, float | None, float | None, float]] = []

    def progress(name: str, done: int, total: int) -> None:
        seen.append(
            (name, gauge("gam_view_rebuilding", name), gauge("gam_view_catch_up_progress_ratio", name), done / total)
        )

    projector.rebuild(["audit_trail"], progress=progress)
    assert seen
    assert all(name == "audit_trail" and rebuilding == 1 and ratio == share for name, rebuilding, ratio, share in seen)
    assert gauge("gam_view_rebuilding", "audit_trail") == 0
    assert gauge("gam_view_catch_up_progress_ratio", "audit_trail") == 1.0
