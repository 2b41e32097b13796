"""The view storage's contract (``projections/ports.py``), on memory, SQLite and
PostgreSQL (``infra/views_*.py``).

What the projections rely on: a change's documents, audit rows and tracking
position are written in one transaction; a position not past the stored one is
refused and writes nothing, so a crash can neither skip an event nor apply one
twice; documents are read back as JSON values, by key or by key prefix; audit
rows are selected by their filters in position order; ``reset`` forgets a view.
Each view has its own documents and position. A rebuild builds a new generation
beside the live one, unseen by readers, and it takes over in one commit; a writer
of the old generation is refused from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from infra.settings import Settings
from infra.views_memory import MemoryViewRecorder
from infra.views_postgres import PostgresViewRecorder
from infra.views_sqlite import SQLiteViewRecorder
from projections.ports import (
    AuditQuery,
    AuditRow,
    Document,
    Generations,
    GenerationSwitched,
    ListQuery,
    ListRow,
    ViewChange,
    ViewRecorder,
)
from services.projector import open_view
from tests.contract.stores import MemoryStore, PostgresStore, SQLiteStore

APP = "gam"
Opener = Callable[..., ViewRecorder]
T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
DOCUMENT: Document = {
    "name": "Ünïcödé – 中文 🚀",
    "amount": "123456789012345678901234567890.12",
    "count": 2**53 + 1,
    "open": True,
    "closed": False,
    "note": None,
    "units": [{"code": "EMEA", "children": []}, {"code": "DE", "children": ["x", 1, None]}],
    "empty": {},
}


def at(position: int) -> Tracking:
    return Tracking(APP, position)


def audit_row(
    position: int,
    *,
    account_id: UUID | None,
    entity_id: UUID,
    version: int,
    actor: str = "alice@vendor.example",
    event_type: str = "Deal.Opened",
    seconds: int | None = None,
) -> AuditRow:
    return AuditRow(
        position=position,
        occurred_at=T0 + timedelta(seconds=position if seconds is None else seconds, microseconds=123456),
        actor=actor,
        account_id=account_id,
        entity_type=event_type.split(".")[0].lower(),
        entity_id=entity_id,
        version=version,
        event_type=event_type,
        changes=({"field": "stage", "before": None, "after": {"code": "ü", "n": [1, 2]}},),
        reason="Ünïcödé reason" if position % 2 else None,
        correlation_id=uuid4(),
        causation_id=uuid4() if position % 3 else None,
    )


def list_row(
    kind: str, entity_id: str, sort_key: str = "m", *, account: str = "a0", body: Document | None = None, **facets: str
) -> ListRow:
    return ListRow(kind, entity_id, account, sort_key, body or {"id": entity_id}, facets)


class ViewStorageContract:
    adapter: type[ViewRecorder]

    @pytest.fixture
    def opened(self) -> Iterator[list[ViewRecorder]]:
        views: list[ViewRecorder] = []
        yield views
        for view in views:
            close = getattr(view, "close", None)
            if close is not None:
                close()

    @pytest.fixture
    def open_named(self, settings: Settings, opened: list[ViewRecorder]) -> Opener:
        """Opens a view's storage as the projector does, in the store's database."""

        def open_(name: str = "contract_view") -> ViewRecorder:
            view = open_view(settings, name)
            opened.append(view)
            return view

        return open_

    @pytest.fixture
    def view(self, open_named: Opener) -> ViewRecorder:
        return open_named()

    def test_the_storage_of_a_view_is_this_adapter(self, view: ViewRecorder) -> None:
        assert isinstance(view, self.adapter)
        assert view.view_name == "contract_view"

    def test_a_new_view_has_no_documents_no_audit_rows_and_no_position(self, view: ViewRecorder) -> None:
        assert view.max_tracking_id(APP) is None
        assert not view.has_tracking_id(APP, 1)
        assert view.documents([]) == {}
        assert view.documents(["a", "b"]) == {}
        assert view.documents_with_prefix("") == {}
        assert view.select_audit(AuditQuery()) == []
        assert view.versions_at(uuid4(), T0) == {}

    def test_documents_and_position_are_written_together_and_read_back_as_json(self, view: ViewRecorder) -> None:
        view.record(ViewChange(documents={"account:1": DOCUMENT, "account:2": {"n": 2}}), at(3))
        assert view.max_tracking_id(APP) == 3
        assert view.has_tracking_id(APP, 3)
        assert not view.has_tracking_id(APP, 4)
        assert view.documents(["account:1", "account:2", "account:3"]) == {"account:1": DOCUMENT, "account:2": {"n": 2}}
        assert view.documents(["account:2"]) == {"account:2": {"n": 2}}

    def test_a_document_and_the_position_are_read_together_from_the_live_generation(self, view: ViewRecorder) -> None:
        assert view.document_and_position("a", APP) == (None, 0)
        view.record(ViewChange(documents={"a": {"g": "old"}}), at(3))
        assert view.document_and_position("a", APP) == ({"g": "old"}, 3)
        assert view.document_and_position("b", APP) == (None, 3)
        building = view.at_generation(view.start_generation())
        building.record(ViewChange(documents={"a": {"g": "new"}}), at(2))
        assert view.document_and_position("a", APP) == ({"g": "old"}, 3)  # readers see the live one
        assert building.document_and_position("a", APP) == ({"g": "new"}, 2)
        with building.take_over():
            building.record(ViewChange(documents={"b": {}}), at(4))
        assert view.document_and_position("a", APP) == ({"g": "new"}, 4)
        assert view.document_and_position("b", APP) == ({}, 4)

    def test_a_document_read_is_a_copy(self, view: ViewRecorder) -> None:
        view.record(ViewChange(documents={"k": {"units": [1, 2]}}), at(1))
        read = view.documents(["k"])["k"]
        read["units"].append(3)
        read["extra"] = True
        assert view.documents(["k"]) == {"k": {"units": [1, 2]}}
        assert view.documents_with_prefix("k") == {"k": {"units": [1, 2]}}

    def test_a_document_is_replaced_whole_and_none_deletes_it(self, view: ViewRecorder) -> None:
        view.record(ViewChange(documents={"a": {"x": 1, "y": 2}, "b": {"x": 1}}), at(1))
        view.record(ViewChange(documents={"a": {"x": 3}, "b": None, "never-stored": None}), at(2))
        assert view.documents(["a", "b", "never-stored"]) == {"a": {"x": 3}}
        assert view.max_tracking_id(APP) == 2

    def test_a_position_not_past_the_stored_one_is_refused_and_writes_nothing(self, view: ViewRecorder) -> None:
        account = uuid4()
        view.record(
            ViewChange(documents={"a": {"v": 1}}, audit_rows=[audit_row(5, account_id=account, entity_id=account,
                                                                        version=1)]),
            at(5),
        )  # fmt: skip
        for position in (5, 4):
            replayed = ViewChange(
                documents={"a": {"v": 2}, "b": {"v": 2}},
                audit_rows=[audit_row(6, account_id=account, entity_id=account, version=2)],
            )
            with pytest.raises(IntegrityError):
                view.record(replayed, at(position))
            assert view.max_tracking_id(APP) == 5
            assert view.documents(["a", "b"]) == {"a": {"v": 1}}
            assert [r.position for r in view.select_audit(AuditQuery())] == [5]
        view.record(ViewChange(documents={"b": {"v": 3}}), at(9))  # positions may skip (rolled-back ids)
        assert view.max_tracking_id(APP) == 9
        assert view.documents(["a", "b"]) == {"a": {"v": 1}, "b": {"v": 3}}

    def test_a_change_with_no_documents_still_moves_the_position(self, view: ViewRecorder) -> None:
        view.record(ViewChange(), at(1))
        view.record(ViewChange(), at(2))
        assert view.max_tracking_id(APP) == 2

    def test_positions_are_kept_per_application(self, view: ViewRecorder) -> None:
        view.record(ViewChange(documents={"a": {}}), Tracking("upstream", 7))
        assert view.max_tracking_id("upstream") == 7
        assert view.max_tracking_id(APP) is None
        view.record(ViewChange(), at(1))
        assert (view.max_tracking_id("upstream"), view.max_tracking_id(APP)) == (7, 1)

    def test_documents_with_a_prefix_are_those_keys_only_in_key_order(self, view: ViewRecorder) -> None:
        keys = ["plan:2", "plan:10", "plan:1", "plan:1:objective", "plan_1", "plan%1", "plans", "other:plan:1"]
        view.record(ViewChange(documents={k: {"key": k} for k in keys}), at(1))
        found = view.documents_with_prefix("plan:1")
        assert list(found) == ["plan:1", "plan:10", "plan:1:objective"]  # by code point: "0" < ":"
        assert found["plan:10"] == {"key": "plan:10"}
        assert list(view.documents_with_prefix("plan%")) == ["plan%1"]  # no wildcards
        assert list(view.documents_with_prefix("plan_")) == ["plan_1"]
        assert list(view.documents_with_prefix("")) == sorted(keys)
        assert view.documents_with_prefix("nothing") == {}

    def test_views_keep_their_documents_and_positions_apart(self, view: ViewRecorder, open_named: Opener) -> None:
        other = open_named("other_view")
        view.record(ViewChange(documents={"shared-key": {"view": "mine"}}), at(4))
        other.record(ViewChange(documents={"shared-key": {"view": "theirs"}}), at(2))
        assert view.documents(["shared-key"]) == {"shared-key": {"view": "mine"}}
        assert other.documents(["shared-key"]) == {"shared-key": {"view": "theirs"}}
        assert (view.max_tracking_id(APP), other.max_tracking_id(APP)) == (4, 2)
        other.reset(audit_rows=False)
        assert view.documents(["shared-key"]) == {"shared-key": {"view": "mine"}}
        assert view.max_tracking_id(APP) == 4
        assert other.max_tracking_id(APP) is None

    def test_audit_rows_are_selected_by_filter_in_position_order(self, view: ViewRecorder) -> None:
        acme, globex, deal, plan, person = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
        rows = [
            audit_row(1, account_id=acme, entity_id=acme, version=1, event_type="GlobalAccount.Created"),
            audit_row(2, account_id=acme, entity_id=deal, version=1, actor="bob@vendor.example"),
            audit_row(3, account_id=globex, entity_id=plan, version=1, event_type="AccountPlan.Started"),
            audit_row(4, account_id=acme, entity_id=deal, version=2, event_type="Deal.Won"),
            audit_row(6, account_id=None, entity_id=person, version=1, event_type="Stakeholder.Erased"),
            audit_row(7, account_id=acme, entity_id=deal, version=3, event_type="Deal.Won", actor="bob@vendor.example"),
        ]
        view.record(ViewChange(audit_rows=rows[4:]), at(7))  # stored out of order, read in order
        view.record(ViewChange(audit_rows=rows[:4]), Tracking("backfill", 4))
        assert view.select_audit(AuditQuery()) == rows  # every field round-trips
        assert view.select_audit(AuditQuery(account_id=acme)) == [rows[i] for i in (0, 1, 3, 5)]
        assert view.select_audit(AuditQuery(entity_id=deal)) == [rows[i] for i in (1, 3, 5)]
        assert view.select_audit(AuditQuery(actor="bob@vendor.example")) == [rows[1], rows[5]]
        assert view.select_audit(AuditQuery(event_type="Deal.Won")) == [rows[3], rows[5]]
        assert view.select_audit(AuditQuery(account_id=acme, event_type="Deal.Won", actor="bob@vendor.example")) == [
            rows[5]
        ]
        assert view.select_audit(AuditQuery(actor="nobody")) == []
        assert view.select_audit(AuditQuery(after_position=3, limit=2)) == [rows[3], rows[4]]
        assert view.select_audit(AuditQuery(after_position=7)) == []
        since, until = rows[1].occurred_at, rows[4].occurred_at  # half open: since <= t < until
        assert view.select_audit(AuditQuery(since=since, until=until)) == rows[1:4]
        assert view.select_audit(AuditQuery(since=since + timedelta(microseconds=1), until=until)) == rows[2:4]
        in_berlin = since.astimezone(timezone(timedelta(hours=1)))
        assert view.select_audit(AuditQuery(since=in_berlin, until=until)) == rows[1:4]  # an instant, in any zone

    def test_versions_at_a_moment_are_the_last_recorded_at_or_before_it(self, view: ViewRecorder) -> None:
        acme, deal, plan = uuid4(), uuid4(), uuid4()
        rows = [
            audit_row(1, account_id=acme, entity_id=acme, version=1, seconds=10),
            audit_row(2, account_id=acme, entity_id=deal, version=1, seconds=20),
            audit_row(3, account_id=acme, entity_id=deal, version=2, seconds=30),
            audit_row(4, account_id=acme, entity_id=plan, version=1, seconds=40),
            audit_row(5, account_id=uuid4(), entity_id=uuid4(), version=1, seconds=5),
        ]
        view.record(ViewChange(audit_rows=rows), at(5))
        assert view.versions_at(acme, rows[2].occurred_at) == {acme: 1, deal: 2}  # at the moment counts
        assert view.versions_at(acme, rows[2].occurred_at - timedelta(microseconds=1)) == {acme: 1, deal: 1}
        assert view.versions_at(acme, T0) == {}
        assert view.versions_at(acme, T0 + timedelta(days=1)) == {acme: 1, deal: 2, plan: 1}

    def test_reset_forgets_documents_and_position_and_audit_rows_only_when_asked(self, view: ViewRecorder) -> None:
        acme = uuid4()
        view.record(
            ViewChange(documents={"a": {}}, audit_rows=[audit_row(1, account_id=acme, entity_id=acme, version=1)]),
            at(1),
        )
        view.reset(audit_rows=False)
        assert view.max_tracking_id(APP) is None
        assert view.documents(["a"]) == {}
        assert [r.position for r in view.select_audit(AuditQuery())] == [1]
        view.record(ViewChange(documents={"a": {"rebuilt": True}}), at(1))  # a rebuild starts again
        assert view.documents(["a"]) == {"a": {"rebuilt": True}}
        view.reset(audit_rows=True)
        assert view.select_audit(AuditQuery()) == []
        assert view.max_tracking_id(APP) is None

    def test_list_rows_are_written_replaced_and_deleted_with_the_position(self, view: ViewRecorder) -> None:
        first = list_row("deal", "d1", sort_key="ünïcödé", body=DOCUMENT, status="open")
        view.record(ViewChange(list_rows={("deal", "d1"): first, ("deal", "d2"): list_row("deal", "d2")}), at(1))
        assert view.select_list(ListQuery("deal")) == [list_row("deal", "d2"), first]  # "m" < "ü"
        view.record(ViewChange(list_rows={("deal", "d1"): None, ("deal", "d2"): list_row("deal", "d2", "z")}), at(2))
        assert view.select_list(ListQuery("deal")) == [list_row("deal", "d2", "z")]
        assert view.max_tracking_id(APP) == 2
        with pytest.raises(IntegrityError):
            view.record(ViewChange(list_rows={("deal", "d3"): list_row("deal", "d3")}), at(2))
        assert [r.entity_id for r in view.select_list(ListQuery("deal"))] == ["d2"]

    def test_list_rows_are_selected_by_filter_in_sort_key_then_id_order(self, view: ViewRecorder) -> None:
        rows = [
            list_row("deal", f"d{n}", sort_key=f"deal {n % 4}", account=f"a{n % 2}", unit_id=f"u{n % 3}",
                     status="open" if n % 5 else "won", due=f"2026-0{1 + n % 9}-01", owner=f"o{n % 2}")
            for n in range(40)
        ] + [list_row("account", "a0"), list_row("unit", "u0")]  # fmt: skip
        view.record(ViewChange(list_rows={(r.kind, r.entity_id): r for r in rows}), at(1))
        queries = [
            ListQuery("deal"),
            ListQuery("deal", account_ids=frozenset({"a1"})),
            ListQuery("deal", account_ids=frozenset()),
            ListQuery("deal", entity_ids=frozenset({"d3", "d4", "nope"})),
            ListQuery("deal", equals={"owner": "o1", "status": "open"}),
            ListQuery("deal", within={"unit_id": frozenset({"u0", "u2"})}),
            ListQuery("deal", text="al 3"),
            ListQuery("deal", overdue=True, today="2026-05-01"),
            ListQuery("deal", overdue=False, today="2026-05-01"),
            ListQuery("deal", after=("deal 1", "d21"), limit=7),
            ListQuery("deal", account_ids=frozenset({"a0"}), overdue=True, today="2026-09-01", limit=3),
        ]
        for query in queries:
            expected = sorted((r for r in rows if query.matches(r)), key=lambda r: (r.sort_key, r.entity_id))
            assert view.select_list(query) == expected[: query.limit], query
        assert len(view.select_list(ListQuery("deal", overdue=True, today="2026-05-01"))) == 16

    def test_reset_forgets_list_rows(self, view: ViewRecorder) -> None:
        view.record(ViewChange(list_rows={("deal", "d1"): list_row("deal", "d1")}), at(1))
        view.reset(audit_rows=False)
        assert view.select_list(ListQuery("deal")) == []

    def test_a_new_generation_is_built_beside_the_live_one_and_takes_over_in_one_step(self, view: ViewRecorder) -> None:
        acme = uuid4()
        old_row, new_row = (audit_row(1, account_id=acme, entity_id=acme, version=v) for v in (1, 2))
        first_deal = {("deal", "d1"): list_row("deal", "d1")}
        view.record(ViewChange(documents={"a": {"g": "old"}}, audit_rows=[old_row], list_rows=first_deal), at(3))
        assert view.generations() == Generations(live=1)
        generation = view.start_generation()
        assert generation > 1
        assert view.generations() == Generations(live=1, building=generation)
        building = view.at_generation(generation)
        assert building.max_tracking_id(APP) is None
        assert building.documents(["a"]) == {}
        building.record(ViewChange(documents={"a": {"g": "new"}, "b": {}}, audit_rows=[new_row]), at(2))
        # readers (and the live generation's writer) see none of it
        assert view.documents(["a", "b"]) == {"a": {"g": "old"}}
        assert view.documents_with_prefix("") == {"a": {"g": "old"}}
        assert view.select_audit(AuditQuery()) == [old_row]
        assert view.versions_at(acme, T0 + timedelta(days=1)) == {acme: 1}
        assert [r.entity_id for r in view.select_list(ListQuery("deal"))] == ["d1"]
        assert view.max_tracking_id(APP) == 3
        view.record(ViewChange(documents={"a": {"g": "old, followed"}}), at(4))

        with building.take_over():
            building.record(ViewChange(documents={"c": {}}), at(4))
            assert view.documents(["a"]) == {"a": {"g": "old, followed"}}  # not before it commits
        assert view.generations() == Generations(live=generation, retired=1)
        assert view.documents(["a", "b", "c"]) == {"a": {"g": "new"}, "b": {}, "c": {}}
        assert view.select_audit(AuditQuery()) == [new_row]
        assert view.versions_at(acme, T0 + timedelta(days=1)) == {acme: 2}
        assert view.select_list(ListQuery("deal")) == []
        assert view.max_tracking_id(APP) == 4

        with pytest.raises(GenerationSwitched):  # the follower's next write, meant for the old generation
            view.record(ViewChange(documents={"a": {"g": "stale"}}), at(5))
        assert view.documents(["a"]) == {"a": {"g": "new"}}
        assert view.max_tracking_id(APP) == 4
        view.follow_live()
        view.record(ViewChange(documents={"a": {"g": "new, followed"}}), at(5))
        assert view.documents(["a"]) == {"a": {"g": "new, followed"}}

        view.drop_generation(1)
        assert view.generations() == Generations(live=generation)
        old = view.at_generation(1)
        assert (old.documents(["a"]), old.max_tracking_id(APP), old.select_list(ListQuery("deal"))) == ({}, None, [])
        with pytest.raises(ValueError, match="is live"):
            view.drop_generation(generation)

    def test_an_unfinished_generation_is_resumed_or_started_over_and_a_failed_take_over_changes_nothing(
        self, view: ViewRecorder
    ) -> None:
        view.record(ViewChange(documents={"a": {"g": "live"}}), at(9))
        first = view.start_generation()
        view.at_generation(first).record(ViewChange(documents={"a": {"g": "half"}}), at(2))
        assert view.start_generation() == first  # resumed where it got to
        building = view.at_generation(first)
        assert building.max_tracking_id(APP) == 2

        def killed_while_taking_over() -> None:
            with building.take_over():
                building.record(ViewChange(documents={"a": {"g": "whole"}}), at(9))
                raise RuntimeError("killed")

        with pytest.raises(RuntimeError, match="killed"):
            killed_while_taking_over()
        assert view.generations() == Generations(live=1, building=first)
        assert view.documents(["a"]) == {"a": {"g": "live"}}
        assert building.max_tracking_id(APP) == 2
        again = view.start_generation(fresh=True)
        assert again > first
        assert view.generations() == Generations(live=1, building=again)
        assert view.at_generation(first).documents(["a"]) == {}
        assert view.at_generation(again).max_tracking_id(APP) is None


class DurableViewStorageContract(ViewStorageContract):
    """Views in the database outlive the process that wrote them: a projector
    restarted (or the API reading what ``gam project`` wrote) resumes from them."""

    def test_a_view_opened_again_has_the_documents_audit_rows_and_position(
        self, view: ViewRecorder, open_named: Opener
    ) -> None:
        acme = uuid4()
        row = audit_row(3, account_id=acme, entity_id=acme, version=1)
        view.record(ViewChange(documents={"a": DOCUMENT}, audit_rows=[row]), at(3))
        again = open_named()
        assert again.max_tracking_id(APP) == 3
        assert again.documents(["a"]) == {"a": DOCUMENT}
        assert again.select_audit(AuditQuery()) == [row]
        with pytest.raises(IntegrityError):
            again.record(ViewChange(documents={"a": {}}), at(3))


class TestMemoryViewStorage(MemoryStore, ViewStorageContract):
    adapter = MemoryViewRecorder


class TestSQLiteViewStorage(SQLiteStore, DurableViewStorageContract):
    adapter = SQLiteViewRecorder


class TestPostgresViewStorage(PostgresStore, DurableViewStorageContract):
    adapter = PostgresViewRecorder
