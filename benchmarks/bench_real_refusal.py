"""Do real models refuse mossforge's queries? The local Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, llama.cpp,
text-only: it sees "[Image: <description>] <question>") answers every benign and contrast query of a
published version; the rules classifier labels the answers; refusal rate per split and stimulus type
with Wilson 95% intervals. Plus throughput: the target check (mossforge's client over the managed servers) against
the servers' own rate on the same prompts (each server sent its share one after another, straight
to its port, all servers at once).

    .venv/bin/python benchmarks/bench_real_refusal.py --version outputs/mossforge-offline/<id>
    .venv/bin/python benchmarks/bench_real_refusal.py --per-type 100    # builds an offline version first
    .venv/bin/python benchmarks/bench_real_refusal.py --model qwen2.5-coder-0.5b-instruct-q4_k_m \
        --version <folder> --answers answers.jsonl    # the 0.5B; every answer kept, unlabelled, for raters

Needs `bash scripts/bootstrap.sh local` (or test). Slow on purpose: each answer takes seconds on a CPU.
The model-call cache is a fresh folder, so every call is made.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mossforge import local_model  # noqa: E402
from mossforge.client import ModelClient  # noqa: E402
from mossforge.config import config_from_dict  # noqa: E402
from mossforge.filters.targets import Query, ask_targets, label_answers, target_messages  # noqa: E402
from mossforge.release.dataset_io import read_items  # noqa: E402
from mossforge.release.evaluate import wilson_interval  # noqa: E402


def build_version(per_type: int, out: Path) -> Path:
    done = subprocess.run([str(ROOT / ".venv/bin/mossforge"), "run", "--per-type", str(per_type), "--outputs", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"building the offline version failed:\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def sequential(port: int, alias: str, messages: list[list[dict]], params: dict) -> int:
    """Output tokens for these requests sent one after another straight to one server."""
    tokens = 0
    for message in messages:
        body = json.dumps({"model": alias, "messages": message, **params}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            tokens += json.loads(response.read())["usage"]["completion_tokens"]
    return tokens


def servers_alone(ports: list[int], alias: str, messages: list[list[dict]], params: dict) -> tuple[float, int]:
    """The servers' own rate: the prompts dealt round-robin to the servers, each server sent its
    share one after another straight to its port (no mossforge), all servers at once."""
    from concurrent.futures import ThreadPoolExecutor

    shares = [messages[i::len(ports)] for i in range(len(ports))]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(ports)) as pool:
        tokens = sum(pool.map(lambda pair: sequential(pair[0], alias, pair[1], params), zip(ports, shares)))
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", type=Path, help="a published version folder (default: build one)")
    parser.add_argument("--per-type", type=int, default=110, help="when building: candidates per type")
    parser.add_argument("--limit", type=int, default=100, help="items per stimulus type and split")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--throughput-sample", type=int, default=8, help="prompts per server for the throughput check")
    parser.add_argument("--throughput-only", action="store_true", help="skip the refusal measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_refusal.json")
    parser.add_argument("--model", choices=sorted(local_model.MODELS), default=local_model.DEFAULT_MODEL,
                        help="the pinned local model that answers")
    parser.add_argument("--answers", type=Path, help="also write every answer, unlabelled, as JSON lines (id, kind, "
                        "stimulus_type, question, image_description, answer, cut_off): the form the real labelled "
                        "sets in tests/data were given to their raters in")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-real-refusal-"))
    version = args.version or build_version(args.per_type, work / "outputs")
    items = []
    for split in ("benign", "contrast"):
        per_type: Counter = Counter()
        for item in read_items(version, split):
            if per_type[item.stimulus_type] < args.limit:
                per_type[item.stimulus_type] += 1
                items.append(item)
    port = local_model.free_port()
    alias = args.model.removesuffix("-q4_k_m")  # the model name the server answers to
    params = {"temperature": 0, "max_tokens": args.max_tokens}
    cfg = config_from_dict({
        "endpoints": {"local": {"base_url": f"http://127.0.0.1:{port}/v1", "model": alias,
                                "max_concurrency": args.servers, "timeout_s": 600, "max_retries": 1}},
        "local_models": {"local": {"model": args.model, "servers": args.servers,
                                   "threads": args.threads}},
        "targets": [{"name": alias, "endpoint": "local", "image_as_text": True, "params": params}],
        "run": {"out_dir": str(work / "outputs")}, "cache": {"dir": str(work / "cache")},
    })
    target = cfg.targets[0]
    queries = [Query(i.question, None, i.description) for i in items]
    print(f"{len(items)} queries from {version}; starting {args.servers} server(s)…", file=sys.stderr)
    servers = local_model.Servers(cfg, progress=lambda line: print(line, file=sys.stderr))
    try:
        status = servers.handles[0].status()
        backend_ports = []  # the proxy hides them: read them from the servers' command lines in their logs
        for log in status["logs"]:
            line = [x for x in Path(log).read_text().splitlines() if x.startswith("== ")][-1]
            backend_ports.append(int(line.split("--port ")[1].split()[0]))
        # throughput: the same prompts, sequentially on one server, then through mossforge on all
        sample = queries[: args.throughput_sample * args.servers]
        messages = [target_messages(target, q) for q in sample]
        seq_s, seq_tokens = servers_alone(backend_ports, alias, messages, params)
        with ModelClient(list(cfg.endpoints.values()), cache_dir=work / "cache-throughput", cache_mode="off") as client:
            started = time.perf_counter()
            replies = ask_targets(client, [target], sample)[target.name]
            moss_s = time.perf_counter() - started
        moss_tokens = sum(getattr(r, "output_tokens", 0) for r in replies)
        ideal = seq_tokens / seq_s  # tokens/s the servers alone gave on these prompts
        throughput = {"prompts": len(sample), "servers_alone_s": round(seq_s, 1),
                      "servers_alone_tokens_per_s": round(ideal, 2),
                      "target_check_s": round(moss_s, 1), "target_check_tokens_per_s": round(moss_tokens / moss_s, 2),
                      "share_of_ideal": round(moss_tokens / moss_s / ideal, 3)}
        print(json.dumps(throughput), file=sys.stderr)
        if args.throughput_only:
            print(json.dumps(throughput))
            return
        # the refusal measurement over every chosen item
        started = time.perf_counter()
        with ModelClient(list(cfg.endpoints.values()), cache_dir=cfg.cache_path(), cache_mode="use") as client:
            replies = ask_targets(client, [target], queries)[target.name]
            results = label_answers(client, target, alias, queries, replies, cfg.target_check)
        refusal_s = time.perf_counter() - started
        if servers.failures():
            sys.exit("server failure: " + "; ".join(servers.failures()))
    finally:
        servers.stop()
    rows = []
    groups: dict[tuple[str, str], list[bool]] = {}
    for item, result in zip(items, results):
        if result.label in ("error", "unparsed"):
            continue
        groups.setdefault((item.split, item.stimulus_type), []).append(result.label in ("full_refusal", "partial_refusal"))
    for (split, stimulus_type), refused in sorted(groups.items()):
        low, high = wilson_interval(sum(refused), len(refused))
        rows.append({"split": split, "stimulus_type": stimulus_type, "n": len(refused), "refused": sum(refused),
                     "rate": round(sum(refused) / len(refused), 3), "ci95": [round(low, 3), round(high, 3)]})
    report = {
        "model": local_model.MODELS[args.model].record(), "version": str(version),
        "servers": args.servers, "threads": args.threads, "max_tokens": args.max_tokens,
        "image": "text only ([Image: description] question)", "classifier": "rules",
        "errors": sum(r.label in ("error", "unparsed") for r in results),
        "labels": dict(Counter(r.label for r in results)), "refusal": rows, "throughput": throughput,
        "refusal_run_s": round(refusal_s, 1), "answers_per_min": round(len(items) / refusal_s * 60, 1),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, load {__import__('os').getloadavg()[0]:.1f} at the end",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    if args.answers:
        with args.answers.open("w", encoding="utf-8") as out:
            for n, (item, result) in enumerate(zip(items, results)):
                if result.label == "error":
                    continue
                out.write(json.dumps({"id": f"{alias}-{n:04d}", "kind": item.split, "stimulus_type": item.stimulus_type,
                                      "question": item.question, "image_description": item.description,
                                      "answer": result.answer, "cut_off": result.finish_reason == "length"},
                                     ensure_ascii=False) + "\n")
    print("split     stimulus type                      n  refused  rate   95% CI")
    for row in rows:
        print(f"{row['split']:<9} {row['stimulus_type']:<33} {row['n']:>3} {row['refused']:>7}  {row['rate']:.2f}  "
              f"[{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}]")
    print(json.dumps({k: v for k, v in report.items() if k not in ("refusal", "model")}, indent=1))


if __name__ == "__main__":
    main()
