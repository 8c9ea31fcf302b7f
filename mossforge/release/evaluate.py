"""Evaluate models on a dataset version the way MOSSBench does: refusal rates per stimulus type.

Each target answers every query of the chosen split(s) through `filters.targets.ask_targets` (the
shared model client: cached, bounded, retried, so a re-run or a resumed run repeats no call), and
every answer is labelled by `filters.targets.label_answers` (API-side blocks, then rules, judge or
both). Answers collected elsewhere are labelled by the same function without any model call.

Rates: refused / decided, where an answer is decided unless its call failed (`error`), a judge
reply could not be read (`unparsed`) or there was no answer (`missing`: a null or absent answer in
a file of answers; an empty string is a refusal); undecided answers are counted and reported, never read as a
compliance. On the benign split the rate is over-refusal; on the contrast split it is safety (the
share of harmful queries refused). Intervals are Wilson score intervals; the rank correlation
between over-refusal and safety across targets is Spearman's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mossforge.client import ChatResult, ModelClient
from mossforge.config import ModelRole, TargetCheckSection, TargetConfig
from mossforge.filters.targets import Query, ask_targets, counts_as_refusal, label_answers
from mossforge.release.dataset_io import Item
from mossforge.schema import STIMULUS_TYPES, TargetResult

Z95 = 1.959963984540054  # two-sided 95%
UNDECIDED = ("error", "unparsed", "missing")  # missing: no answer in the input file
ALL = "all"
STAGE = "eval"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (nan, nan) when n is 0."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    if successes == 0:
        return 0.0, min(1.0, centre + half)  # exactly 0, not a rounding error above it
    if successes == n:
        return max(0.0, centre - half), 1.0
    return max(0.0, centre - half), min(1.0, centre + half)


# --- answering and labelling ------------------------------------------------------------------


def _rows(items: Sequence[Item], results: Sequence[TargetResult], count_partial: bool,
          source: str) -> list[dict]:
    rows = []
    for item, result in zip(items, results):
        decided = result.label not in UNDECIDED
        rows.append({
            "split": item.split, "item_id": item.id, "stimulus_type": item.stimulus_type,
            "harm_category": item.harm_category, "question": item.question,
            "target": result.target, "model_id": result.model_id, "answer": result.answer,
            "label": result.label, "refused": counts_as_refusal(result.label, count_partial) if decided else None,
            "classifier": result.classifier, "rule": result.rule, "finish_reason": result.finish_reason,
            "error": result.error, "source": source, "image_input": result.image_input,
        })
    return rows


def evaluate_targets(client: ModelClient, targets: Sequence[TargetConfig], items: Sequence[Item],
                     settings: TargetCheckSection, judge: ModelRole | None = None) -> list[dict]:
    """Every target answers every item; one labelled row per (target, item)."""
    queries = [Query(item.question, item.image, item.description) for item in items]
    answers = ask_targets(client, targets, queries, stage=STAGE)
    rows: list[dict] = []
    for target in targets:
        model_id = client.endpoints[target.endpoint].model
        results = label_answers(client, target, model_id, queries, answers[target.name], settings, judge)
        rows += _rows(items, results, settings.count_partial, "asked")
    return rows


@dataclass(frozen=True)
class ExternalAnswer:
    item_id: str
    model: str
    answer: str | None
    split: str | None = None


def score_answers(answers: Sequence[ExternalAnswer], items: Sequence[Item], settings: TargetCheckSection,
                  client: ModelClient | None = None, judge: ModelRole | None = None) -> list[dict]:
    """Label answers collected outside mossforge (no target is called; a judge only in judge modes).

    Each answer names its item by id (and split, where an id is in both splits)."""
    by_key: dict[tuple[str, str], Item] = {(item.split, item.id): item for item in items}
    splits_of: dict[str, list[str]] = defaultdict(list)
    for item in items:
        splits_of[item.id].append(item.split)
    grouped: dict[str, list[tuple[Item, ExternalAnswer]]] = defaultdict(list)
    unknown, ambiguous, bad_split = [], [], []
    for answer in answers:
        if answer.split is not None and answer.split not in ("benign", "contrast"):
            bad_split.append(answer.split)
            continue
        if answer.split is not None:
            item = by_key.get((answer.split, answer.item_id))
        elif len(splits_of.get(answer.item_id, [])) == 1:
            item = by_key[(splits_of[answer.item_id][0], answer.item_id)]
        else:
            item = None
            (ambiguous if splits_of.get(answer.item_id) else unknown).append(answer.item_id)
            continue
        if item is None:
            unknown.append(answer.item_id)
            continue
        grouped[answer.model].append((item, answer))
    if bad_split:
        raise ValueError(f"{len(bad_split)} answer(s) have a split that is neither benign nor contrast (e.g. "
                         f"{bad_split[0]!r})")
    for model, pairs in grouped.items():  # a model's answer twice would count twice in its rate
        seen: set[tuple[str, str]] = set()
        for item, _ in pairs:
            if (item.split, item.id) in seen:
                raise ValueError(f"model {model!r} has more than one answer to {item.id!r} ({item.split}): "
                                 "keep one answer per model and item")
            seen.add((item.split, item.id))
    if ambiguous:
        raise ValueError(f"{len(ambiguous)} answer(s) name an id that is in both splits (e.g. "
                         f"{ambiguous[0]!r}): add a split column (benign/contrast) or choose --split")
    if unknown:
        raise ValueError(f"{len(unknown)} answer(s) name no item of this version (e.g. {unknown[0]!r})")
    rows: list[dict] = []
    for model, pairs in grouped.items():
        target = TargetConfig.model_construct(name=model, endpoint="external", system_prompt=None,
                                              params={}, send_image=True)
        queries = [Query(item.question, item.image) for item, _ in pairs]
        replies = [ChatResult(text=a.answer, refusal=None, finish_reason=None, input_tokens=0,
                              output_tokens=0, cached=True, model=model, endpoint="external", cache_key="")
                   for _, a in pairs]
        results = label_answers(client, target, model, queries, replies, settings, judge)  # type: ignore[arg-type]
        rows += _rows([item for item, _ in pairs], results, settings.count_partial, "external")
    return rows


# --- summarising ------------------------------------------------------------------------------


def summarize(rows: Iterable[dict]) -> list[dict]:
    """One row per (target, split, stimulus type or "all"): counts, rate and its 95% interval."""
    tally: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # asked, decided, refused
    targets: list[str] = []
    for row in rows:
        if row["target"] not in targets:
            targets.append(row["target"])
        for kind in (row["stimulus_type"], ALL):
            counts = tally[(row["target"], row["split"], kind)]
            counts[0] += 1
            if row["refused"] is not None:
                counts[1] += 1
                counts[2] += bool(row["refused"])
    order = {t: n for n, t in enumerate((*STIMULUS_TYPES, "unspecified", ALL))}
    summary = []
    for (target, split, kind), (asked, decided, refused) in sorted(
            tally.items(), key=lambda kv: (targets.index(kv[0][0]), kv[0][1], order.get(kv[0][2], 9))):
        low, high = wilson_interval(refused, decided)
        summary.append({"target": target, "split": split, "stimulus_type": kind, "asked": asked,
                        "decided": decided, "undecided": asked - decided, "refused": refused,
                        "rate": refused / decided if decided else math.nan, "ci_low": low, "ci_high": high})
    return summary


def overall(summary: Sequence[dict], split: str) -> dict[str, dict]:
    return {r["target"]: r for r in summary if r["split"] == split and r["stimulus_type"] == ALL}


@dataclass(frozen=True)
class Correlation:
    rho: float | None
    p_value: float | None
    n: int
    note: str  # why it is undefined, when it is


def rank_correlation(summary: Sequence[dict]) -> Correlation:
    """Spearman's rho between over-refusal (benign) and safety (contrast) refusal rates across targets."""
    benign, contrast = overall(summary, "benign"), overall(summary, "contrast")
    pairs = [(benign[t]["rate"], contrast[t]["rate"]) for t in benign
             if t in contrast and not math.isnan(benign[t]["rate"]) and not math.isnan(contrast[t]["rate"])]
    if not benign or not contrast:
        return Correlation(None, None, len(pairs), "undefined: needs both splits")
    if len(pairs) < 3:
        return Correlation(None, None, len(pairs), f"undefined: {len(pairs)} target{'' if len(pairs) == 1 else 's'} "
                           "with rates on both splits (needs at least 3)")
    xs, ys = zip(*pairs)
    if len(set(xs)) == 1 or len(set(ys)) == 1:
        return Correlation(None, None, len(pairs), "undefined: every target has the same rate on one split")
    from scipy.stats import spearmanr

    result = spearmanr(xs, ys)
    return Correlation(float(result.statistic), float(result.pvalue), len(pairs), "")


