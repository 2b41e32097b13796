"""REPORT.md and its plots, from one result document of ``bench.suite``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORKLOAD_TITLES = {
    "commands": "Demo command mix",
    "bulk_import": "Bulk import of a large account's history",
    "view_read": "Account view read",
    "as_of": "As-of query",
    "rebuild": "Projection rebuild",
    "relay": "Relay to Kafka",
}
CONTENDER_TITLES = {
    "gam": "gam (service layer)",
    "gam_http": "gam (HTTP)",
    "gam_http_one_process": "gam (HTTP, views in the server's process)",
    "crud": "CRUD+audit",
    "ceiling": "ceiling",
    "raw_eventsourcing": "raw eventsourcing",
    "gam_entities_only": "gam, entities only",
}
CEILINGS = {
    "commands": "one event-sized row per transaction",
    "bulk_import": "COPY of event-sized rows",
    "view_read": "one document of the view's size by primary key",
    "as_of": "reading the account's event-sized rows up to the moment",
    "rebuild": "reading every event-sized row once",
    "relay": "bare kafka-python producer, same messages",
}
GAM_DOES = {
    "commands": "the message bus (`services.bus`), one command per transaction (HTTP: the same commands as POSTs)",
    "bulk_import": "`gam import`'s code path: a JSON-lines file of commands through the bus, 1,000 per transaction",
    "view_read": "`ReadModels.account_view` on the caught-up account view",
    "as_of": "`account_as_of` with the account view replayed (entities only: the `gam_entities_only` samples)",
    "rebuild": "every view (account view, audit trail, strategy flow) from position 0 as `gam rebuild` builds them "
    "(shared out between a process per core from 100k events on PostgreSQL); the first build is a sample "
    "(the only one for stores of 50k events or more)",
    "relay": "`services.relay.Relay` from position 0 to a new topic",
}
CRUD_DOES = {
    "commands": "one transaction per command: lock the owning row, check, write row + audit image",
    "bulk_import": "1,000 changes per transaction, pipelined update + audit statements",
    "view_read": "15 queries over the normalised tables, assembled in Python",
    "as_of": "last audit image of each row at the moment (DISTINCT ON)",
    "rebuild": "restore every table from the audit log's last images",
    "relay": "audit log as an outbox, 500 rows per batch, position stored after acks",
}
SCALING_PLOTS = (
    ("command_latency_ms", "Command latency", "ms per command"),
    ("view_read_ms", "Account view read latency", "ms per read"),
    ("as_of_s", "As-of query time", "s per query"),
    ("rebuild_s", "Rebuild time", "s per rebuild"),
)
COLOURS = {"gam": "#1f77b4", "gam_http": "#17becf", "crud": "#ff7f0e", "ceiling": "#7f7f7f",
           "gam_entities_only": "#9467bd", "raw_eventsourcing": "#2ca02c"}  # fmt: skip


def number(value: float) -> str:
    """Three significant figures, thousands separated."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def figure(f: dict[str, float] | None) -> str:
    if not f:
        return "—"
    return f"{number(f['median'])} ({number(f['min'])}–{number(f['max'])})"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{number(value)}×"


