"""What every command is: plain, immutable data that names what someone asks for.

A command says *what* is asked (imperative: ``CascadeObjective``); the aggregate
it targets decides whether it may happen and which events follow. Commands carry
no actor, clock or version: those come from the edge with the request
(:class:`~domain.metadata.EventMetadata`, If-Match), so a command means the same
from HTTP, a batch, an import file or a test.

A field says once what it accepts, with :class:`Spec` in its annotation; the
edges (HTTP bodies, import files, test strategies) derive their validation and
documentation from it, so they cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, ClassVar

_WORD_BREAK = re.compile(r"(?<!^)(?=[A-Z])")


@cache
def _snake_case(name: str) -> str:
    """Cached: a bulk import asks three times per line, and the regular expression cost it a tenth of its time."""
    return _WORD_BREAK.sub("_", name).lower()


@dataclass(frozen=True)
class Spec:
    """What one command field accepts, beyond its type, and how it is explained."""

    description: str | None = None
    examples: tuple[Any, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    ge: int | None = None
    le: int | None = None


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of every command.

    ``entity_field`` names the field holding the id of the aggregate the command
    changes or ``creates``; ``created`` the field holding the id of what a change
    creates inside it (an objective, an action), which the caller gets back."""

    entity_field: ClassVar[str]
    created: ClassVar[str | None] = None
    creates: ClassVar[bool] = False

    @classmethod
    def type_name(cls) -> str:
        """The command's name in data: ``CascadeObjective`` → ``cascade_objective``."""
        return _snake_case(cls.__name__)

    def arguments(self) -> dict[str, Any]:
        """The fields the deciding method takes: all of them for a creation (the
        factory takes the new id), all but the entity's id for a change."""
        return {f.name: getattr(self, f.name) for f in fields(self) if self.creates or f.name != self.entity_field}

    @property
    def entity_id(self) -> Any:
        return getattr(self, self.entity_field)

    @property
    def created_id(self) -> Any:
        return getattr(self, self.created) if self.created else None
