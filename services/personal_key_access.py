"""Handing a person's key to a downstream service, so it can open what gam publishes sealed.

gam publishes personal data sealed under the person's key (``services.envelope``). A
service that has to hold the clear data (a CRM syncing contacts) fetches the key once
and opens the fields itself; gam never sends the clear text over Kafka. Each fetch is a
disclosure of everything sealed under that key, so it is recorded like a subject-access
request: who fetched, whose key, on what stated purpose, when
(``infra.access_log``, table ``gam_personal_key_fetches``). Once the person is erased
the key is gone: the answer is :class:`KeyGone` (HTTP 410), for ever.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from domain.errors import NotFound
from domain.stakeholder import Stakeholder
from infra.access_log import AccessRequest, SubjectAccessLog
from infra.personal_keys import KEY_ALGORITHM, PersonalKeys, key_id_of
from projections.encoding import format_time
from services.app import GamApplication

KEY_FETCH_PURPOSE = "downstream sync of personal data (personal_data scope)"


class KeyGone(LookupError):
    """The person was erased: their key was destroyed and nothing sealed under it opens."""


@dataclass(frozen=True)
class PersonalKeyGrant:
    subject_id: UUID
    key: bytes
    fetch: AccessRequest

    def as_json(self) -> dict[str, Any]:
        return {
            "subject_id": str(self.subject_id),
            "key_id": key_id_of(self.subject_id),
            "algorithm": KEY_ALGORITHM,
            "key": base64.b64encode(self.key).decode(),
            "fetch_id": str(self.fetch.request_id),
            "fetched_at": format_time(self.fetch.requested_at),
        }


def fetch_personal_key(
    app: GamApplication,
    keys: PersonalKeys,
    log: SubjectAccessLog,
    subject_id: UUID,
    *,
    fetched_by: str,
    purpose: str,
    at: datetime,
) -> PersonalKeyGrant:
    """The subject's key, after recording the fetch. :class:`~domain.errors.NotFound`
    for nobody gam knows, :class:`KeyGone` once erased (neither is recorded: nothing
    was disclosed)."""
    key = keys.key(subject_id, create=False)
    if key is None:
        person = app.load(Stakeholder, subject_id)  # NotFound for an unknown subject
        if person.erased:
            raise KeyGone(f"the personal data of {subject_id} was erased; its key no longer exists")
        raise NotFound("stakeholder key", subject_id)
    fetch = AccessRequest(uuid4(), subject_id, fetched_by, purpose, at)
    log.record(fetch)
    return PersonalKeyGrant(subject_id, key, fetch)
