"""The offline run at 300 and 3,000 candidates: time per stage, and the share spent in Prefect.

    .venv/bin/python benchmarks/bench_offline_run.py [--sizes 300 3000]

For each size, the same stage functions run twice from empty work folders:
  direct: called one after another in plain Python (no orchestrator),
  flow:   through the build_dataset Prefect flow (tasks, persisted results, artifacts),
both with one worker so that they do the same work in the same order. Prefect's share is
(flow - direct) / flow. The temporary Prefect server's start-up is measured separately (a server
you run yourself does not pay it on each run).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="mossforge-bench-prefect-"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from flows import stages  # noqa: E402
from flows.publish import publish_local  # noqa: E402
from mossforge.config import Config, load_config  # noqa: E402

STAGE_ORDER = ["plan", "generate", "dedup", "render", "target_check", "consensus_label", "publish"]


def run_direct(cfg: Config) -> dict[str, float]:
    """The flow's stage sequence as plain function calls: what the work costs without Prefect."""
    times: dict[str, float] = {}
    work = cfg.run.work_path()
    run_dir = work / cfg.config_hash()

    def timed(stage, fn):
        t0 = time.perf_counter()
        result = fn()
        times[stage] = time.perf_counter() - t0
        return result

    slot_paths, _ = timed("plan", lambda: stages.plan_stage(cfg, run_dir))
    generated = timed("generate", lambda: [
        stages.generate_batch(cfg, p, str(run_dir / "generate" / Path(p).name))[0] for p in slot_paths])
    unique, report = timed("dedup", lambda: stages.dedup_stage(cfg, generated, run_dir))
    rendered = timed("render", lambda: [
        stages.render_batch(cfg, p, str(run_dir / "render" / Path(p).name), str(work / "images"))[0]
        for p in unique])
    checked, _ = timed("target_check", lambda: stages.not_run_stage("target_check", rendered, ""))
    labelled, _ = timed("consensus_label", lambda: stages.not_run_stage("consensus_label", checked, ""))

    def publish():
        records = stages.read_records(labelled)
        dropped = stages.read_records([run_dir / "dropped" / "dedup.parquet"])
        return publish_local(records, dropped, cfg, [], work / "images")

    timed("publish", publish)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 3000], help="total candidates")
    args = parser.parse_args()
    console = Console(width=170)

    from filters.embeddings import MiniLMEmbedder
    MiniLMEmbedder().encode(["warm up"])  # model import and load: paid once, by neither run

    from prefect import flow

    from flows.build import build_dataset, run_build

    t0 = time.perf_counter()
    flow(lambda: None, name="warm-up")()  # starts this process's temporary Prefect server
    server_s = time.perf_counter() - t0
    # What one CLI invocation pays to start a temporary server, in a new process: with a new
    # PREFECT_HOME (first run: the database is created) and again with the same one (later runs).
    home = tempfile.mkdtemp(prefix="mossforge-bench-home-")
    startup = {}
    for label in ("first run", "later runs"):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from prefect import flow; flow(lambda: None, name='s')()"],
                       env={**os.environ, "PREFECT_HOME": home}, check=True, capture_output=True)
        startup[label] = time.perf_counter() - t0
    shutil.rmtree(home, ignore_errors=True)
    build_dataset  # noqa: B018 (imported to register the flow before timing)

    rows = []
    for size in args.sizes:
        per_type = size // 3
        root = Path(tempfile.mkdtemp(prefix=f"mossforge-bench-{size}-"))
        common = {"plan.per_type": per_type, "run.max_workers": 1, "dedup.against_published": False}
        direct_cfg = load_config(overrides={**common, "run.out_dir": str(root / "direct"),
                                            "run.work_dir": str(root / "direct-work")})
        flow_cfg = load_config(overrides={**common, "run.out_dir": str(root / "flow"),
                                          "run.work_dir": str(root / "flow-work")})
        t0 = time.perf_counter()
        direct = run_direct(direct_cfg)
        direct_total = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = run_build(flow_cfg)
        flow_total = time.perf_counter() - t0
        flow_stages = {row["stage"]: row["wall_seconds"] for row in summary["funnel"]}
        # Time spent inside the stage functions during the flow run (each measures itself):
        # the rest of the flow's wall time is orchestration.
        inside = sum(row["seconds"] for row in summary["funnel"])
        rows.append((size, direct, direct_total, flow_stages, flow_total, summary["counts"]["benign"], inside))
        shutil.rmtree(root, ignore_errors=True)

    table = Table(title=f"offline run, {platform.machine()}, {os.cpu_count()} cores "
                        f"(seconds; one worker; this process's temporary server start-up {server_s:.1f} s, not included)")
    table.add_column("candidates", justify="right")
    table.add_column("run")
    for stage in STAGE_ORDER:
        table.add_column(stage, justify="right")
    table.add_column("total", justify="right")
    table.add_column("published", justify="right")
    for size, direct, direct_total, flow_stages, flow_total, published, inside in rows:
        table.add_row(str(size), "direct", *[f"{direct[s]:.2f}" for s in STAGE_ORDER], f"{direct_total:.2f}", str(published))
        table.add_row("", "flow", *[f"{flow_stages.get(s, 0):.2f}" for s in STAGE_ORDER], f"{flow_total:.2f}", str(published))
        share = (flow_total - direct_total) / flow_total
        orchestration = (flow_total - inside) / flow_total
        later = startup["later runs"]
        with_start = (flow_total - inside + later) / (flow_total + later)
        table.add_row("", "Prefect share", "", "", "", "", "", "", "",
                      f"{share:.1%}", "flow vs direct")
        table.add_row("", "", "", "", "", "", "", "", "", f"{orchestration:.1%}",
                      "flow wall outside stage code")
        table.add_row("", "", "", "", "", "", "", "", "", f"{with_start:.1%}",
                      "same, + a later run's server start-up")
    console.print(table)
    console.print("temporary Prefect server, start-up of a new process (python + prefect import + server): "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items())
                  + ". A running `prefect server start` (PREFECT_API_URL set) avoids it.")


if __name__ == "__main__":
    main()
