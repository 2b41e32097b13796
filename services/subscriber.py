"""The reference consumer: how a downstream service subscribes to gam's events.

It joins a consumer group, processes each record, and commits the group's
offsets only after processing, so a crash re-delivers rather than loses.
Re-delivery and a relay's republishing mean a consumer sees some events twice:
each event's ``id`` is stable, and within one entity (``subject``) versions
only grow, so :class:`Deduplicator` drops anything at or below the last version
seen for its subject. A durable service keeps that per-subject version in its
own database, in the same transaction as its own effects.

Personal data arrives sealed under each person's key (``services.envelope``).
:class:`SealedOpener` shows what a service with the ``personal_data`` scope does:
it fetches a person's key from the API the first time it meets one of their sealed
fields, keeps it, opens the fields, and forgets the key when the person's erasure
event (``gam.stakeholder.PersonalDataErased``) arrives; from then on, and for
anyone whose key the API answers 410 for, the fields read ``[erased]``. Without key
access they read ``[sealed]``.

Each record is processed in a consumer span, a child of the record's
``traceparent`` (the relay's send, itself under the commit), so one trace runs
from the request through the commit, the views and the message to the consumer.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.kafka import create_consumer
from infra.personal_keys import KEY_ALGORITHM, key_id_of, open_with
from infra.settings import Settings
from services.http_get import http_get
from services.observability import tracing

Envelope = dict[str, Any]
SEALED = "[sealed]"
"""A personal field this consumer may not open (no ``personal_data`` scope, or no API)."""
ERASED = "[erased]"
"""A personal field of someone erased: their key is gone, here and at the source."""
ERASURE_TYPE = "gam.stakeholder.PersonalDataErased"


class KeyServiceUnavailable(RuntimeError):
    """The key endpoint could not answer (unreachable, 5xx, 429): the record is not
    processed, so the consumer stops before committing it and it is delivered again,
    rather than shown ``[sealed]`` or skipped."""


@dataclass(frozen=True)
class KeyAnswer:
    """What the key endpoint said: the key, or that it is gone (410), or that this
    consumer may not have it (401/403/404, or no API configured)."""

    outcome: Literal["key", "gone", "refused"]
    key: bytes | None = None
    key_id: str | None = None
    why: str = ""


class HttpKeySource:
    """``GET /compliance/personal-keys/{subject}`` with a service API key (``X-API-Key``)."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            msg = f"not an http(s) URL: {base_url}"
            raise ValueError(msg)
        self.base_url, self.api_key, self.timeout = base_url.rstrip("/"), api_key, timeout

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            return http_get(self.base_url + path, {"X-API-Key": self.api_key}, self.timeout)
        except OSError as error:
            msg = f"gam's API at {self.base_url} cannot be reached for a key: {error}"
            raise KeyServiceUnavailable(msg) from None


def key_answer(status: int, body: bytes) -> KeyAnswer:
    if status == 429 or status >= 500:
        msg = f"gam's API answered {status} for a key; try again later"
        raise KeyServiceUnavailable(msg)
    if status == 200:
        granted = json.loads(body)
        return KeyAnswer("key", base64.b64decode(granted["key"]), granted["key_id"])
    if status == 410:
        return KeyAnswer("gone", why="erased")
    try:
        why = str(json.loads(body).get("detail", status))
    except ValueError:
        why = str(status)
    return KeyAnswer("refused", why=why)


@dataclass
class SealedOpener:
    """Opens the sealed personal fields of envelopes with keys fetched once per person.

    ``get`` fetches a path of the API (``HttpKeySource.get``; ``None``: no key access,
    every sealed field reads ``[sealed]``). Keys are cached by ``key_id``; the erasure
    event of a person drops theirs and marks them erased for good, so a re-delivered
    or republished event of theirs shows ``[erased]`` without asking again."""

    get: Callable[[str], tuple[int, bytes]] | None = None
    keys: dict[str, bytes] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)
    """Subjects whose key was refused, and why (asked once)."""
    fetches: int = 0

    def observe(self, envelope: Envelope) -> None:
        """Forget a person's key when their erasure event passes."""
        if envelope.get("type") == ERASURE_TYPE:
            subject = str(envelope["subject"]).split("/", 1)[1]
            self.keys.pop(key_id_of(subject), None)
            self.erased.add(subject)

    def opened(self, envelope: Envelope) -> Envelope:
        """The envelope with each sealed field replaced by its value (or ``[erased]`` /
        ``[sealed]``); the envelope passed in is left as it is."""
        data = envelope.get("data") or {}
        if not any(_is_sealed(v) for v in data.values()):
            return envelope
        return {**envelope, "data": {k: self.open_field(v) if _is_sealed(v) else v for k, v in data.items()}}

    def open_field(self, sealed: dict[str, str]) -> Any:
        subject = sealed["subject"]
        if subject in self.erased:
            return ERASED
        key = self._key(subject, sealed["key_id"])
        if key is None:
            return ERASED if subject in self.erased else SEALED
        try:
            plaintext = open_with(key, sealed["aad"], sealed["sealed"])
        except InvalidTag:
            return SEALED  # not sealed under the key the API gave for this subject
        return plain_value(json.loads(plaintext))

    def _key(self, subject: str, key_id: str) -> bytes | None:
        if key_id in self.keys:
            return self.keys[key_id]
        if self.get is None or subject in self.refused:
            return None
        self.fetches += 1
        answer = key_answer(*self.get(f"/compliance/personal-keys/{urllib.parse.quote(subject)}"))
        if answer.outcome == "gone":
            self.erased.add(subject)
            return None
        if answer.outcome == "refused" or answer.key is None:
            self.refused[subject] = answer.why
            return None
        self.keys[answer.key_id or key_id] = answer.key
        return self.keys.get(key_id)


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("alg") == KEY_ALGORITHM and "sealed" in value


