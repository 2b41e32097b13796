"""Lists benchmark: how long a page of a list takes at 10,000 items on PostgreSQL.

    python -m bench.lists [--items N] [--samples K] [--limit L] [--quick]

One account with N plans, N people and N deals, and N - 1 other accounts, go into
the account view through its projection (``tests.lists_data``, as a rebuild feeds
it). Then, for each list and a few filters, pages of ``--limit`` items at random
depths (a random cursor among all the list's pages), each timed:

* **service**: ``ReadModels.list_page`` (the query and its JSON decoding), what
  the HTTP route calls;
* **HTTP**: the route in-process (``TestClient``: authentication, parameters,
  access, the query and the JSON answer), no network;
* **baseline, in the same run**: reading the account's whole view document, which
  a list served from the account view's document (as the view, pipeline and
  stakeholder map are) would have to read and decode for every page.

p50 and p99 in ms; the target is p99 under 50 ms (HTTP). Results in
``bench/results/lists.json`` and ``lists.md`` (``--quick``: under ``results/quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bench.common import RESULTS, machine_facts, percentile, postgres, postgres_settings
from projections.account_view import account_key
from projections.account_view.lists import ACCOUNT, DEAL, PLAN, STAKEHOLDER
from projections.ports import ListQuery
from services.api.app import create_app
from services.bootstrap import bootstrap
from tests.api_support import ADMIN, SECRET
from tests.lists_data import OWNERS, BigAccount, big_account_facts, load

NAME = "lists"
TARGET_P99_MS = 50.0


def timings(call: Callable[[], object], samples: int) -> dict[str, float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(times), "p99_ms": percentile(times, 0.99), "max_ms": max(times)}


def cursors(client: TestClient, path: str, params: dict[str, Any], limit: int) -> list[str | None]:
    """Every page's cursor (``None`` for the first page), by walking the list once."""
    found: list[str | None] = [None]
    while True:
        after = found[-1]
        page = client.get(path, params={**params, "limit": limit, **({"after": after} if after else {})}, headers=ADMIN)
        page.raise_for_status()
        next_cursor = page.json()["next"]
        if next_cursor is None:
            return found
        found.append(next_cursor)


