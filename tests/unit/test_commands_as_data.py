"""Commands are data: every command type has one registry line, one route and one
body derived from its dataclass, and its JSON form (batches, import files) and its
HTTP body both read back to the same command."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.commands import COMMANDS, COMMANDS_BY_NAME, Command
from services.api.command_models import body_model, command_json, path_parameters
from services.api.routes.commands import PATHS
from services.handlers import HANDLINGS
from services.importer import _LINE
from tests.command_strategies import command_strategy, commands


def test_every_command_has_one_handling_and_one_route() -> None:
    assert set(HANDLINGS) == set(COMMANDS) == set(PATHS)
    assert len(COMMANDS_BY_NAME) == len(COMMANDS)
    assert len(set(PATHS.values())) == len(PATHS)


@pytest.mark.parametrize("kind", COMMANDS, ids=lambda kind: kind.__name__)
def test_a_route_carries_its_entity_in_the_path_unless_it_creates_one(kind: type[Command]) -> None:
    in_path = path_parameters(PATHS[kind])
    assert in_path <= {field.name for field in dataclasses.fields(kind)}
    if kind.creates:
        assert kind.entity_field not in in_path or kind.entity_field == "account_id"
    else:
        assert kind.entity_field in in_path


@given(commands())
@settings(max_examples=300, deadline=None)
def test_a_command_reads_back_from_its_json(command: Command) -> None:
    assert _LINE.validate_python(command_json(command)).command() == command


@given(st.sampled_from(COMMANDS).flatmap(command_strategy))
@settings(max_examples=300, deadline=None)
def test_a_command_reads_back_from_its_http_body_and_path(command: Command) -> None:
    kind = type(command)
    in_path = path_parameters(PATHS[kind])
    item = command_json(command)
    body = body_model(kind, in_path).model_validate({k: v for k, v in item.items() if k not in in_path | {"type"}})
    assert kind(**body.command_fields(), **{name: getattr(command, name) for name in in_path}) == command