def plain_value(value: Any) -> Any:
    """gam's stored JSON as plain JSON: a value object ``{"_type_": ..., "_data_": x}`` is ``x``."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return plain_value(value["_data_"])
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value


class Deduplicator:
    def __init__(self) -> None:
        self.last_version: dict[str, int] = {}

    def is_new(self, envelope: Envelope) -> bool:
        subject, version = envelope["subject"], int(envelope["data"]["version"])
        if version <= self.last_version.get(subject, 0):
            return False
        self.last_version[subject] = version
        return True


def describe(envelope: Envelope) -> str:
    """One readable line per event (a person's data as a name where it was opened)."""
    data = envelope["data"]
    fields = ", ".join(
        f"{k}={_readable(v)}"
        for k, v in data.items()
        if k not in {"actor", "reason", "version"} and v not in (None, [], "")
    )
    reason = f" — {data['reason']}" if data.get("reason") else ""
    return f"#{envelope['gamposition']} {envelope['time']} {envelope['type']} by {data['actor']}: {fields}{reason}"


def _readable(value: Any) -> Any:
    """A person's opened ``personal`` block reads as their name (contact details are not printed)."""
    if isinstance(value, dict) and isinstance(value.get("name"), str) and {"email", "phone"} <= set(value):
        return value["name"]
    if _is_sealed(value):
        return SEALED
    return value


class RecordProcessor:
    """What the consumer does with one record, in a consumer span under the record's
    ``traceparent``: read it, drop it if already seen (or not of the account asked
    for), forget keys at erasures, open sealed fields, hand it on. Whether it was handed on."""

    def __init__(
        self,
        handle: Callable[[Envelope], None],
        *,
        account: str | None = None,
        opener: SealedOpener | None = None,
        dedup: Deduplicator | None = None,
    ) -> None:
        self.handle = handle
        self.account = account
        self.opener = opener or SealedOpener()
        self.dedup = dedup or Deduplicator()

    def __call__(self, record: ConsumerRecord) -> bool:
        headers = dict(record.headers or [])
        traceparent = headers.get("traceparent")
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.kafka.offset": record.offset,
        }
        with tracing.consumer_span(
            f"process {record.topic}", traceparent.decode() if traceparent else None, attributes
        ):
            envelope = json.loads(record.value)
            self.opener.observe(envelope)
            if self.account is not None and envelope.get("gamaccount") != self.account:
                return False
            if not self.dedup.is_new(envelope):
                return False
            self.handle(self.opener.opened(envelope))
            return True


def subscribe(
    settings: Settings,
    *,
    group: str,
    handle: Callable[[Envelope], None],
    account: str | None = None,
    topic: str | None = None,
    seconds: float | None = None,
    max_events: int | None = None,
    opener: SealedOpener | None = None,
) -> int:
    """Consume, drop duplicates, hand each new event to ``handle`` (its personal data
    opened where ``opener`` may); commit exactly what was processed."""
    consumer = create_consumer(settings, group=group, topic=topic)
    process = RecordProcessor(handle, account=account, opener=opener)
    handled = 0
    deadline = None if seconds is None else time.monotonic() + seconds

    def wanted() -> bool:
        return (deadline is None or time.monotonic() < deadline) and (max_events is None or handled < max_events)

    try:
        while wanted():
            processed: dict[TopicPartition, int] = {}
            for partition, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    if not wanted():
                        break
                    if process(record):
                        handled += 1
                    processed[partition] = record.offset + 1
            if processed:
                consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in processed.items()})
    finally:
        consumer.close()
    return handled
