"""Dedup at scale: 100,000 questions deduplicated vs just embedding them.

    .venv/bin/python benchmarks/bench_dedup.py [--n 100000] [--check 20000]

Both runs embed the same texts with the same model and batch size (all texts are distinct
strings, so dedup embeds all of them too). The target: dedup time < 1.3 x embed time. `--check`
also compares the approximate (HNSW) path with the exact one on a subsample.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from mossforge.filters.dedup import find_duplicates
from mossforge.filters.embeddings import MiniLMEmbedder
from mossforge.generators.seedbank import SeedBank

MODIFIERS = ["", "this weekend", "for my family", "on a budget", "for beginners", "step by step",
             "in simple words", "for a school project", "quickly", "for my grandparents",
             "before Friday", "with my kids", "for a small group", "in under an hour",
             "for a rainy day", "without spending much", "for my neighbours", "for my team"]
OPENERS = ["", "Please:", "Quick question:", "Help me out:", "I was wondering:", "Hi!", "Honestly,"]


def questions(n: int, seed: int = 0) -> list[str]:
    """n distinct questions: seed-bank questions and contrasts with openers and modifiers."""
    bank = SeedBank()
    base = []
    for slots in bank.slot_space().values():
        for slot in slots:
            record = bank.generate(slot, seed=seed)
            base.append(record.question)
            if record.contrast.question:
                base.append(record.contrast.question)
    base = sorted(set(base))
    rng = random.Random(seed)
    out, seen = [], set()
    combos = list(itertools.product(OPENERS, MODIFIERS))
    rng.shuffle(combos)
    for opener, modifier in combos:
        for q in rng.sample(base, len(base)):
            text = " ".join(p for p in (opener, q.rstrip("?.") + (f" {modifier}" if modifier else ""),) if p)
            text += "?" if q.endswith("?") else "."
            if text not in seen:
                seen.add(text)
                out.append(text)
                if len(out) == n:
                    return out
    raise SystemExit(f"could only make {len(out)} distinct questions")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--check", type=int, default=20_000, help="subsample for exact-vs-HNSW agreement (0: skip)")
    args = parser.parse_args()
    console = Console()
    texts = questions(args.n)
    embedder = MiniLMEmbedder()
    embedder.encode(texts[:512])  # load the model and warm up before either timing

    t0 = time.perf_counter()
    embeddings = embedder.encode(texts)
    embed_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    outcome = find_duplicates(texts, 0.9, embedder=embedder)
    dedup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    find_duplicates(texts, 0.9, embeddings=embeddings)
    index_s = time.perf_counter() - t0

    table = Table(title=f"dedup of {args.n:,} questions (threshold 0.9) on {platform.processor() or platform.machine()}, "
                        f"{__import__('os').cpu_count()} cores")
    for column in ("measure", "seconds", "ratio to embedding"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row("embed only", f"{embed_s:.1f}", "1.00")
    table.add_row("dedup (embed + exact + index + clustering)", f"{dedup_s:.1f}", f"{dedup_s / embed_s:.2f}")
    table.add_row("  of which search + clustering (precomputed embeddings)", f"{index_s:.1f}", f"{index_s / embed_s:.2f}")
    console.print(table)
    console.print(f"kept {outcome.stats['kept']:,}, near duplicates {outcome.stats['near_duplicate']:,}, "
                  f"exact {outcome.stats['exact']:,}; embedding rate {args.n / embed_s:,.0f} texts/s")
    verdict = "PASS" if dedup_s < 1.3 * embed_s else "FAIL"
    console.print(f"target dedup < 1.3 x embed: {verdict} ({dedup_s / embed_s:.2f})")

    if args.check:
        sub = np.random.default_rng(1).choice(args.n, args.check, replace=False)
        sub.sort()
        sub_texts = [texts[i] for i in sub]
        t0 = time.perf_counter()
        exact = find_duplicates(sub_texts, 0.9, embeddings=embeddings[sub], exact_limit=10**9)
        exact_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        approx = find_duplicates(sub_texts, 0.9, embeddings=embeddings[sub], exact_limit=0)
        approx_s = time.perf_counter() - t0
        agree = float((exact.is_duplicate == approx.is_duplicate).mean())
        missed = int((exact.is_duplicate & ~approx.is_duplicate).sum())
        console.print(f"HNSW vs exact on {args.check:,}: decisions agree on {agree:.2%} "
                      f"({missed} duplicates HNSW missed of {int(exact.is_duplicate.sum())}); "
                      f"exact {exact_s:.1f} s, HNSW {approx_s:.1f} s")


if __name__ == "__main__":
    main()
