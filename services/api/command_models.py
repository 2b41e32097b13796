"""HTTP request bodies derived from the command dataclasses, so a field is declared
once (in ``domain.commands``) with its limits and examples.

Each command becomes a pydantic model of the fields its URL does not carry, plus
``reason``; the domain's value objects are read through their request shapes
(``services.api.values``), which validate by building the domain value, so a
refusal carries the field path of the value that was wrong.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, create_model
from pydantic_core import to_jsonable_python

from domain.commands import Command, Spec
from domain.values import Money, PersonalData, Target
from services.api.values import DomainValue, Moment, MoneyIn, PersonalDataIn, TargetIn

REQUEST_SHAPES: dict[Any, Any] = {Money: MoneyIn, Target: TargetIn, PersonalData: PersonalDataIn, datetime: Moment}
"""Domain types read through a request shape of their own."""


class CommandBody(BaseModel):
    """Fields every command accepts besides its own. Unknown fields are refused,
    so a misspelt field is an error rather than silently ignored."""

    model_config = {"extra": "forbid"}

    reason: str | None = Field(
        default=None,
        max_length=2000,
        description="Why the change is made; kept with the event for the audit trail.",
        examples=["Agreed in the Q3 business review"],
    )

    def command_fields(self) -> dict[str, Any]:
        """The command's fields from this body, as domain values."""
        return {name: _to_domain(getattr(self, name)) for name in type(self).model_fields if name != "reason"}


def _to_domain(value: Any) -> Any:
    if isinstance(value, DomainValue):
        return value.to_domain()
    if isinstance(value, list):
        return tuple(_to_domain(item) for item in value)
    return value


def _request_type(annotation: Any) -> Any:
    """The type a request carries for a command field's type."""
    if annotation in REQUEST_SHAPES:
        return REQUEST_SHAPES[annotation]
    origin = get_origin(annotation)
    if origin is tuple:
        return list[_request_type(get_args(annotation)[0])]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        members = tuple(_request_type(arg) for arg in get_args(annotation))
        return Union[members]  # noqa: UP007 - built from a tuple
    return annotation


def _field_info(spec: Spec | None, field: dataclasses.Field[Any]) -> Any:
    options: dict[str, Any] = {}
    if spec is not None:
        options = {
            name: getattr(spec, name)
            for name in ("description", "min_length", "max_length", "pattern", "ge", "le")
            if getattr(spec, name) is not None
        }
        if spec.examples:
            options["examples"] = [list(e) if isinstance(e, tuple) else e for e in spec.examples]
    if field.default is not dataclasses.MISSING:
        default = field.default
        if isinstance(default, tuple):
            return Field(default_factory=lambda d=default: list(d), **options)
        return Field(default=default, **options)
    if field.default_factory is not dataclasses.MISSING:
        return Field(default_factory=field.default_factory, **options)
    return Field(**options)


def _definitions(command: type[Command], path_fields: frozenset[str]) -> dict[str, Any]:
    hints = typing.get_type_hints(command, include_extras=True)
    definitions: dict[str, Any] = {}
    for field in dataclasses.fields(command):
        if field.name in path_fields:
            continue
        annotation = hints[field.name]
        spec = None
        if get_origin(annotation) is Annotated:
            annotation, *extras = get_args(annotation)
            spec = next((e for e in extras if isinstance(e, Spec)), None)
        definitions[field.name] = (_request_type(annotation), _field_info(spec, field))
    return definitions


def body_model(command: type[Command], path_fields: frozenset[str]) -> type[CommandBody]:
    """The request body of ``command``: its fields but those the path carries."""
    definitions = _definitions(command, path_fields)
    return create_model(f"{command.__name__}Body", __base__=CommandBody, __doc__=command.__doc__, **definitions)


class BatchItem(BaseModel):
    """One command of a batch: the fields of its single endpoint (path ones
    included), its ``type``, and optionally the version its entity must have."""

    model_config = {"extra": "forbid"}

    expected_version: int | None = Field(
        default=None, ge=0, description="The entity's version when this command runs (as If-Match); none: any."
    )

    command_type: ClassVar[type[Command]]
    command_fields: ClassVar[tuple[str, ...]]
    """The fields that are the command's, named once per item type rather than asked of
    pydantic for every command ``gam import`` makes (1.8 against 2.8 µs a command)."""

    def command(self) -> Command:
        values = self.__dict__
        return self.command_type(**{name: _to_domain(values[name]) for name in self.command_fields})


def item_model(command: type[Command]) -> type[BatchItem]:
    """A batch item of ``command``, told apart from the others by ``type``."""
    definitions = _definitions(command, frozenset())
    name = command.type_name()
    definitions["type"] = (Literal[name], Field(description="Which command: its single endpoint's operation id."))
    model = create_model(f"{command.__name__}Item", __base__=BatchItem, __doc__=command.__doc__, **definitions)
    model.command_type = command
    model.command_fields = tuple(name for name in model.model_fields if name not in {"type", "expected_version"})
    return model


def command_json(command: Command, expected_version: int | None = None) -> dict[str, Any]:
    """The command as a batch item or import line (the inverse of :meth:`BatchItem.command`)."""
    item: dict[str, Any] = {"type": command.type_name(), **to_jsonable_python(dataclasses.asdict(command))}
    if expected_version is not None:
        item["expected_version"] = expected_version
    return item


def path_parameters(path: str) -> frozenset[str]:
    return frozenset(part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}"))
