"""The test suite's wall time in one process and on pytest-xdist workers, one after the other.

    .venv/bin/python benchmarks/bench_test_suite.py [--modes serial,2] [-- PYTEST ARGS]

CI runs the README's test command (`pytest -n 2`: two workers, each test file on one) inside a
30-minute budget that also holds the bootstrap (about 8 minutes). A mode is `serial` (plain
`pytest`) or a worker count; each run is a fresh `python -m pytest -q -p no:cacheprovider`. Prints
wall seconds, the ratio to the first mode, and the pass/fail line of each. Slow: the serial suite
takes about 16 minutes on two cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def run(mode: str, extra: list[str]) -> tuple[float, str, int]:
    """(wall seconds, pytest's summary line, exit code) of one full run in `mode`."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    if mode != "serial":
        args += ["-n", mode]
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line]
    return seconds, (lines[-1].strip("= ") if lines else done.stdout[-200:]), done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="serial,2", help="comma-separated: serial, or a worker count")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    table = Table(title="test suite, one run per mode")
    for column in ("mode", "wall s", "ratio", "result"):
        table.add_column(column)
    first = None
    failed = False
    for mode in args.modes.split(","):
        seconds, summary, code = run(mode.strip(), args.pytest_args)
        first = first or seconds
        failed |= code != 0
        table.add_row(mode, f"{seconds:.0f}", f"{seconds / first:.2f}", summary)
    Console().print(table)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
