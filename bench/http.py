"""gam over HTTP: the demo's command mix sent to the real API (uvicorn, httpx)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.mix import Command
from infra.settings import Settings


class Unavailable(Exception):
    """The API cannot run this workload (yet)."""


def commands_rate(settings: Settings, traces: Sequence[Sequence[Command]], concurrency: int) -> float:
    raise Unavailable("not wired yet")