def main_table(result: dict[str, Any]) -> str:
    lines = [
        "| workload | unit | gam (service layer) | gam (HTTP) | CRUD+audit | ceiling | gam vs CRUD | gam vs ceiling "
        "| CRUD vs ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, w in result["workloads"].items():
        f, r = w["figures"], w["ratios"]
        http = figure(f.get("gam_http")) if "gam_http" in f else ("pending" if name == "commands" else "—")
        lines.append(
            f"| {WORKLOAD_TITLES[name]} | {w['unit']} | {figure(f.get('gam'))} | {http} | {figure(f.get('crud'))} "
            f"| {figure(f.get('ceiling'))} | {ratio(r.get('gam_vs_crud'))} | {ratio(r.get('gam_vs_ceiling'))} "
            f"| {ratio(r.get('crud_vs_ceiling'))} |"
        )
    return "\n".join(lines)


def sizes_line(name: str, w: dict[str, Any]) -> str:
    size = w["size"]
    if name == "commands":
        accounts = f"{size['accounts']} account" + ("s" if size["accounts"] != 1 else "")
        return f"{size['commands']:,} commands ({accounts} × the demo mix)"
    if name == "relay":
        return f"{size['gam_events']:,} gam events / {size['crud_audit_rows']:,} CRUD audit rows of the command mix"
    if name == "bulk_import":
        return f"{size['imported']:,} changes into an account that ends with {size['events_in_account']:,} events"
    return f"an account of {size['events_in_account']:,} events"


def scaling_table(points: list[dict[str, Any]], axis: str) -> str:
    head = "events per account" if axis == "events" else "accounts"
    lines = [
        f"| {head} | events | command latency, ms (gam / CRUD) | view read, ms (gam / CRUD) "
        "| as-of, s (gam / CRUD) | rebuild, s (gam / CRUD) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in points:
        key = p["per_account_events"] if axis == "events" else p["accounts"]
        cells = [
            f"{number(p[m]['figures']['gam']['median'])} / {number(p[m]['figures']['crud']['median'])}"
            for m, _, _ in SCALING_PLOTS
        ]
        lines.append(f"| {key:,} | {p['events']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plots(result: dict[str, Any], directory: Path) -> list[Path]:
    """One PNG per scaling metric (two panels: events per account, accounts) and a summary of speeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    scaling = result["scaling"]
    for metric, title, unit in SCALING_PLOTS:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, (axis, points, label) in zip(
            axes,
            (("events", scaling["events_per_account"], "events per account (1 account)"),
             ("accounts", scaling["accounts"], "accounts")),
            strict=True,
        ):  # fmt: skip
            xs = [p["per_account_events"] if axis == "events" else p["accounts"] for p in points]
            contenders = [
                c for c in ("gam", "gam_entities_only", "crud", "ceiling") if c in points[0][metric]["figures"]
            ]
            for contender in contenders:
                fs = [p[metric]["figures"][contender] for p in points]
                medians = [f["median"] for f in fs]
                errors = [[f["median"] - f["min"] for f in fs], [f["max"] - f["median"] for f in fs]]
                ax.errorbar(xs, medians, yerr=errors, marker="o", capsize=3, color=COLOURS[contender],
                            label=CONTENDER_TITLES[contender])  # fmt: skip
            if len(xs) > 1:
                ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel(unit)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{title}: median, bars min–max")
        fig.tight_layout()
        path = directory / f"scaling_{metric.rsplit('_', 1)[0]}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(9, 4.2))
    names = list(result["workloads"])
    width = 0.38
    bars = (
        (-width / 2, "gam_vs_crud", "gam vs CRUD+audit", COLOURS["crud"]),
        (width / 2, "gam_vs_ceiling", "gam vs ceiling", COLOURS["ceiling"]),
    )
    for offset, key, label, colour in bars:
        values = [result["workloads"][n]["ratios"].get(key, float("nan")) for n in names]
        ax.bar([i + offset for i in range(len(names))], values, width, label=label, color=colour)
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), [WORKLOAD_TITLES[n] for n in names], rotation=15, fontsize=8)
    ax.set_ylabel("gam's speed relative to … (1 = as fast)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path = directory / "summary_ratios.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def markdown(result: dict[str, Any], json_name: str, plot_paths: list[Path], base: Path, command: str) -> str:
    m = result["machine"]
    workloads = result["workloads"]
    commands = workloads["commands"]
    load = m["load_average_1m"]
    out = [
        "# Benchmark report",
        "",
        f"`{command}` at commit {str(result.get('commit'))[:10]}, {m['date']}: {m['cores']} cores, "
        f"{m['memory_gib']} GiB, {m['platform']}; Python "
        f"{m['python']}, PostgreSQL {m['postgresql']} (embedded unless `GAM_BENCH_POSTGRES_DSN`), broker "
        f"{m['broker']}; eventsourcing {m['eventsourcing']}, psycopg {m['psycopg']}, kafka-python "
        f"{m['kafka-python']}. Took {result['seconds']:,.0f} s; 1-minute load average {load['start']:.1f} at the "
        f"start, {load['end']:.1f} at the end (the machine is shared; ratios within one run are the figures to trust). "
        f"Raw figures: `{json_name}`.",
        "",
        "Every figure is the median over repeats with (min–max); every ratio compares medians measured in the "
        "same run and is a **speed**: above 1× gam is faster, 0.25× means gam takes four times as long. "
        "Each contender works on the same data (the demo's command mix, the same history, the same account).",
        "",
        main_table(result),
        "",
        "What each row measured:",
        "",
    ]
    for name, w in workloads.items():
        out.append(
            f"- **{WORKLOAD_TITLES[name]}**: {sizes_line(name, w)}; gam: {GAM_DOES[name]}; "
            f"CRUD+audit: {CRUD_DOES[name]}; ceiling: {CEILINGS[name]}."
        )
    raw = commands["figures"].get("raw_eventsourcing")
    out += [
        "",
        f"The floor our domain adds to: raw `eventsourcing` (a trivial aggregate, created and changed once per save, "
        f"no hash chain, no snapshots) saves {figure(raw)} aggregates/s on the same server; gam's command mix runs at "
        f"{ratio(commands['ratios'].get('gam_vs_raw_eventsourcing'))} of that. Mean stored gam event: "
        f"{commands['event_bytes']} bytes; the ceilings write rows of that size.",
        "",
    ]
    in_flight = min(result["sizes"]["http_concurrency"], result["sizes"]["accounts"])
    if "gam_http" in commands["figures"]:
        out.append(
            f"gam over HTTP (`gam serve` in its own process with the views written by `gam project`, as "
            f"`docker-compose.yml` runs them; `bench.api`'s clients over `http.client`, {in_flight} account(s) "
            f"in flight, JWT, If-Match on every change) runs at {ratio(commands['ratios'].get('gam_http_vs_gam'))} "
            f"of the service layer's rate"
            + (
                f"; with the views written by the server's own follower, in its process, at "
                f"{ratio(commands['ratios'].get('gam_http_one_process_vs_gam'))}."
                if "gam_http_one_process" in commands["figures"]
                else "."
            )
        )
    else:
        reason = result["left_out"].get("gam_http", "not measured")
        out.append(f"gam over HTTP: **pending** — {reason}.")
    out += ["", "## Scaling", ""]
    scaling = result["scaling"]
    out += [
        "One account, growing history (gam events per account; the history is deal probability revisions and "
        "stakeholder sentiment ratings, alternating):",
        "",
        scaling_table(scaling["events_per_account"], "events"),
        "",
        f"Accounts of {min(result['sizes']['scale_events']):,} events each (latencies on the first account; rebuild "
        "covers all accounts):",
        "",
        scaling_table(scaling["accounts"], "accounts"),
        "",
    ]
    flow = result.get("strategy_flow_build", [])
    if flow:
        out += [
            "## The strategy flow with a long plan history",
            "",
            "Building the views from the demo account plus N progress reports on its plan (one catch-up from "
            "position 0, one sample each). An earlier run found this view quadratic (it copied its whole plan "
            "document, which keeps every report, for every plan event: 1.3, 3.2 and 9.1 s for 200, 400 and 800 "
            "reports); it now changes the document in place and grows linearly. The scaling history above still "
            "holds no plan events, so its figures compare with earlier runs.",
            "",
            "| progress reports | events | strategy flow, s | account view + audit trail, s |",
            "| --- | --- | --- | --- |",
            *(f"| {p['progress_reports']:,} | {p['events']:,} | {number(p['strategy_flow_s'])} "
              f"| {number(p['account_view_and_audit_trail_s'])} |" for p in flow),
            "",
        ]  # fmt: skip
    out += rebuild_section(base / "results")
    out += bluegreen_section(base / "results")
    out += relay_sealed_section(base / "results")
    out += transparency_section()
    for path in plot_paths:
        out.append(f"![{path.stem}]({path.relative_to(base).as_posix()})")
    out.append("")
    return "\n".join(out)


TRANSPARENCY = Path(__file__).resolve().parent / "results" / "transparency.md"


def bluegreen_section(results: Path) -> list[str]:
    """The blue/green rebuild under live load (``python -m bench.bluegreen``), run on its own."""
    table = results / "bluegreen.md"
    if not table.exists():
        return []
    return ["## Blue/green rebuild under live load (`python -m bench.bluegreen`)", "",
            table.read_text(encoding="utf-8").strip(), ""]  # fmt: skip


def relay_sealed_section(results: Path) -> list[str]:
    """The relay publishing sealed personal data against the redacting one (alternating
    runs of ``python -m bench.relay`` on two checkouts, written up by hand)."""
    table = results / "relay_sealed.md"
    if not table.exists():
        return []
    return ["## The relay publishing personal data sealed (`python -m bench.relay`)", "",
            table.read_text(encoding="utf-8").strip(), ""]  # fmt: skip


def transparency_section() -> list[str]:
    """The transparency log's own benchmark (``python -m bench.transparency``), run on its own."""
    if not TRANSPARENCY.exists():
        return []
    return ["## Transparency log", "", f"From `python -m bench.transparency` ({TRANSPARENCY.name}):", "",
            TRANSPARENCY.read_text(encoding="utf-8").strip(), ""]  # fmt: skip


REBUILD_NOTES = Path(__file__).resolve().parent / "rebuild_notes.md"
"""What the rebuild figures mean and how they were reached (kept by hand; ``bench.rebuild`` writes the tables)."""


def rebuild_section(results: Path) -> list[str]:
    """The latest tables of ``python -m bench.rebuild`` (its own command), with their notes."""
    tables = sorted(results.glob("rebuild*.md"), key=lambda path: (path.name != "rebuild.md", path.name))
    if not tables:
        return []
    out = ["## Rebuilding the views (`python -m bench.rebuild`)", ""]
    if REBUILD_NOTES.exists():
        out += [REBUILD_NOTES.read_text().strip(), ""]
    for table in tables:
        out += [table.read_text().strip(), ""]
    reads = results / "reads.md"
    if reads.exists():
        out += [
            "## Reading parts of the account view (`python -m bench.reads`)",
            "",
            "`/stakeholder-map` and `/pipeline` derive only the sections they return (they derived the whole view), "
            "and the view routes write their answers with orjson instead of FastAPI's response-model validation and "
            "`json.dumps` (in-process HTTP through TestClient, whose own cost is most of both figures).",
            "",
            reads.read_text().strip(),
            "",
        ]
    return out
