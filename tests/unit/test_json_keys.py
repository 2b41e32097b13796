"""One JSON shape for composite keys, wherever a map keyed by more than one id is
written: the parts joined by ``/``, as the audit trail's item paths have them."""

from __future__ import annotations

from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.encoding import to_json_value


def test_a_person_and_role_key_reads_as_the_audit_trail_writes_it() -> None:
    person = uuid4()
    assert to_json_value({(person, "economic_buyer"): 1}) == {f"{person}/economic_buyer": 1}


@given(st.lists(st.uuids(), min_size=1, max_size=3), st.text(alphabet="abc_", min_size=1, max_size=8))
@settings(max_examples=30, deadline=None)
def test_composite_keys_are_their_parts_joined_never_a_repr(ids: list, role: str) -> None:  # type: ignore[type-arg]
    key = (*ids, role)
    (written,) = to_json_value({key: True})
    assert written == "/".join([*(str(i) for i in ids), role])
    assert not set("([')") & set(written)
