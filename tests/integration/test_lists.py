"""Every list endpoint pages through 10,000 items over HTTP, on SQLite: each item
once, in order, the filters as the data says, and the caller's accounts only.

The account view is filled through its projection (``tests.lists_data``): one
account with 10,000 plans, 10,000 people and 10,000 deals, and 9,999 other accounts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest

import services.api.app as api_app
from infra.settings import Settings
from services.bootstrap import bootstrap
from tests.api_support import ADMIN, token
from tests.integration.test_api_commands import PROBLEM, Api
from tests.lists_data import LEAD, LOCAL_MANAGER, OWNERS, ROLES, STAGES, BigAccount, big_account_facts, load

N = 10_000
PAGE = 500


@dataclass
class Lists:
    api: Api
    big: BigAccount

    @property
    def account(self) -> str:
        return f"/accounts/{self.big.account_id}"

    def all_pages(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
        """Every item, following ``next`` until it is null."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page_params = {**params, "limit": PAGE, **({"after": cursor} if cursor else {})}
            response = self.api.get(path, headers or ADMIN, **page_params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= PAGE
            items.extend(body["items"])
            cursor = body["next"]
            if cursor is None:
                return items
            assert len(body["items"]) == PAGE, "a page short of the limit is the last"


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lists]:
    path = tmp_path_factory.mktemp("lists") / "gam.db"
    settings = Settings(store="sqlite", sqlite_path=path, view_checkpoint_interval=0)
    big = BigAccount()
    loader = bootstrap(settings, views=["account_view"])
    try:
        load(loader.projector, big_account_facts(big, accounts=N, plans=N, stakeholders=N, deals=N))
    finally:
        loader.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_app, "FOLLOW_SECONDS", 0.02)
        with Api.serving(settings) as api:
            yield Lists(api, big)


def in_order(items: list[dict[str, Any]], name: str) -> bool:
    keys = [(item[name].casefold(), item["id"]) for item in items]
    return keys == sorted(keys)


@pytest.mark.parametrize(
    ("path", "name"),
    [("/accounts", "name"), ("/plans", "fiscal_period"), ("/stakeholders", "title"), ("/deals", "title")],
)
def test_a_list_of_10000_pages_through_every_item_once_in_order(lists: Lists, path: str, name: str) -> None:
    items = lists.all_pages(path, all="true") if path == "/accounts" else lists.all_pages(lists.account + path)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == N
    assert in_order(items, name)


def test_deals_are_filtered_by_unit_subtree_stage_owner_status_and_overdue(lists: Lists) -> None:
    big, deals = lists.big, lists.account + "/deals"
    below_region = lists.all_pages(deals, unit=str(big.region), stage="proposal", owner=OWNERS[1])
    expected = [n for n in range(N) if n % 4 and STAGES[n % 5] == "proposal" and n % 3 == 1]
    assert sorted(d["title"] for d in below_region) == [f"Deal {n:05d}" for n in expected]
    overdue = lists.all_pages(deals, overdue="true", status="open")
    assert len(overdue) == len(range(0, N, 3))
    assert all(d["overdue"] and d["expected_close"] == "2020-06-30" for d in overdue)
    assert len(lists.all_pages(deals, overdue="false")) == N - len(overdue)
    assert lists.all_pages(deals, status="won") == []
    assert [d["title"] for d in lists.all_pages(deals, q="DEAL 0999", unit=str(big.local))] == [
        "Deal 09991",
        "Deal 09995",
        "Deal 09999",
    ]


def test_stakeholders_are_filtered_by_unit_subtree_and_buying_role(lists: Lists) -> None:
    big, people = lists.big, lists.account + "/stakeholders"
    champions = lists.all_pages(people, buying_role="champion", unit=str(big.country))
    expected = [n for n in range(N) if n % 2 and ROLES[n % 4] == "champion" and n % 4 in (2, 3)]
    assert sorted(p["name"] for p in champions) == [f"Person {n:05d}" for n in expected]
    assert len(lists.all_pages(people, unit=str(big.hq))) == N


def test_accounts_are_searched_by_name_industry_and_country(lists: Lists) -> None:
    found = lists.all_pages("/accounts", all="true", q="account 0012", industry="Banking")
    assert [a["name"] for a in found] == ["Account 00122", "Account 00126"]
    assert len(lists.all_pages("/accounts", all="true", hq_country="JP")) == N // 5


def test_mine_are_the_accounts_whose_team_i_am_on(lists: Lists) -> None:
    big = lists.big
    gam = token(LEAD)
    assert {a["id"] for a in lists.all_pages("/accounts", gam)} == {str(a) for a in big.small_accounts[:3]}
    manager = token(LOCAL_MANAGER)
    assert [a["id"] for a in lists.all_pages("/accounts", manager)] == [str(big.account_id)]
    assert len(lists.all_pages(lists.account + "/deals", manager, unit=str(big.local))) == N // 4
    refused = lists.api.get("/accounts", gam, all="true")
    assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)
    refused = lists.api.get(lists.account + "/deals", gam)
    assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)


def test_a_bad_cursor_or_a_unit_of_another_account_is_refused_with_its_field_and_a_missing_account_is_404(
    lists: Lists,
) -> None:
    for params, field in (
        ({"after": "bm90LWEtY3Vyc29y"}, "query/after"),
        ({"unit": str(lists.big.small_accounts[0])}, "query/unit"),
    ):
        response = lists.api.get(lists.account + "/deals", ADMIN, **params)
        assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
        assert [e["path"] for e in response.json()["errors"]] == [field]
    missing = lists.api.get(f"/accounts/{uuid4()}/deals", ADMIN)
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
