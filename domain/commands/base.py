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
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cache
from typing import Annotated, Any, ClassVar, get_args, get_origin, get_type_hints

from domain.personal_text import TextKind

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
    text: TextKind | None = None
    """For text: whether it is personal free text, business free text checked for
    personal data, or a label (see :class:`~domain.personal_text.TextKind`)."""


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
        return {name: getattr(self, name) for name in _argument_names(type(self))}

    @classmethod
    def text_fields(cls) -> dict[str, TextKind | None]:
        """Every field that holds text (a string or strings), with what its ``Spec`` says
        it may hold (None: not said, which the guard's tests refuse)."""
        return _text_fields(cls)

    def text_kind(self, field: str) -> TextKind | None:
        """What the field holds in this command; a command whose field is personal only in
        some cases (MEDDPICC evidence about a person) says so by overriding this."""
        return self.text_fields().get(field)

    def checked_texts(self) -> Iterator[tuple[str, str]]:
        """``(path, text)`` of every non-empty business free text in this command, the path
        as ``field`` or ``field.index`` for one of several strings."""
        for name in self.text_fields():
            if self.text_kind(name) is not TextKind.CHECKED:
                continue
            value = getattr(self, name)
            if isinstance(value, str) and value:
                yield name, value
            elif isinstance(value, tuple):
                yield from ((f"{name}.{i}", item) for i, item in enumerate(value) if isinstance(item, str) and item)

    @property
    def entity_id(self) -> Any:
        return getattr(self, self.entity_field)

    @property
    def created_id(self) -> Any:
        return getattr(self, self.created) if self.created else None


_ARGUMENT_NAMES: dict[type[Command], tuple[str, ...]] = {}


def _argument_names(kind: type[Command]) -> tuple[str, ...]:
    """Read once per command type (``dataclasses.fields`` for every command was a tenth
    of a bulk import's deciding)."""
    names = _ARGUMENT_NAMES.get(kind)
    if names is None:
        names = _ARGUMENT_NAMES[kind] = tuple(
            f.name for f in fields(kind) if kind.creates or f.name != kind.entity_field
        )
    return names


def _holds_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    return any(_holds_text(arg) for arg in get_args(annotation) if arg is not Ellipsis)


_TEXT_FIELDS: dict[type[Command], dict[str, TextKind | None]] = {}


def _text_fields(kind: type[Command]) -> dict[str, TextKind | None]:
    """Read once per command type: the bus asks for every command it handles."""
    known = _TEXT_FIELDS.get(kind)
    if known is not None:
        return known
    hints = get_type_hints(kind, include_extras=True)
    found: dict[str, TextKind | None] = {}
    for f in fields(kind):
        hint = hints[f.name]
        extras = get_args(hint)[1:] if get_origin(hint) is Annotated else ()
        base = get_args(hint)[0] if extras else hint
        if _holds_text(base):
            spec = next((e for e in extras if isinstance(e, Spec)), None)
            found[f.name] = spec.text if spec else None
    _TEXT_FIELDS[kind] = found
    return found
