"""The reference consumer's handling of sealed fields, without I/O: what it shows for
each answer of the key endpoint, and that a field sealed as the store seals it opens
to the value the domain stored (the wire format of ``services.envelope``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Transcoder
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.values import ERASED as DOMAIN_ERASED
from domain.values import Money, PersonalData
from infra.personal_keys import MemoryKeys, key_id_of, seal_with
from infra.sealed_reads import PersonalOpener
from services.app import GamApplication
from services.envelope import sealed_field
from services.subscriber import ERASED, SEALED, KeyServiceUnavailable, SealedOpener

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def transcoder() -> Transcoder:
    from infra.settings import Settings

    return GamApplication(Settings(store="memory").eventsourcing_env()).mapper.transcoder


def envelope_of(subject: UUID, field: str, plaintext: bytes) -> dict[str, object]:
    sealed = seal_with(KEY, f"{subject}/{field}", plaintext)
    return {"type": "gam.stakeholder.Identified", "subject": f"stakeholder/{subject}",
            "data": {field: sealed_field(sealed, str(subject), field), "title": "CFO"}}  # fmt: skip


def api(status: int, body: dict[str, object] | None = None) -> tuple[list[str], Callable[[str], tuple[int, bytes]]]:
    """The key endpoint's answer, as the consumer's HTTP source hands it on (status, body)."""
    asked: list[str] = []

    def get(path: str) -> tuple[int, bytes]:
        asked.append(path)
        return status, json.dumps(body or {"detail": f"status {status}"}).encode()

    return asked, get


names = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40).filter(str.strip)
"""Names a person may have: not blank, and without control characters (NUL is refused by the domain)."""


@settings(max_examples=20, deadline=None)
@given(name=names, email=st.none() | st.emails(), phone=st.none() | st.from_regex(r"\+[0-9]{6,12}", fullmatch=True))
def test_a_field_sealed_as_stored_opens_to_the_stored_value(
    transcoder: Transcoder, name: str, email: str | None, phone: str | None
) -> None:
    subject = uuid4()
    plaintext = transcoder.encode(PersonalData(name, email, phone))
    asked, get = api(200, {"key": base64.b64encode(KEY).decode(), "key_id": key_id_of(subject)})
    opener = SealedOpener(get)
    message = envelope_of(subject, "personal", plaintext)
    assert opener.opened(message)["data"] == {
        "personal": {"name": name, "email": email, "phone": phone},
        "title": "CFO",
    }
    opener.opened(message)
    assert asked == [f"/compliance/personal-keys/{subject}"], "one fetch per person, then the cache"


def test_what_the_consumer_shows_for_each_answer_of_the_key_endpoint() -> None:
    subject = uuid4()
    message = envelope_of(subject, "summary", b'"met at the fair"')
    assert SealedOpener().opened(message)["data"]["summary"] == SEALED  # no key access at all

    asked, refused = api(403)
    opener = SealedOpener(refused)
    assert [opener.opened(message)["data"]["summary"] for _ in range(2)] == [SEALED, SEALED]
    assert len(asked) == 1
    assert opener.refused == {str(subject): "status 403"}

    _, gone = api(410)
    assert SealedOpener(gone).opened(message)["data"]["summary"] == ERASED

    _, down = api(503)
    unavailable = SealedOpener(down)
    with pytest.raises(KeyServiceUnavailable):
        unavailable.opened(message)
    assert not unavailable.refused, "a failing API is not a refusal: the record comes again"


def test_the_erasure_event_drops_the_cached_key() -> None:
    subject = uuid4()
    message = envelope_of(subject, "summary", b'"met at the fair"')
    asked, get = api(200, {"key": base64.b64encode(KEY).decode(), "key_id": key_id_of(subject)})
    opener = SealedOpener(get)
    assert opener.opened(message)["data"]["summary"] == "met at the fair"
    opener.observe({"type": "gam.stakeholder.PersonalDataErased", "subject": f"stakeholder/{subject}"})
    assert opener.keys == {}
    assert opener.opened(message)["data"]["summary"] == ERASED
    assert len(asked) == 1


@given(
    name=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "\x00" not in t),
    note=st.text(max_size=200).filter(lambda t: "\x00" not in t),
)
@settings(max_examples=50)
def test_a_view_read_opens_a_name_and_a_note_as_the_domain_stored_them(
    transcoder: Transcoder, name: str, note: str
) -> None:
    """Names and notes are read straight from their JSON; anything else goes through the
    transcoder; a person whose key is gone reads as erased."""
    keys, person, gone = MemoryKeys(), uuid4(), uuid4()

    def sealed(subject: UUID, field: str, value: object) -> dict[str, str]:
        return {"sealed": keys.seal(subject, field, transcoder.encode(value)).sealed}

    personal = PersonalData(name, email="someone@customer.example")
    money = Money(Decimal("12.50"), "EUR")
    stored = {"personal": sealed(person, "personal", personal), "note": sealed(person, "note", note),
              "money": sealed(person, "money", money), "gone": sealed(gone, "personal", personal)}  # fmt: skip
    keys.destroy(gone, erased_by="dpo@vendor.example", erased_at=datetime.now(UTC), legal_basis="Art. 17")
    opener = PersonalOpener(keys, transcoder)
    assert opener.name(str(person), stored["personal"]) == {"name": name}
    assert opener.open(str(person), "note", stored["note"]) == note
    assert opener.open(str(person), "money", stored["money"]) == money
    assert opener.name(str(gone), stored["gone"]) == {"name": DOMAIN_ERASED}