def measure(items: int, samples: int, limit: int, dsn: str) -> dict[str, Any]:
    settings = postgres_settings(dsn, view_checkpoint_interval=0, jwt_secret=SECRET)
    big = BigAccount()
    loader = bootstrap(settings, views=["account_view"])
    started = time.perf_counter()
    load(loader.projector, big_account_facts(big, accounts=items, plans=items, stakeholders=items, deals=items))
    load_seconds = time.perf_counter() - started
    loader.close()
    account = f"/accounts/{big.account_id}"
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("accounts (all)", ACCOUNT, "/accounts", {"all": "true"}),
        ("accounts by name", ACCOUNT, "/accounts", {"all": "true", "q": "account 01"}),
        ("plans", PLAN, account + "/plans", {}),
        ("stakeholders", STAKEHOLDER, account + "/stakeholders", {}),
        ("stakeholders: unit subtree + role", STAKEHOLDER, account + "/stakeholders",
         {"unit": str(big.country), "buying_role": "champion"}),
        ("deals", DEAL, account + "/deals", {}),
        ("deals: unit subtree + owner + overdue", DEAL, account + "/deals",
         {"unit": str(big.region), "owner": OWNERS[1], "overdue": "true"}),
    ]  # fmt: skip
    rng = random.Random(7)
    results: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        view = runtime.projector.view("account_view")
        document = view.document(account_key(big.account_id))
        baseline = timings(lambda: view.document(account_key(big.account_id)), max(10, samples // 10))
        for label, kind, path, params in cases:
            pages = cursors(client, path, params, limit)
            service_query = _service_query(runtime, kind, big, params)

            def service(pages: list[str | None] = pages, query: Any = service_query) -> object:
                return runtime.reads.list_page(query(rng.choice(pages)))

            def http(pages: list[str | None] = pages, path: str = path, params: dict[str, Any] = params) -> object:
                after = rng.choice(pages)
                response = client.get(
                    path, params={**params, "limit": limit, **({"after": after} if after else {})}, headers=ADMIN
                )
                response.raise_for_status()
                return response

            results.append(
                {
                    "list": label,
                    "pages": len(pages),
                    "service": timings(service, samples),
                    "http": timings(http, samples),
                }
            )
            print(results[-1], flush=True)
    return {
        "items": items,
        "limit": limit,
        "samples": samples,
        "load_seconds": load_seconds,
        "account_document_bytes": len(json.dumps(document)),
        "baseline_whole_document": baseline,
        "lists": results,
    }


def _service_query(
    runtime: Any, kind: str, big: BigAccount, params: dict[str, Any]
) -> Callable[[str | None], ListQuery]:
    """The query the route builds for ``params`` (the cursor decoded as the route does)."""
    from projections.account_view.lists import decode_cursor, fold, subtree

    units = runtime.reads.units_of(big.account_id) if kind != ACCOUNT else {}
    within = {"unit_id": subtree(units, params["unit"])} if "unit" in params else {}
    equals = {k: v for k, v in (("owner", params.get("owner")), ("role", params.get("buying_role"))) if v}
    accounts = None if kind == ACCOUNT else frozenset({str(big.account_id)})
    today = datetime.now(UTC).date().isoformat()

    def query(after: str | None) -> ListQuery:
        return ListQuery(
            kind,
            account_ids=accounts,
            equals=equals,
            within=within,
            text=fold(params["q"]) if "q" in params else None,
            overdue=True if params.get("overdue") else None,
            today=today,
            after=decode_cursor(after) if after else None,
        )

    return query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--limit", type=int, default=50, help="items per page")
    parser.add_argument("--quick", action="store_true", help="1,000 items, 50 samples")
    args = parser.parse_args()
    if args.quick:
        args.items, args.samples = 1_000, 50
    load_at_start = os.getloadavg()[0]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        dsn = stack.enter_context(postgres(tmp))
        facts = machine_facts(dsn)
        measured = measure(args.items, args.samples, args.limit, dsn)
    result = {
        "benchmark": NAME,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**facts, "load_average_1min": {"start": load_at_start, "end": os.getloadavg()[0]}},
        "target_p99_ms": TARGET_P99_MS,
        **measured,
    }
    out = RESULTS / "quick" if args.quick else RESULTS  # quick runs are kept out of git
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        (out / ".gitignore").write_text("*\n", encoding="utf-8")
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(result)
    (out / f"{NAME}.md").write_text(table, encoding="utf-8")
    print(table)


def markdown(result: dict[str, Any]) -> str:
    base, load = result["baseline_whole_document"], result["machine"]["load_average_1min"]
    rows = "".join(
        f"| {r['list']} | {r['pages']} | {r['service']['p50_ms']:.1f} | {r['service']['p99_ms']:.1f} | "
        f"{r['http']['p50_ms']:.1f} | **{r['http']['p99_ms']:.1f}** | "
        f"{'yes' if r['http']['p99_ms'] < result['target_p99_ms'] else 'no'} | "
        f"{base['p50_ms'] / r['service']['p50_ms']:.0f}× |\n"
        for r in result["lists"]
    )
    return (
        f"Lists at {result['items']:,} items on PostgreSQL ({result['date']}, {result['machine']['cores']} cores, "
        f"PostgreSQL {result['machine']['postgresql']}; 1-minute load average {load['start']:.1f} at the start, "
        f"{load['end']:.1f} at the end: the machine is shared, so compare figures within this run)\n\n"
        f"Pages of {result['limit']} at random depths, {result['samples']} per list and way, ms. Baseline in the "
        f"same run: reading the account's whole view document ({result['account_document_bytes'] / 1e6:.1f} MB of "
        f"JSON), p50 {base['p50_ms']:.0f} ms, p99 {base['p99_ms']:.0f} ms; the last column is that p50 over the "
        "service p50.\n\n"
        f"| list | pages | service p50 | service p99 | HTTP p50 | HTTP p99 | p99 < {result['target_p99_ms']:.0f} ms "
        "| whole document ÷ page |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{rows}"
    )


if __name__ == "__main__":
    main()
