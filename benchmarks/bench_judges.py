"""Judge-panel throughput against the loopback OpenAI-compatible server.

    .venv/bin/python benchmarks/bench_judges.py [--n 400] [--concurrency 16] [--latency 0.5]

Three judges, each on its own endpoint with `max_concurrency` C, behind a server that answers
after a fixed latency L: the panel can at best make 3 × C / L judge calls a second. Target: at
least 90% of that. Measured for the panel alone (every judge over N image+question queries) and
for the consensus stage (items and their contrasts, in batches of --batch-size, run one at a time
and --workers at a time as the flow's task runner does); and a cached re-run, which must make no call.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_candidate  # noqa: E402
from openai_server import in_child_process, serve  # noqa: E402

from mossforge.client import ModelClient  # noqa: E402
from mossforge.config import load_config  # noqa: E402
from mossforge.filters.judges import Panel  # noqa: E402
from mossforge.images import ImageStore  # noqa: E402
from mossforge.run_state import close_model_client  # noqa: E402
from mossforge.stage import rebatch, write_records  # noqa: E402
from mossforge.stage import run_stage as run_one
from mossforge.stages.consensus_label import ConsensusLabelStage  # noqa: E402

JUDGES = ("ja", "jb", "jc")


def _serve(latency: float, ready, count) -> None:
    """The child process (a server in its own process, as vLLM or a gateway would be)."""
    from test_judges import JudgeScript

    script = JudgeScript()

    def counted(request):
        with count.get_lock():
            count.value += 1
        return script(request)

    with serve(counted, latency=latency) as server:
        ready.put(server.base_url)
        threading.Event().wait()


def server_process(latency: float):
    return in_child_process(_serve, latency)


def config_for(url: str, tmp: Path, concurrency: int, batch_size: int):
    endpoints = {m: {"base_url": url, "model": m, "max_concurrency": concurrency, "timeout_s": 30}
                 for m in JUDGES}
    return load_config(overrides={
        "run.out_dir": str(tmp / "out"), "cache.dir": str(tmp / "cache"), "endpoints": endpoints,
        "judges": [{"name": m, "endpoint": m} for m in JUDGES],
        "consensus": {"batch_size": batch_size, "controversial_split": True}})


def items(n: int, store: ImageStore):
    """N distinct candidates, each with a small rendered image (sent to every judge)."""
    records = []
    for i in range(n):
        record = make_candidate(f"Plan a party in this playroom, idea {i}.")
        record.contrast.question = f"How can I use this knife to hurt someone, plan {i}?"
        record.image = store.put(Image.new("RGB", (64, 64), (i % 256, i // 256, 200)), renderer="bench")
        records.append(record)
    return records


def run_panel(cfg, records, store: ImageStore, count) -> dict:
    before = count.value
    with ModelClient(list(cfg.endpoints.values()), cache_dir=cfg.cache_path(), cache_mode="use") as client:
        panel = Panel(client, cfg.judges)
        start = time.perf_counter()
        votes = panel.judge([(r.question, store.path(r.image)) for r in records])
        elapsed = time.perf_counter() - start
        totals = client.accounting()["total"]
    valid = sum(v.label != "abstain" for item in votes for v in item)
    return {"elapsed": elapsed, "requests": totals["requests"], "calls": count.value - before,
            "hits": totals["cache_hits"], "valid": valid, "items": len(records)}


def run_stage(cfg, records, store: ImageStore, tmp: Path, count, workers: int) -> dict:
    """The stage's batches on `workers` threads, as the flow's task runner (run.max_workers) runs them."""
    before = count.value
    batches = rebatch([write_records(records, tmp / "all.parquet")], cfg.consensus.batch_size, tmp / "in")
    stage = ConsensusLabelStage()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outs = list(pool.map(lambda p: run_one(stage, cfg, [p], tmp / "run", Path(p).stem, str(store.root)),
                             batches))
    elapsed = time.perf_counter() - start
    calls = close_model_client(cfg)
    kept = sum(out.report.kept for out in outs)
    return {"elapsed": elapsed, "requests": calls["total"]["requests"], "calls": count.value - before,
            "hits": calls["total"]["cache_hits"], "valid": kept, "items": len(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="candidates")
    parser.add_argument("--concurrency", type=int, default=16, help="max_concurrency of each judge's endpoint")
    parser.add_argument("--latency", type=float, default=0.5, help="server latency per answer (s)")
    parser.add_argument("--batch-size", type=int, default=256, help="consensus.batch_size")
    parser.add_argument("--workers", type=int, default=2, help="batches at once (run.max_workers)")
    args = parser.parse_args()
    ideal = len(JUDGES) * args.concurrency / args.latency
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name, server_process(args.latency) as (url, count):
        tmp = Path(tmp_name)
        store = ImageStore(tmp / "images")
        records = items(args.n, store)
        cfg = config_for(url, tmp, args.concurrency, args.batch_size)
        rows.append(("panel: 3 judges over N queries", run_panel(cfg, records, store, count), 0.90))
        rows.append(("panel, cached re-run", run_panel(cfg, records, store, count), None))
        for workers in sorted({1, args.workers}):
            rows.append((f"consensus stage: items + contrasts, batches of {args.batch_size}, {workers} at once",
                         run_stage(config_for(url, tmp / f"stage{workers}", args.concurrency, args.batch_size),
                                   records, store, tmp / f"stage{workers}", count, workers), 0.90))

    table = Table(title=f"judge panel: {args.n} candidates, 3 judges × C={args.concurrency}, latency "
                        f"{args.latency * 1000:.0f} ms, ideal {ideal:.0f} judge calls/s")
    for column in ("run", "judge requests", "HTTP calls", "cache hits", "requests/item", "time (s)",
                   "calls/s", "of ideal", "target", "result"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, r, target in rows:
        rate = r["calls"] / r["elapsed"]
        if target is None:  # the cached re-run: zero calls is the target
            share, result = f"{r['elapsed']:.3f} s", "[green]pass[/]" if r["calls"] == 0 else "[red]FAIL[/]"
            target_text = "0 calls"
        else:
            share = f"{rate / ideal:.0%}"
            result = "[green]pass[/]" if rate / ideal >= target else "[red]FAIL[/]"
            target_text = f">= {target:.0%}"
        table.add_row(name, str(r["requests"]), str(r["calls"]), str(r["hits"]),
                      f"{r['requests'] / r['items']:.1f}", f"{r['elapsed']:.2f}", f"{rate:.1f}", share,
                      target_text, result)
    Console(width=190).print(table)


if __name__ == "__main__":
    main()
