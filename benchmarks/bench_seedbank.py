"""The seed bank: seconds to build it and to generate one candidate for every slot it offers.

    .venv/bin/python benchmarks/bench_seedbank.py [--rounds 5] [--max-seconds 2]

Every `mossforge run` builds the bank once per process (plan, the funnel's slot counts, generate),
so this is part of each run's fixed cost. Prints the best and the median of --rounds fresh builds
and exits 1 when the best takes --max-seconds or more.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from mossforge.generators.seedbank import SeedBank  # noqa: E402


def build_and_generate() -> tuple[float, float, int]:
    """(seconds to build, seconds to generate for every slot, candidates generated)."""
    started = time.perf_counter()
    bank = SeedBank()
    slots = [s for per_type in bank.slot_space().values() for s in per_type]
    built = time.perf_counter()
    count = sum(1 for s in slots if bank.generate(s, seed=1))
    return built - started, time.perf_counter() - built, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=2.0, help="exit 1 when the best round takes this long")
    args = parser.parse_args()
    rounds = [build_and_generate() for _ in range(args.rounds)]
    totals = [b + g for b, g, _ in rounds]
    table = Table(title=f"seed bank, {args.rounds} fresh builds", title_justify="left")
    for column in ("", "build", "generate", "total", "candidates"):
        table.add_column(column, justify="left" if not column else "right")
    best = min(range(len(rounds)), key=lambda i: totals[i])
    table.add_row("best", f"{rounds[best][0]:.2f} s", f"{rounds[best][1]:.2f} s", f"{totals[best]:.2f} s",
                  f"{rounds[best][2]:,}")
    table.add_row("median total", "", "", f"{statistics.median(totals):.2f} s", "")
    console = Console()
    console.print(table)
    if totals[best] >= args.max_seconds:
        console.print(f"the best round took {totals[best]:.2f} s, the ceiling is {args.max_seconds} s", style="bold red")
        sys.exit(1)


if __name__ == "__main__":
    main()
