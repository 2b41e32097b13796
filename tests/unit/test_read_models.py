"""Reads carry the position their view reached, and can wait (bounded) for a
position the caller wrote (read-your-writes)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest

from domain.values import Money
from infra.settings import Settings
from projections.account_view import TIMELESS
from services import handlers as h
from services.app import GamApplication
from services.projector import Projector, ViewNotReady
from services.read_models import ReadModels
from tests.support import meta
from tests.unit.world import World, build_world


def test_a_read_waits_for_the_callers_write_and_reports_the_position(memory_app: GamApplication) -> None:
    world = build_world(memory_app)
    projector = Projector.in_memory(memory_app)
    projector.catch_up()
    written = h.change_deal_probability(memory_app, meta(), deal_id=world.deal, probability=55)
    reads = ReadModels(projector, wait_seconds=5)

    catcher = threading.Timer(0.2, projector.catch_up)
    catcher.start()
    started = time.monotonic()
    result = reads.account_view(world.account, now=datetime.now(UTC), min_position=written.position)
    catcher.join()

    assert time.monotonic() - started >= 0.15  # it waited for the projector
    assert result.position >= written.position
    assert result.data is not None
    assert result.data["position"] == written.position


def test_a_read_gives_up_after_the_bound(memory_app: GamApplication) -> None:
    world = build_world(memory_app)
    projector = Projector.in_memory(memory_app, ["audit_trail"])
    projector.catch_up()
    written = h.change_deal_probability(memory_app, meta(), deal_id=world.deal, probability=55)
    reads = ReadModels(projector, wait_seconds=0.2)
    with pytest.raises(ViewNotReady) as not_ready:
        reads.entity_history(world.deal, min_position=written.position)
    assert (not_ready.value.wanted, not_ready.value.reached) == (written.position, written.position - 1)


def test_exchange_rates_from_a_file(memory_app: GamApplication, tmp_path: Path) -> None:
    world = build_world(memory_app)
    h.open_deal(memory_app, meta(), deal_id=uuid4(), account_id=world.account, unit_id=world.paris,
                title="USD deal", amount=Money(Decimal(100), "USD"), expected_close=date(2027, 3, 1),
                owner="bob")  # fmt: skip
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"base": "EUR", "as_of": "2026-11-01", "source": "treasury", "rates": {"USD": "2"}}))
    projector = Projector.in_memory(memory_app, ["account_view"])
    projector.catch_up()
    reads = ReadModels.from_settings(projector, Settings(store="memory", fx_rates_file=rates))
    pipeline = reads.account_view(world.account, now=datetime.now(UTC)).data["pipeline"]  # type: ignore[index]
    assert pipeline["rates"]["source"] == "treasury"
    assert pipeline["rates"]["used"]["USD"] == "0.5"
    assert pipeline["by_stage"]["prospecting"]["unweighted"] == "1050.00"  # 1000 EUR + 100 USD at 0.5


def caught_up(app: GamApplication) -> tuple[World, Projector, ReadModels]:
    """A small world, every view caught up, and the reads on them."""
    world = build_world(app)
    projector = Projector.in_memory(app)
    projector.catch_up()
    return world, projector, ReadModels(projector)


def test_reads_of_an_unchanged_account_share_its_timeless_sections_and_a_change_derives_them_again(
    memory_app: GamApplication,
) -> None:
    """Roll-ups, whitespace, unit tree and win rate are kept per state of the account;
    the sections that depend on today, and a changed account's, are derived again."""
    world, projector, reads = caught_up(memory_app)
    now = datetime.now(UTC)

    first = reads.account_view(world.account, now=now).data
    later = reads.account_view(world.account, now=now + timedelta(days=400)).data
    assert first is not None
    assert later is not None
    assert all(later[name] is first[name] for name in TIMELESS)
    assert later == ReadModels(projector).account_view(world.account, now=now + timedelta(days=400)).data
    assert later["pipeline"] != first["pipeline"]  # the open deal is overdue 400 days on: derived for that day

    h.change_deal_probability(memory_app, meta(), deal_id=world.deal, probability=90)
    projector.catch_up()
    changed = reads.account_view(world.account, now=now).data
    assert changed is not None
    assert changed["rollups"] != first["rollups"]  # the deal's weighted value, up the tree
    assert changed == ReadModels(projector).account_view(world.account, now=now).data


def test_other_content_at_the_same_position_is_derived_again(
    memory_app: GamApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a rebuild with changed projection code writes: another document at the same
    position. The sections kept from the generation it replaced are not served on."""
    world, projector, reads = caught_up(memory_app)
    now = datetime.now(UTC)
    before = reads.account_view(world.account, now=now).data
    assert before is not None

    view = projector.view("account_view")
    stored = view.document
    deal = str(world.deal)

    def rebuilt(key: str) -> dict[str, object] | None:
        document = stored(key)
        if document is not None and deal in document.get("deals", {}):
            document["deals"][deal]["probability"] = 5  # same position, other content
        return document

    monkeypatch.setattr(view, "document", rebuilt)
    after = reads.account_view(world.account, now=now).data
    assert after is not None
    assert after["position"] == before["position"]
    assert after["rollups"] != before["rollups"]
    assert after == ReadModels(projector).account_view(world.account, now=now).data
