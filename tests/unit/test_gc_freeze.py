"""A server process freezes what its start-up built, so full collections skip it; the
app alone, as tests and embedding code build it, leaves the collector as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from services.api.app import create_app
from services.gc_freeze import freeze_start_up_objects, kept_out_of_collections


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # this test process must keep collecting what it made


def test_start_up_objects_are_left_out_of_later_collections(unfrozen: None) -> None:
    built_at_start = [[index] for index in range(1000)]
    freeze_start_up_objects()
    assert gc.get_freeze_count() >= len(built_at_start)
    collected_in_full = {id(item) for item in gc.get_objects(generation=2)}
    assert not any(id(item) in collected_in_full for item in built_at_start)
    made_later = [0]
    gc.collect()
    assert id(made_later) in {id(item) for item in gc.get_objects(generation=2)}


def test_the_api_server_freezes_once_it_is_up_and_the_app_alone_does_not(unfrozen: None) -> None:
    with TestClient(create_app(Settings(store="memory"))) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0
    with TestClient(create_app(Settings(store="memory"), server_process=True)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000, "modules, classes and the app itself"


def test_what_an_import_holds_is_built_with_the_collector_paused_then_frozen_until_it_is_done(unfrozen: None) -> None:
    seen: list[bool] = []

    def build() -> list[list[int]]:
        seen.append(gc.isenabled())
        return [[index] for index in range(1000)]

    with kept_out_of_collections(build) as lines:
        assert seen == [False]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(lines)
    assert gc.get_freeze_count() == 0  # released with the rest when the block ends


def test_a_process_that_froze_its_start_up_is_not_unfrozen_by_an_import(unfrozen: None) -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with kept_out_of_collections(lambda: [[index] for index in range(1000)]):
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == frozen
