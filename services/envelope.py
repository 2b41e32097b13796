"""The published form of an event: a CloudEvents 1.0 JSON envelope (structured
mode) plus Kafka headers, with personal data sealed.

Downstream services code against this. ``id`` is the event's stable id
(entity and version), so a republished event carries the same id and
consumers drop duplicates by it.

Personal data never leaves in clear, but it does leave: each personal field
(``domain.catalog.PERSONAL_DATA_FIELDS``: a stakeholder's ``personal`` block,
interaction summaries, a deal's buying-influence notes and evidence naming a
stakeholder) is published as the ciphertext the event store holds, named with
whose key opens it (:func:`sealed_field`)::

    {"sealed": "<base64: 12-byte nonce, ciphertext, 16-byte tag>",
     "alg": "A256GCM", "subject": "<person's uuid>",
     "key_id": "personal:<person's uuid>:v1", "aad": "<person's uuid>/<field>"}

A service holding the ``personal_data`` scope fetches the subject's key
(``GET /compliance/personal-keys/{subject}``, recorded), decrypts with ``aad`` as
additional authenticated data, and reads the plaintext as UTF-8 JSON in gam's stored
form (a value object as ``{"_type_": ..., "_data_": {...}}``). The subject is named
explicitly, not implied by the event's entity, since free text on one entity may be
sealed under another person's key (the subject field ``PERSONAL_DATA_FIELDS`` names).
Once the person is erased the key is gone (410), and so, for every copy of every
message, is their data. The relay never opens anything: it publishes what it reads
(``infra.event_facts``). A personal value that is not sealed (stored before sealing
existed) is published as :data:`REDACTED`, never in clear.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from domain.base import GamEvent, event_id_text
from domain.catalog import PERSONAL_DATA_FIELDS, entity_type_of_class, personal_fields, subject_in
from infra.personal_keys import KEY_ALGORITHM, key_id_of
from projections.encoding import dumps_bytes
from projections.facts import EventFacts

SPEC_VERSION = "1.0"
SOURCE = "urn:gam:event-store"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
REDACTED = "[redacted]"
"""A personal value that is not sealed in the store: published as this, never in clear."""
PERSONAL_FIELDS = PERSONAL_DATA_FIELDS
"""Fields that hold personal data, by event class; they are published sealed."""


@functools.cache
def cloud_event_type_of(event_class: type[GamEvent]) -> str:
    """``gam.deal.StageAdvanced``: stable, and the key of the event's JSON Schema
    (remembered per class)."""
    return f"gam.{entity_type_of_class(event_class)}.{event_class.__name__}"


def cloud_event_type(event: GamEvent) -> str:
    return cloud_event_type_of(type(event))


def schema_version(event: GamEvent) -> int:
    return schema_version_of(type(event))


def schema_version_of(event_class: type[GamEvent]) -> int:
    return int(getattr(event_class, "class_version", 1))


def sealed_field(sealed: str, subject: str, field: str) -> dict[str, str]:
    """A personal field as published: the stored ciphertext and what opens it."""
    return {"sealed": sealed, "alg": KEY_ALGORITHM, "subject": subject, "key_id": key_id_of(subject),
            "aad": f"{subject}/{field}"}  # fmt: skip


def published_value(value: Any, subject: str, field: str) -> Any:
    if isinstance(value, dict) and isinstance(sealed := value.get("sealed"), str) and len(value) == 1:
        return sealed_field(sealed, subject, field)
    return REDACTED


def published_data(facts: EventFacts) -> dict[str, Any]:
    """The event's business fields as JSON, personal data sealed (as the store holds it,
    under its subject's key). A field holding nothing, or evidence that names no one
    (business text), is published as it is."""
    data = dict(facts.payload)
    for field, subject_field in personal_fields(facts.event_class).items():
        value = data.get(field)
        subject = subject_in(subject_field, facts.payload, facts.entity)
        if value is not None and subject is not None:
            data[field] = published_value(value, str(subject), field)
    data["actor"] = facts.actor
    data["reason"] = facts.reason
    data["version"] = facts.version
    return data


@dataclass(frozen=True)
class Message:
    """One Kafka record: key, value and headers."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class _ClassForm(NamedTuple):
    """What every message of one event class shares, worked out once per class: the
    relay writes it for every event it publishes."""

    kind: str
    subject_prefix: str
    dataschema: str
    headers: tuple[tuple[str, bytes], ...]
    """``content-type``, ``ce_type`` and ``schema-version``."""


@functools.cache
def _class_form(event_class: type[GamEvent]) -> _ClassForm:
    kind = cloud_event_type_of(event_class)
    version = schema_version_of(event_class)
    return _ClassForm(
        kind=kind,
        subject_prefix=f"{entity_type_of_class(event_class)}/",
        dataschema=f"urn:gam:schema:{kind}:v{version}",
        headers=(
            ("content-type", CONTENT_TYPE.encode()),
            ("ce_type", kind.encode()),
            ("schema-version", str(version).encode()),
        ),
    )


def _envelope(
    facts: EventFacts, form: _ClassForm, account: str | None, position: int, event_id: str, correlation: str
) -> dict[str, Any]:
    """The CloudEvents envelope, from parts :func:`message_of` made once: ``event_id``
    (a UUIDv5, also a header), the account and the correlation id as text."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": SOURCE,
        "type": form.kind,
        "subject": form.subject_prefix + facts.entity,
        "time": facts.at,
        "datacontenttype": "application/json",
        "dataschema": form.dataschema,
        "gamaccount": account,
        "gamposition": position,
        "gamcorrelation": correlation,
        "gamcausation": None if facts.causation_id is None else str(facts.causation_id),
        "data": published_data(facts),
    }


def message_of(facts: EventFacts, *, account_id: UUID | None, position: int) -> Message:
    """The record of an event, from its facts as the relay reads them from the stored
    JSON (``infra.event_facts``, personal data still sealed). Keyed by account, so each
    account's events stay in order on one partition. (A domain event has its personal
    data opened, so there is no way from one to a message: it would publish redacted.)

    Each id is made text once and each class's constant parts once
    (:func:`_class_form`): this runs for every event the relay publishes, and building
    the message was most of the relay's own work per event."""
    form = _class_form(facts.event_class)
    event_id = event_id_text(facts.entity, facts.version)
    account = None if account_id is None else str(account_id)
    correlation = str(facts.correlation_id)
    return Message(
        key=(account or facts.entity).encode(),
        value=dumps_bytes(_envelope(facts, form, account, position, event_id, correlation)),
        headers=[
            *form.headers[:2],
            ("ce_id", event_id.encode()),
            form.headers[2],
            ("correlation-id", correlation.encode()),
        ],
    )
