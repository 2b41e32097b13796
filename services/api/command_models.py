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
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, create_model

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


def body_model(command: type[Command], path_fields: frozenset[str]) -> type[CommandBody]:
    """The request body of ``command``: its fields but those the path carries."""
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
    return create_model(f"{command.__name__}Body", __base__=CommandBody, __doc__=command.__doc__, **definitions)


def path_parameters(path: str) -> frozenset[str]:
    return frozenset(part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}"))