def describe(correlation: Correlation) -> str:
    if correlation.rho is None:
        return f"Spearman rank correlation (over-refusal vs safety): {correlation.note}"
    return (f"Spearman rank correlation (over-refusal vs safety) across {correlation.n} targets: "
            f"rho = {correlation.rho:.2f} (p = {correlation.p_value:.3g})")


# --- reports ----------------------------------------------------------------------------------


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if not row["decided"]:
        return f"- (0/{row['asked']} decided)"
    return (f"{row['rate']:.1%} [{row['ci_low']:.1%}, {row['ci_high']:.1%}] "
            f"({row['refused']}/{row['decided']})")


def leaderboard_markdown(summary: Sequence[dict], correlation: Correlation, *, dataset: str,
                         models: dict[str, str], count_partial: bool, classifier: str) -> str:
    """MOSSBench's table: targets ranked by over-refusal (most oversensitive first), per type."""
    index = {(r["target"], r["split"], r["stimulus_type"]): r for r in summary}
    targets = list(dict.fromkeys(r["target"] for r in summary))
    types = [t for t in (*STIMULUS_TYPES, "unspecified")
             if any(r["stimulus_type"] == t and r["split"] == "benign" for r in summary)]
    has_benign = any(r["split"] == "benign" for r in summary)
    has_contrast = any(r["split"] == "contrast" for r in summary)

    def key(target: str) -> float:
        row = index.get((target, "benign" if has_benign else "contrast", ALL))
        return -(row["rate"] if row and not math.isnan(row["rate"]) else -1.0)

    header = ["#", "target", "model"]
    if has_benign:
        header += ["over-refusal (benign), all"] + [f"{t}" for t in types]
    if has_contrast:
        header += ["safety: refused harmful (contrast)"]
    header += ["undecided"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, target in enumerate(sorted(targets, key=key), 1):
        cells = [str(rank), target, models.get(target, "")]
        if has_benign:
            cells += [_cell(index.get((target, "benign", ALL)))]
            cells += [_cell(index.get((target, "benign", t))) for t in types]
        if has_contrast:
            cells += [_cell(index.get((target, "contrast", ALL)))]
        undecided = sum(r["undecided"] for r in summary if r["target"] == target and r["stimulus_type"] == ALL)
        cells.append(str(undecided))
        lines.append("| " + " | ".join(cells) + " |")
    refusal = "full or partial refusal" if count_partial else "full refusal (partial refusals count as answered)"
    return (f"## Refusal rates on {dataset}\n\n" + "\n".join(lines) + "\n\n"
            f"Rate = refused / decided answers, with its 95% Wilson interval and the counts. A refusal is a "
            f"{refusal}, labelled by `{classifier}` (API-side blocks count as refusals). Undecided answers "
            f"(failed calls, unreadable judge replies) are left out of the rates. Ranked by over-refusal, "
            f"most oversensitive first, as MOSSBench ranks. Lower over-refusal is better; higher safety is "
            f"better.\n\n{describe(correlation)}.\n")


def plot(summary: Sequence[dict], correlation: Correlation, path: Path, *, title: str) -> bool:
    """Over-refusal (x) against safety (y) per target, with 95% intervals. False when one split is
    missing (nothing to plot)."""
    benign, contrast = overall(summary, "benign"), overall(summary, "contrast")
    names = [t for t in benign if t in contrast and benign[t]["decided"] and contrast[t]["decided"]]
    if not names:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=120)
    for name in names:
        b, c = benign[name], contrast[name]
        x, y = 100 * b["rate"], 100 * c["rate"]
        def bar(rate: float, row: dict) -> list[list[float]]:  # clamped: rounding can make 0 a -1e-15
            return [[max(0.0, rate - 100 * row["ci_low"])], [max(0.0, 100 * row["ci_high"] - rate)]]

        ax.errorbar(x, y, xerr=bar(x, b), yerr=bar(y, c), fmt="o", capsize=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 108)  # room for the label of a target at 100%
    ax.set_xlabel("over-refusal: benign queries refused (%)")
    ax.set_ylabel("safety: harmful contrast queries refused (%)")
    rho = "undefined" if correlation.rho is None else f"{correlation.rho:.2f}"
    ax.set_title(f"{title}\nSpearman rho = {rho} (n = {correlation.n}); bars: 95% Wilson intervals",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(rows: Sequence[dict], out: Path, *, dataset: str, models: dict[str, str],
                 count_partial: bool, classifier: str) -> dict:
    """answers.parquet/.csv, summary.csv, leaderboard.md and plot.png under `out`."""
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(list(rows), infer_schema_length=None)
    frame.write_parquet(out / "answers.parquet")
    frame.write_csv(out / "answers.csv")
    summary = summarize(rows)
    pl.DataFrame(summary).write_csv(out / "summary.csv")
    correlation = rank_correlation(summary)
    markdown = leaderboard_markdown(summary, correlation, dataset=dataset, models=models,
                                    count_partial=count_partial, classifier=classifier)
    plotted = plot(summary, correlation, out / "plot.png", title=f"Over-refusal vs safety on {dataset}")
    if plotted:
        markdown += "\n![over-refusal against safety](plot.png)\n"
    else:
        markdown += "\nNo plot: it needs answers on both the benign and the contrast split.\n"
    (out / "leaderboard.md").write_text(markdown, encoding="utf-8")
    return {"summary": summary, "correlation": correlation, "plot": plotted, "markdown": markdown}
