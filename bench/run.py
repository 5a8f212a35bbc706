"""`python -m bench`: run every scenario, print the table, write bench/results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import Figure, table
from bench.scenarios import FULL, Scale, all_scenarios

RESULTS = Path(__file__).resolve().parent / "results.json"


def results(figures: list[Figure], scale: Scale, seconds: float) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scale": asdict(scale),
        "seconds": round(seconds, 1),
        "passed": all(f.ok is not False for f in figures),
        "figures": [f.as_json() for f in figures],
    }


async def run(scale: Scale, only: frozenset[str] = frozenset("123456")) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="itch-role-bot-bench-") as workdir:
        figures = await all_scenarios(scale, Path(workdir), only)
    report = results(figures, scale, time.perf_counter() - started)
    report["table"] = table(figures)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--only", default="123456", help="scenario numbers to run, e.g. 14 (default: all)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a figure misses its bound"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(run(FULL, frozenset(args.only)))
    table_text = report.pop("table")
    print(table_text)
    failed = [f for f in report["figures"] if f["ok"] is False]
    print(
        f"\n{len(report['figures'])} figures in {report['seconds']:.0f} s on "
        f"{report['machine']['cpus']} CPUs; "
        + (f"{len(failed)} miss their bound." if failed else "every bound is met.")
    )
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"Written to {args.out}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
