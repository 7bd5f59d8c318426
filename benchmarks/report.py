"""Reporting: the Markdown table, results.json and results.md, the chart, the README."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
from measure import Result

README = Path(__file__).resolve().parent.parent / "README.md"


def run_meta(rounds: int, process_rounds: int, quick: bool) -> dict[str, Any]:
    """Describe the run: when, on what, with which versions and how many rounds."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": apsw.sqlitelibversion(),
        "rounds": rounds,
        "process_rounds": process_rounds,
        "quick": quick,
    }


def human(seconds: float | None, unit: str) -> str:
    """Format a median for the table."""
    if seconds is None:
        return ""
    if unit == "calls/s":
        return f"{seconds:,.0f} calls/s"
    if unit == "MB":
        return f"{seconds:,.0f} MB"
    for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if seconds >= scale or suffix == "µs":
            return f"{seconds / scale:.3g} {suffix}"
    return ""


def table_row(r: Result) -> str:
    """Render one result as a row of the Markdown table."""
    target = ""
    if r.target is not None:
        target = f"≤ {r.target:.3g}×" + (" and ≥ 100× faster" if r.indexless else "")
    if r.limit is not None:
        target = f"≤ {human(r.limit, r.unit)} and {target}"
    verdict = {True: "✓", False: "✗", None: ""}[r.met]
    ratio = "" if r.ratio is None else f"{r.ratio:.2f}×"
    speedup = ""
    if r.speedup is not None:
        digits = ",.0f" if r.speedup >= 10 else ".2g"
        speedup = f"{r.speedup:{digits}}× faster"
    return (
        f"| {r.scenario} | {human(r.dorkstore, r.unit)} | {human(r.baseline, r.unit)} | "
        f"{ratio} | {target} | {human(r.indexless, r.unit)} | {speedup} | {verdict} |"
    )


def markdown(results: list[Result], meta: dict[str, Any]) -> str:
    """Render the results as the README's Markdown table."""
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} cores), Python "
        f"{meta['python']}, SQLite {meta['sqlite']}; medians of {meta['rounds']} alternating",
        f"rounds ({meta['rounds'] * 10} for init_db, {meta['process_rounds']} for processes).",
        "Ratio = dorkstore / raw APSW on the same schema and pragmas (throughput: raw /",
        "dorkstore); raw starts from the same input and produces the same output (JSON",
        "encoded and decoded).",
        "",
        "| scenario | dorkstore | raw SQLite | ratio | target | index-less | vs index-less | met |",
        "|---|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    lines += [table_row(r) for r in results]
    return "\n".join(lines) + "\n"


def chart(curve: dict[str, Any], path: Path) -> None:
    """Plot query latency against table size for dorkstore, raw and index-less."""
    import matplotlib  # only the benchmark environment has it

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=120)
    for key, label, style in (
        ("dorkstore", "dorkstore (RelayIndex.query_messages)", "o-"),
        ("raw", "raw SQLite, same schema", "s--"),
        ("indexless", "index-less schema (original)", "^-"),
    ):
        axes.plot(curve["sizes"], [v * 1e3 for v in curve[key]], style, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("rows in relay_index")
    axes.set_ylabel("median latency (ms), log scale")
    axes.set_title("Page of 50 by endpoint + status")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def write_results(
    out: Path, results: list[Result], meta: dict[str, Any], curve: dict[str, Any]
) -> str:
    """Write results.json, results.md and the chart into `out`; return the table."""
    payload = {
        "meta": meta,
        "results": [
            asdict(r) | {"ratio": r.ratio, "speedup": r.speedup, "met": r.met} for r in results
        ],
        "query_latency_curve": curve,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(results, meta)
    (out / "results.md").write_text(table)
    chart(curve, out / "query-latency.png")
    return table


def update_readme(table: str) -> None:
    """Replace the table between the README's benchmark markers."""
    text = README.read_text()
    start, end = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
    if start not in text:
        raise SystemExit("README.md has no benchmarks markers")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    README.write_text(pattern.sub(lambda _: f"{start}\n{table}{end}", text))


def print_summary(results: list[Result], table: str) -> None:
    """Print the table, then the scenarios whose targets were missed."""
    sys.stdout.write(table)
    missed = [r.scenario for r in results if r.met is False]
    if missed:
        sys.stdout.write(f"\ntargets missed: {'; '.join(missed)}\n")
