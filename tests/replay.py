"""Drive random commands and keep, for every aggregate, the object that made the
last decision, to compare with what the store rebuilds."""

from __future__ import annotations

import copy
from uuid import UUID

from domain.base import GamAggregate
from services.app import CommandResult, GamApplication


class RecordingApplication(GamApplication):
    """Remembers a copy of each aggregate as it was when its events were committed."""

    name = "gam"  # the same tables as the application it stands in for

    def __init__(self, env: dict[str, str] | None = None, snapshot_interval: int | None = None) -> None:
        super().__init__(env, snapshot_interval)
        self.decided: dict[UUID, GamAggregate] = {}

    def commit(self, primary: GamAggregate, *others: GamAggregate) -> CommandResult:
        result = super().commit(primary, *others)
        for aggregate in (primary, *others):
            self.decided[aggregate.id] = copy.deepcopy(aggregate)
        return result


def assert_store_rebuilds_what_was_decided(decided: dict[UUID, GamAggregate], *readers: GamApplication) -> None:
    for entity_id, in_memory in decided.items():
        for reader in readers:
            rebuilt = reader.repository.get(entity_id)
            assert rebuilt == in_memory, f"{type(in_memory).__name__} {entity_id} differs after a reload"
            assert rebuilt.version == len(list(reader.events.get(entity_id)))
