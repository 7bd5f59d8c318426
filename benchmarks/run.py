"""dorkstore's benchmark suite: every scenario against raw SQLite, in the same run.

The baseline is the same SQLite library dorkstore uses (APSW's), on a file with
the same schema, indexes and pragmas, running the SQL each operation needs with
as little Python as possible: the physical limit on this machine. Each scenario
runs dorkstore and its baseline alternately for several rounds and reports the
median of each and their ratio. The index-less baseline is the relay index as
the original project's consolidated schema defined it: no index on subject,
endpoint, status or sender.

    python benchmarks/run.py            full sizes (1,000,000 rows); updates the
                                        committed results and the README table
    python benchmarks/run.py --quick    small sizes, under a minute; writes to
                                        benchmarks/scratch/ (what CI runs)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import report
from legacy_import import bench_legacy_import
from measure import Result
from postgres import bench_postgres
from scenarios import (
    bench_bulk,
    bench_growth,
    bench_metrics,
    bench_open,
    bench_processes,
    bench_queries,
    bench_single,
    bench_startup,
)

HERE = Path(__file__).resolve().parent


def run_scenarios(
    quick: bool, rounds: int, process_rounds: int
) -> tuple[list[Result], dict[str, Any]]:
    """Run every scenario in order, in a scratch directory; return the results and the curve."""
    sizes = [1_000, 5_000, 20_000] if quick else [10_000, 100_000, 1_000_000]
    bulk = 5_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="dorkstore-bench-") as scratch:
        work = Path(scratch)
        results = bench_open(work, rounds)
        results += bench_startup(work, rounds)
        results += bench_bulk(work, rounds, bulk)
        query_results, curve = bench_queries(work, rounds, sizes)
        results += query_results
        results += bench_growth(
            work, rounds, sizes[-1], 200 if quick else 2_000, 2_000 if quick else 20_000
        )
        results += bench_metrics(work, rounds, 20_000 if quick else 1_000_000)
        results += bench_single(work, rounds, 100 if quick else 500)
        results += bench_processes(work, process_rounds, 200 if quick else 2_000)
        results += bench_legacy_import(work, process_rounds, 20_000 if quick else 1_000_000)
    results += bench_postgres(rounds, bulk, 100 if quick else 500, 200 if quick else 2_000)
    return results, curve


def main() -> None:
    """Run every scenario and write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", type=Path, help="where results go (default: see above)")
    options = parser.parse_args()
    quick = options.quick
    out = options.out or (HERE / "scratch" if quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    rounds = 3 if quick else 5
    process_rounds = 1 if quick else 3
    results, curve = run_scenarios(quick, rounds, process_rounds)
    table = report.write_results(
        out, results, report.run_meta(rounds, process_rounds, quick), curve
    )
    if not quick and options.out is None:
        report.update_readme(table)
    report.print_summary(results, table)


if __name__ == "__main__":
    main()
