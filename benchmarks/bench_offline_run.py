"""The offline run at 300 and 3,000 candidates: time per stage, and the share spent in Prefect.

    .venv/bin/python benchmarks/bench_offline_run.py [--sizes 300 3000]
    .venv/bin/python benchmarks/bench_offline_run.py --loop [--per-type 100]

--loop measures the everyday loop instead (issue 18's ratios, in one run): `mossforge --help`, the
managed server's first start (once, on its own; it starts the warm runner too), the default build
through the CLI (wall vs the sum of its stages' seconds) handed to the warm runner, then the same
first build in its own process (MOSSFORGE_WARM_RUNS=0), the same command again (all cached) vs
`--help`, and the offline
renderer on one process vs every core. The machine's load average is printed before and after.

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
import re
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

from mossforge import stages  # noqa: E402
from mossforge.config import Config, load_config  # noqa: E402
from mossforge.release.publish import publish_local  # noqa: E402
from mossforge.stage import read_records, rebatch, run_stage  # noqa: E402

STAGE_ORDER = list(stages.FUNNEL_ROWS)


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

    # the pipeline list, each stage through the stage runner (no top-up round: one pass)
    image_root = str(work / "images")
    paths: list[str] = []
    dropped: list[str] = []
    for step in stages.PIPELINE:
        def one(step=step, paths=paths):
            if step.scope == "all" or step.not_run_reason(cfg) is not None:
                return [run_stage(step, cfg, paths, run_dir, "all", image_root)]
            size = step.batch_size(cfg)
            inputs = rebatch(paths, size, run_dir / "batches" / step.name) if size and paths else paths
            return [run_stage(step, cfg, [p], run_dir, Path(p).stem, image_root) for p in inputs]

        t0 = time.perf_counter()
        results = one()
        times[step.funnel_row] = times.get(step.funnel_row, 0.0) + time.perf_counter() - t0
        paths = [p for r in results for p in r.kept]
        dropped += [p for r in results for p in r.dropped]

    def publish():
        return publish_local(read_records(paths), read_records(dropped), cfg, [], work / "images")

    timed("publish", publish)
    return times


REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^│ (\w+)\s+│ (\w+)\s+│\s+\d+ │\s+\d+ │.*│\s+([\d.]+) │$")


def _timed_cli(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "mossforge"), *args], env=env, cwd=REPO,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"mossforge {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc


def _stage_seconds(stderr: str) -> dict[str, tuple[str, float]]:
    return {m[1]: (m[2], float(m[3])) for line in stderr.splitlines() if (m := ROW.match(line.strip()))}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def everyday_loop(per_type: int, render_n: int, repeats: int = 3) -> None:
    """Issue 18's goals, as ratios measured in one run: the default build through the CLI with the
    managed server (started once, before, and timed on its own), the same command again (all
    cached), `mossforge --help`, and the offline renderer on one process and on every core."""
    console = Console(width=170)
    root = Path(tempfile.mkdtemp(prefix="mossforge-bench-loop-"))
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect"), "MOSSFORGE_SERVER_DIR": str(root / "server"),
           "MOSSFORGE_SERVER_PORT": "0", "COLUMNS": "200", "PREFECT_LOGGING_LEVEL": "WARNING"}
    for key in ("PREFECT_API_URL", "MOSSFORGE_SERVER"):
        env.pop(key, None)
    from mossforge.filters.embeddings import default_runtime

    runtime = default_runtime()
    console.print(f"before: {_load()}; dedup embeds with {runtime}" + (
        " (no ONNX export in this environment: `python -m mossforge.filters.embeddings --export`)"
        if runtime == "torch" else ""))
    rows = []
    try:
        help_s = sorted(_timed_cli(["--help"], env)[0] for _ in range(3))[1]
        rows.append(("mossforge --help (median of 3)", help_s, ""))
        server_s, _ = _timed_cli(["server", "start"], env)
        rows.append(("mossforge server start (first use, once)", server_s, "not part of any run below"))
        run = ["run", "--per-type", str(per_type), "--outputs", str(root / "out")]
        # The default (a run handed to the warm runner that `server start` started), then the same
        # first build in its own process (MOSSFORGE_WARM_RUNS=0, a new outputs folder: no cache)
        first_s, first = _timed_cli(run, env)
        if ": run --per-type" not in (root / "server" / "runner.log").read_text(encoding="utf-8", errors="replace"):
            raise SystemExit("the first build did not go to the warm runner (see its log, runner.log)")
        own_s, own = _timed_cli(["run", "--per-type", str(per_type), "--outputs", str(root / "out-own")],
                                {**env, "MOSSFORGE_WARM_RUNS": "0"})
        for label, wall, proc in (("first build (warm runner, the default)", first_s, first),
                                  ("first build in its own process (MOSSFORGE_WARM_RUNS=0)", own_s, own)):
            stages_of = _stage_seconds(proc.stderr)
            total = sum(sec for _, sec in stages_of.values())
            rows.append((f"{label}, wall", wall, ", ".join(f"{k} {v[1]:.1f}" for k, v in stages_of.items())))
            rows.append(("  sum of the stages' seconds", total, "goal <= 10 s on an idle 2-core machine"))
            rows.append(("  wall / sum of stages", wall / total, "goal <= 1.3"))
            rows.append(("  fixed cost (wall - sum of stages)", wall - total,
                         "imports, the flow run's API calls, the summary, the exit: what a quicker machine "
                         "cannot hide behind the stages"))
        cached_s, cached = _timed_cli(run, env)
        shortcut = "already published" in cached.stderr
        if cached.stdout.strip() != first.stdout.strip():
            raise SystemExit(f"the re-run printed another version:\n{cached.stdout}\n{first.stdout}")
        rows.append(("same command again, wall", cached_s, "answered from its receipt: no flow run" if shortcut
                     else ", ".join(f"{k} {v[0]}" for k, v in _stage_seconds(cached.stderr).items())))
        rows.append(("  same again / --help", cached_s / help_s, "goal <= 3"))
        # for comparison: the same re-run through the flow, every task cached (receipts removed)
        shutil.rmtree(root / "out" / ".work" / "receipts", ignore_errors=True)
        flow_s, flow_run = _timed_cli(run, env)
        rows.append(("  the same through the flow (receipt removed)", flow_s,
                     ", ".join(f"{k} {v[0]}" for k, v in _stage_seconds(flow_run.stderr).items())))
    finally:
        subprocess.run([str(Path(sys.executable).parent / "mossforge"), "server", "stop"], env=env,
                       capture_output=True)

    from mossforge.config import load_config as _load_config
    from mossforge.generators.render_pool import render_offline

    cfg = _load_config(overrides={"plan.per_type": -(-render_n // 3)})
    paths: list[str] = []
    for name in ("plan", "generate"):  # the default build's candidates, without dedup
        paths = run_stage(stages.by_name(name), cfg, paths, root / "render-bench", "all").kept
    records = read_records(paths)[:render_n]
    render_offline(records[:4], cfg.render.size, str(root / "warm"), workers=2)  # pool start-up, not timed
    speeds = {1: 0.0, 2: 0.0}
    for attempt in range(repeats):  # alternating; the best of each (other load only slows a run down)
        for workers in (1, 2):
            t0 = time.perf_counter()
            render_offline(records, cfg.render.size, str(root / f"images-{workers}-{attempt}"), workers=workers)
            speeds[workers] = max(speeds[workers], len(records) / (time.perf_counter() - t0))
    for workers in (1, 2):
        rows.append((f"render {len(records)} images, {workers} process{'es' if workers > 1 else ''} (best of {repeats})",
                     len(records) / speeds[workers], f"{speeds[workers]:.1f} images/s"))
    rows.append(("  two / one (images per second)", speeds[2] / speeds[1], "goal >= 1.7"))
    shutil.rmtree(root, ignore_errors=True)

    table = Table(title=f"the everyday loop: default build of {3 * per_type} candidates, {platform.machine()}, "
                        f"{os.cpu_count()} cores (seconds, or a ratio)", title_justify="left")
    for column in ("what", "figure", "detail"):
        table.add_column(column, justify="right" if column == "figure" else "left")
    for what, figure, detail in rows:
        table.add_row(what, f"{figure:.2f}", detail)
    console.print(table)
    console.print(f"after: {_load()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 3000], help="total candidates")
    parser.add_argument("--loop", action="store_true", help="measure the everyday loop (issue 18's goals) "
                        "instead: first build, cached re-run, --help, render on one and on every core")
    parser.add_argument("--per-type", type=int, default=100, help="--loop: the build's candidates per type")
    parser.add_argument("--render-n", type=int, default=240, help="--loop: images rendered per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="--loop: render measurements per process count")
    args = parser.parse_args()
    if args.loop:
        everyday_loop(args.per_type, args.render_n, args.repeats)
        return
    console = Console(width=170)

    from mossforge.filters.embeddings import MiniLMEmbedder
    MiniLMEmbedder().encode(["warm up"])  # model import and load: paid once, by neither run

    from prefect import flow

    from mossforge.flows.build import build_dataset, run_build

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
