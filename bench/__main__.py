"""One benchmark command for the whole system: gam beside the CRUD+audit system a
team would build instead, and PostgreSQL's and Kafka's own ceilings.

    python -m bench [--quick] [--out DIR] [--no-plots]

Full sizes (the figures in REPORT.md) take about a quarter of an hour on two
cores; ``--quick`` takes about a minute and writes under ``bench/results/quick/``
(kept out of git). See ``bench.suite`` for what is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.common import kafka_bootstrap, postgres
from bench.suite import FULL, QUICK, Sizes, run_suite, write_json

BENCH = Path(__file__).resolve().parent


def outputs(out: Path, quick: bool) -> tuple[Path, Path, Path]:
    """(results JSON, REPORT.md, plots directory) under ``out``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    if quick:
        out = out / "results" / "quick"
        out.mkdir(parents=True, exist_ok=True)
        (out / ".gitignore").write_text("*\n", encoding="utf-8")
        return out / f"{stamp}.json", out / "REPORT.md", out / "plots"
    return out / "results" / f"{stamp}.json", out / "REPORT.md", out / "plots"


def source_commit() -> str | None:
    """The commit measured: ``GAM_BENCH_COMMIT`` (a run from an exported tree), else git's HEAD."""
    if os.environ.get("GAM_BENCH_COMMIT"):
        return os.environ["GAM_BENCH_COMMIT"]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: small sizes, two repeats")
    parser.add_argument("--out", type=Path, default=BENCH, help="where results/, REPORT.md and plots/ go")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs (no matplotlib needed)")
    args = parser.parse_args(argv)
    sizes: Sizes = QUICK if args.quick else FULL
    json_path, report_path, plot_dir = outputs(args.out, args.quick)

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gam-bench-")))
        dsn = stack.enter_context(postgres(tmp))
        bootstrap, broker = stack.enter_context(kafka_bootstrap(tmp))
        result = run_suite(dsn, bootstrap, broker, sizes, log)
    result["commit"] = source_commit()
    write_json(result, json_path)
    plot_paths = [] if args.no_plots else report.plots(result, plot_dir)
    command = "python -m bench" + (" --quick" if args.quick else "")
    json_name = json_path.relative_to(report_path.parent).as_posix()
    text = report.markdown(result, json_name, plot_paths, report_path.parent, command)
    report_path.write_text(text, encoding="utf-8")
    print(report.main_table(result))
    log(f"wrote {json_path}, {report_path} and {len(plot_paths)} plots")


if __name__ == "__main__":
    main()
