"""Obvious personal data in free text that is not meant to hold any.

Personal data has a place in gam where it is sealed under its person's key and
erased with them: the stakeholder's own fields, interaction summaries, notes on a
buying influence. Written anywhere else (an objective's description, a deal title,
a reason), it is stored in clear and survives the person's erasure, so such text
is checked before it is stored. The check is deliberately for the *obvious*: an
e-mail address, a phone number, or the full name of one of the account's known
stakeholders; it cannot tell every name from a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class TextKind(StrEnum):
    """What a command's text field may hold (``Spec(text=...)``)."""

    PERSONAL = "personal"
    """Free text bound to a person: stored sealed under their key, erased with them."""
    CHECKED = "checked"
    """Business free text: refused if it holds obvious personal data."""
    LABEL = "label"
    """A name, code or identifier of a business thing or of a member of our own team
    (account, unit, offering, team member's address): not prose, not checked."""


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SEP = r"[ .\-/]"
PHONE = re.compile(
    r"(?<![\w+])(?:"
    rf"(?:\+|00)[1-9]\d{{0,3}}(?:{_SEP}?\(?\d{{1,5}}\)?){{2,6}}"  # +49 30 1234567, 0044 20 7946 0958
    rf"|\(0?\d{{1,5}}\){_SEP}?\d{{3,}}(?:{_SEP}\d{{2,}})*"  # (030) 1234567, (555) 123-4567
    rf"|\b0\d{{1,4}}[ \-/]\d{{3,}}(?:[ \-]\d{{2,}})*"  # 030 1234567, 0171-1234567
    r"|\b\d{3}[.\-]\d{3}[.\-]\d{4}\b"  # 555-123-4567
    rf"|(?i:\b(?:tel|phone|mobile|cell|fax)\b\.?:?\s*)\(?\+?\d[\d()]*(?:{_SEP}?\(?\d+\)?){{1,6}}"
    r")"
)
MIN_PHONE_DIGITS = 7
MIN_COMPACT_PHONE_DIGITS = 10
"""Digits of a phone number written in one run, without a space or separator
("+41791234567", "0041791234567"): a shorter run after "00" is a ticket or order number."""
COMPACT = re.compile(r"\+?\d+")
MIN_NAME_LENGTH = 4
"""Shorter names ("Li", "Ann") are words too often to refuse text for them."""


@dataclass(frozen=True)
class Finding:
    """What was found and where it belongs instead (without repeating the data itself)."""

    kind: str

    def explain(self) -> str:
        return (
            f"holds {self.kind}; personal data belongs on the stakeholder (their name, e-mail and phone), "
            "in an interaction's summary, a buying influence's note or MEDDPICC evidence that names the "
            "stakeholder, where it is sealed under the person's key and erased with them"
        )


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


UUID_TEXT = re.compile(r"\b[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\b")
"""An id written out: its digit groups ("0713-4388") are not a phone number."""


def _phones(text: str) -> Iterator[str]:
    for match in PHONE.finditer(UUID_TEXT.sub(" ", text)):
        found = match.group()
        digits = sum(ch.isdigit() for ch in found)
        if digits >= (MIN_COMPACT_PHONE_DIGITS if COMPACT.fullmatch(found) else MIN_PHONE_DIGITS):
            yield found


def find_personal_data(text: str, names: Iterable[str] = (), our_addresses: Iterable[str] = ()) -> Finding | None:
    """The first obvious piece of personal data in ``text``, or None. ``names``: the
    full names of the people whose mention counts (the account's stakeholders);
    ``our_addresses``: the account team's own addresses, which gam keeps as who owns
    what (an action's owner, a review's participant) and are not the customer's people."""
    ours = {address.casefold() for address in our_addresses}
    if any(match.group().casefold() not in ours for match in EMAIL.finditer(text)):
        return Finding("an e-mail address")
    if next(_phones(text), None) is not None:
        return Finding("a phone number")
    if mentions_any(text, names):
        return Finding("the name of one of the account's stakeholders")
    return None


def mentions_any(text: str, names: Iterable[str]) -> bool:
    """Whether ``text`` names one of ``names`` as a whole (case and spacing aside)."""
    haystack = _normalised(text)
    for name in names:
        wanted = _normalised(name)
        if len(wanted) < MIN_NAME_LENGTH:
            continue
        if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", haystack):
            return True
    return False
