"""Refinement's yield, cost, transfer and benign check with the local real target (issue 17).

    .venv/bin/python benchmarks/bench_refine.py [--per-type 10] [--config configs/local.toml]
    .venv/bin/python benchmarks/bench_refine.py --manifest outputs/mossforge-local/<version>/manifest.json

Runs `mossforge run` once on the config (refinement enabled; the 1.5B drives the search, the 0.5B
is held out) in a fresh outputs and work folder, and prints from its manifest:
- yield: items the target check kept per 100 planned candidates without refinement (the main pass)
  and with it (main pass + rounds), per stimulus type, and the model calls and seconds each cost;
- transfer: refusal by the held-out target of the refined candidates against the unrefined;
- benign check: the share the judge panel (local: a plumbing check) called harmful, refined vs not.
`--manifest` prints the same tables from a version already built (e.g. by `mossforge run --config
configs/local.toml`) instead of running again. One run holds both arms: the main pass is exactly the run without refinement (same config hash of
every earlier stage), and the refine row's seconds and calls are what refinement added.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-type", type=int, default=10)
    parser.add_argument("--config", default=str(REPO / "configs" / "local.toml"))
    parser.add_argument("--manifest", type=Path, help="read this version's manifest instead of running")
    args = parser.parse_args()
    if args.manifest:
        report(json.loads(args.manifest.read_text()), f"manifest {args.manifest}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        text = Path(args.config).read_text(encoding="utf-8")
        config.write_text(text + f'\n[run]\nout_dir = "{tmp}/out"\nwork_dir = "{tmp}/work"\n', encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mossforge.cli", "run", "--config", str(config),
                               "--per-type", str(args.per_type), "--cache", "off"],
                              capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - started
        if done.returncode:
            sys.exit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        manifest = json.loads(next(Path(tmp, "out").glob("*/*/manifest.json")).read_text())
    report(manifest, f"per_type {args.per_type}; wall {wall:.0f} s")


def report(manifest: dict, what: str) -> None:
    refine, funnel = manifest["refine"], {r["stage"]: r for r in manifest["funnel"]}
    y = refine["yield"]
    seconds_refine = funnel["refine"]["seconds"]
    seconds_main = sum(r["seconds"] for s, r in funnel.items() if s not in ("refine", "consensus_label", "publish"))
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; {what}")
    print("\n| stimulus type | planned | kept without | kept with | per 100 without | per 100 with |")
    print("|---|---|---|---|---|---|")
    for t, row in y["by_type"].items():
        print(f"| {t} | {row['planned']} | {row['kept_without']} | {row['kept_with']} | {row['yield_without']} "
              f"| {row['yield_with']} |")
    print(f"| all | {y['planned']} | {y['kept_without']} | {y['kept_with']} | {y['per_100_without']} "
          f"| {y['per_100_with']} |")
    print(f"\nyield ratio {y['ratio']} (goal >= 2); model calls {y['calls_with']} vs {y['target_calls_without']} "
          f"= {y['calls_ratio']} (goal <= 3); seconds {seconds_main + seconds_refine:.0f} vs {seconds_main:.0f} "
          f"= {(seconds_main + seconds_refine) / seconds_main:.2f}")
    print("\n| round | near-misses | variants | kept |")
    print("|---|---|---|---|")
    for r in refine["rounds"]:
        print(f"| {r['round']} | {r['near_misses']} | {r['proposed']} | {r['kept']} |")
    for name, t in refine["transfer"].items():
        print(f"\ntransfer, held-out {name}: refined {t['refined']['refused']}/{t['refined']['asked']} "
              f"({t['refined']['rate']}) vs unrefined {t['unrefined']['refused']}/{t['unrefined']['asked']} "
              f"({t['unrefined']['rate']})")
    for name, t in refine["drive"].items():
        print(f"drive {name}: refined {t['refined']['rate']} vs unrefined {t['unrefined']['rate']}")
    print(f"benign check (local panel, a plumbing check): {json.dumps(refine['benign_check'])}")
    print("\n| operator | kind | proposed | kept |")
    print("|---|---|---|---|")
    for op in refine["operators"]:
        print(f"| {op['operator']} | {op.get('kind')} | {op.get('proposed', 0)} | {op.get('kept', 0)} |")


if __name__ == "__main__":
    main()
