"""Model-client throughput against the loopback OpenAI-compatible server.

    .venv/bin/python benchmarks/bench_client.py [--n 1600] [--concurrency 16] [--latency 0.2]

With a fixed server latency L and a concurrency bound C, the best possible throughput is C / L
requests a second. Targets: >= 90% of that on clean answers, >= 80% when 5% of the requests are
answered 429 (with a small Retry-After), and a cached re-run that makes zero HTTP calls.

The server runs in a child process, as vLLM or a gateway would: in this process it would share
the GIL with the client and the benchmark would measure the test server's Python as well.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from openai_server import in_child_process, rate_limited, serve  # noqa: E402

from mossforge.client import EndpointConfig, ModelClient  # noqa: E402
from mossforge.generators.llm import LLMGenerator  # noqa: E402
from mossforge.generators.plan import draw_slots  # noqa: E402
from mossforge.generators.seedbank import SeedBank  # noqa: E402


def _serve(latency: float, every: int, retry_after: float, ready, count) -> None:
    """The child process: a loopback server that answers every `every`-th request with a 429."""
    from test_llm_generator import Writer  # writes one valid candidate per slot of a prompt

    writer = Writer()

    def script(request):
        with count.get_lock():
            count.value += 1
            nth = count.value
        if every and nth % every == 0:
            return rate_limited(retry_after)
        return writer(request) if "<slots>" in str(request.body.get("messages")) else None

    with serve(script, latency=latency) as server:
        ready.put(server.base_url)
        threading.Event().wait()


def server_process(latency: float, every: int = 0, retry_after: float = 0.0):
    return in_child_process(_serve, latency, every, retry_after)


def run(base_url: str, count, n: int, concurrency: int, cache_dir: Path, cache_mode: str) -> dict:
    config = EndpointConfig(name="bench", base_url=base_url, model="bench-model",
                            max_concurrency=concurrency, timeout_s=10, max_retries=6)
    before = count.value
    with ModelClient([config], cache_dir=cache_dir, cache_mode=cache_mode) as client:
        batch = [[{"role": "user", "content": f"benchmark question {i}"}] for i in range(n)]
        start = time.perf_counter()
        results = client.chat_many("bench", batch, stage="bench")
        elapsed = time.perf_counter() - start
        totals = client.accounting()["total"]
    return {"elapsed": elapsed, "ok": sum(r.ok for r in results), "calls": totals["calls"],
            "server_requests": count.value - before, "retries": totals["retries"],
            "hits": totals["cache_hits"]}


def run_generation(base_url: str, count, calls: int, concurrency: int, cache_dir: Path,
                   cache_mode: str) -> dict:
    """LLM candidate generation: `calls` calls of 4 slots each, 2 x concurrency calls in flight."""
    config = EndpointConfig(name="bench", base_url=base_url, model="bench-model",
                            max_concurrency=concurrency, timeout_s=10, max_retries=6)
    slots = draw_slots(SeedBank().slot_space(), per_type=-(-calls * 4 // 3), seed=0)[:calls * 4]
    before = count.value
    with ModelClient([config], cache_dir=cache_dir, cache_mode=cache_mode) as client:
        generator = LLMGenerator(client, "bench", candidates_per_call=4, calls_in_flight=2 * concurrency)
        start = time.perf_counter()
        records, stats = generator.generate(slots, seed=0)
        elapsed = time.perf_counter() - start
        totals = client.accounting()["total"]
    return {"elapsed": elapsed, "ok": len(records), "calls": totals["calls"],
            "server_requests": count.value - before, "retries": totals["retries"],
            "hits": totals["cache_hits"], "requests": totals["requests"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1600)  # ~20 s: start-up costs amortised
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per answer (s)")
    parser.add_argument("--rate-limited", type=float, default=0.05, help="share of requests answered 429")
    parser.add_argument("--retry-after", type=float, default=0.1, help="Retry-After of those 429s (s)")
    parser.add_argument("--generation-calls", type=int, default=800,
                        help="calls of the LLM-generation run (4 candidates each); 0 skips it")
    args = parser.parse_args()
    ideal = args.concurrency / args.latency
    every = max(1, round(1 / args.rate_limited))
    rows = []

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        with server_process(args.latency) as (url, count):
            clean = run(url, count, args.n, args.concurrency, cache, "use")
            cached = run(url, count, args.n, args.concurrency, cache, "use")
        rows.append(("clean answers", clean, args.n / clean["elapsed"], 0.90))
        with server_process(args.latency, every, args.retry_after) as (url, count):
            limited = run(url, count, args.n, args.concurrency, cache, "off")
        rows.append((f"1 in {every} answered 429 (Retry-After {args.retry_after:g} s)", limited,
                     args.n / limited["elapsed"], 0.80))
        if args.generation_calls:
            gen_cache = Path(tmp) / "generation-cache"
            with server_process(args.latency) as (url, count):
                gen = run_generation(url, count, args.generation_calls, args.concurrency, gen_cache, "use")
                gen_cached = run_generation(url, count, args.generation_calls, args.concurrency,
                                            gen_cache, "use")
            rows.append(("LLM generation (candidates as ok)", gen, gen["requests"] / gen["elapsed"], 0.90))
            with server_process(args.latency, every, args.retry_after) as (url, count):
                gen_limited = run_generation(url, count, args.generation_calls, args.concurrency,
                                             Path(tmp) / "g2", "use")
            rows.append((f"LLM generation, 1 in {every} answered 429", gen_limited,
                         gen_limited["requests"] / gen_limited["elapsed"], 0.80))

    table = Table(title=f"model client: {args.n} chats, C={args.concurrency}, "
                        f"latency {args.latency * 1000:.0f} ms, ideal {ideal:.0f} req/s")
    for column in ("run", "ok", "HTTP calls", "retries", "cache hits", "time (s)", "req/s",
                   "of ideal", "target", "result"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, r, throughput, target in rows:
        share = throughput / ideal
        table.add_row(name, str(r["ok"]), str(r["server_requests"]), str(r["retries"]), str(r["hits"]),
                      f"{r['elapsed']:.2f}", f"{throughput:.1f}", f"{share:.0%}", f">= {target:.0%}",
                      "[green]pass[/]" if share >= target else "[red]FAIL[/]")
    fraction = cached["elapsed"] / clean["elapsed"]
    table.add_row("cached re-run", str(cached["ok"]), str(cached["server_requests"]),
                  str(cached["retries"]), str(cached["hits"]), f"{cached['elapsed']:.3f}",
                  f"{args.n / cached['elapsed']:.0f}", f"{fraction:.1%} of first run's time",
                  "0 calls", "[green]pass[/]" if cached["server_requests"] == 0 else "[red]FAIL[/]")
    if args.generation_calls:
        fraction = gen_cached["elapsed"] / gen["elapsed"]
        table.add_row("LLM generation, cached re-run", str(gen_cached["ok"]), str(gen_cached["server_requests"]),
                      str(gen_cached["retries"]), str(gen_cached["hits"]), f"{gen_cached['elapsed']:.3f}",
                      f"{gen_cached['requests'] / gen_cached['elapsed']:.0f}",
                      f"{fraction:.1%} of first run's time", "0 calls",
                      "[green]pass[/]" if gen_cached["server_requests"] == 0 else "[red]FAIL[/]")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
