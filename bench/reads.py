"""Read benchmark: the account view, the stakeholder map and the pipeline as the API
answers them, on SQLite and PostgreSQL.

    python -m bench.reads [--reads N] [--repeats R] [--stores sqlite,postgres] [--quick]

The demo account is seeded and its views caught up (untimed). Timed, one read at a
time: ``ReadModels.account_view`` deriving every section (what ``/stakeholder-map``
and ``/pipeline`` did before) and deriving only the sections each route returns;
and the whole answer through HTTP (FastAPI's TestClient, in process) from a route
returning the dict (FastAPI validates and serialises it against the response model,
then writes it with ``json.dumps``: what the view routes did) and from one returning
``services.api.routes.queries.json_response`` (orjson). The baselines, in the same
run, are the whole view derived and the route returning a dict; speed-up = baseline
time ÷ time. Writes ``bench/results/reads.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient

from bench.common import RESULTS, machine_facts, postgres, postgres_settings, spread
from infra.settings import Settings
from services.api.routes.queries import json_response
from services.app import GamApplication
from services.demo import seed_account
from services.projector import Projector
from services.read_models import ReadModels

ROUTES: dict[str, tuple[str, ...]] = {"stakeholder-map": ("stakeholders",), "pipeline": ("pipeline", "win_rate")}


ENCODED_BY_FASTAPI = "GET the whole view's answer, a route returning a dict (response_model dict[str, Any])"
ENCODED_BY_ORJSON = "GET the whole view's answer, json_response (orjson)"


def answering(answer: dict[str, Any]) -> FastAPI:
    """An app serving the same answer both ways: as the view routes did (FastAPI
    validates and serialises the returned dict against the response model, then
    ``json.dumps`` it) and as they do now."""
    app = FastAPI()

    @app.get("/fastapi")
    def through_fastapi() -> dict[str, Any]:
        return answer

    @app.get("/orjson", response_model=dict[str, Any])
    def through_orjson() -> Response:
        return json_response(answer)

    return app


def median_ms(function: Callable[[], object], reads: int) -> float:
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure_store(settings: Settings, reads: int, repeats: int) -> dict[str, Any]:
    app = GamApplication(settings.eventsourcing_env())
    account_id = seed_account(app, 0).account_id
    projector = Projector.open(app, settings, ["account_view"])
    projector.catch_up()
    models = ReadModels(projector)
    now = datetime.now(UTC)
    whole = models.account_view(account_id, now=now).data
    assert whole is not None
    samples: dict[str, list[float]] = {"whole view": []}
    samples |= {f"{route}: whole view derived": [] for route in ROUTES}
    samples |= {f"{route}: its sections only": [] for route in ROUTES}
    samples |= {ENCODED_BY_FASTAPI: [], ENCODED_BY_ORJSON: []}
    client = TestClient(answering({"position": 1, "view": whole}))
    for _ in range(repeats):
        samples["whole view"].append(median_ms(lambda: models.account_view(account_id, now=now), reads))
        for route, sections in ROUTES.items():
            samples[f"{route}: whole view derived"].append(
                median_ms(lambda: models.account_view(account_id, now=now), reads)
            )
            samples[f"{route}: its sections only"].append(
                median_ms(lambda s=sections: models.account_view(account_id, now=now, sections=s), reads)
            )
        samples[ENCODED_BY_FASTAPI].append(median_ms(lambda: client.get("/fastapi").content, reads))
        samples[ENCODED_BY_ORJSON].append(median_ms(lambda: client.get("/orjson").content, reads))
    projector.close()
    app.close()
    figures = {name: spread(values) for name, values in samples.items()}
    return {
        "document_bytes": len(json.dumps(whole)),
        "ms": figures,
        "speedup": {
            **{
                route: figures[f"{route}: whole view derived"]["median"]
                / figures[f"{route}: its sections only"]["median"]
                for route in ROUTES
            },
            "orjson": figures[ENCODED_BY_FASTAPI]["median"] / figures[ENCODED_BY_ORJSON]["median"],
        },
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Reads of the demo account's view, median ms of {result['size']['reads']} reads, median (min–max) of "
        f"{result['size']['repeats']} repeats; speed-up against the row above it, measured in the same run.",
        "",
        "| store | what | ms | speed-up |",
        "| --- | --- | ---: | ---: |",
    ]
    for store, figures in result["stores"].items():
        for name, f in figures["ms"].items():
            speedup = ""
            if name.endswith("its sections only"):
                speedup = f"{figures['speedup'][name.split(':')[0]]:.2f}×"
            elif name == ENCODED_BY_ORJSON:
                speedup = f"{figures['speedup']['orjson']:.2f}×"
            lines.append(f"| {store} | {name} | {f['median']:.3f} ({f['min']:.3f}–{f['max']:.3f}) | {speedup} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--quick", action="store_true", help="10 reads, one repeat")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    reads, repeats = (10, 1) if args.quick else (args.reads, args.repeats)
    result: dict[str, Any] = {"benchmark": "reads", "size": {"reads": reads, "repeats": repeats}, "stores": {}}
    with tempfile.TemporaryDirectory(prefix="gam-bench-reads-") as tmp, postgres(Path(tmp)) as dsn:
        result["machine"] = machine_facts(dsn, ("orjson", "fastapi"))
        for store in args.stores.split(","):
            settings = (
                Settings(store="sqlite", sqlite_path=Path(tmp) / "reads.db")
                if store == "sqlite"
                else postgres_settings(dsn)
            )
            result["stores"][store] = measure_store(settings, reads, repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reads.json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    (args.out / "reads.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
