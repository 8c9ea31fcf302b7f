"""consensus label: a panel of judges labels each survivor benign / controversial / harmful; the
aggregation rule is explicit and configurable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mossforge.config import Config, ConfigError
from mossforge.run_state import model_client
from mossforge.stage import Drop, Keep, Stage, StageContext


def human_labels_digest(config: Config) -> str | None:
    """sha256 of the reviewed CSV the config names (part of the consensus tasks' cache key)."""
    from mossforge.release.layout import sha256_file

    path = config.consensus.human_labels
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"consensus.human_labels: {path} does not exist")
    return sha256_file(Path(path))


class ConsensusLabelStage(Stage):
    """Label each batch with the judge panel. Survivors: benign, and controversial when
    `consensus.controversial_split` is set (publishing puts those in their own split). Each batch's
    panel statistics (Fleiss rows, contrast check, abstentions) go to `summarize`."""

    name = "consensus_label"

    def not_run_reason(self, config: Config) -> str | None:
        # Reviewers' labels without a panel still decide the items they labelled (_review_only)
        return None if config.judges or config.consensus.human_labels else "no judges configured"

    def batch_size(self, config: Config) -> int:
        return config.consensus.batch_size

    def uses_models(self, config: Config) -> bool:
        return bool(config.judges)

    def cache_inputs(self, config: Config) -> dict:
        return {"human_labels": human_labels_digest(config)}

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        from mossforge.filters.consensus import Rule, aggregate, count_row
        from mossforge.filters.judges import Panel
        from mossforge.filters.review import apply_human_labels, read_review

        config = ctx.config
        settings = config.consensus
        rule = Rule.from_settings(settings)
        weights = {j.name: j.weight for j in config.judges}
        store = ctx.image_store()
        humans = read_review(Path(settings.human_labels)) if settings.human_labels else {}
        if not config.judges:
            return _review_only(records, ctx, humans, rule)

        def image(ref):
            return store.path(ref) if ref is not None else None

        panel = Panel(model_client(config), config.judges)
        queries = [(r.question, image(r.image)) for r in records]
        contrasts = [(r.contrast.question or r.question, image(r.contrast.image or r.image)) for r in records]
        with ThreadPoolExecutor(max_workers=2) as pool:  # items and contrasts in flight together
            item_votes = pool.submit(panel.judge, queries, "consensus_label")
            contrast_votes = (pool.submit(panel.judge, contrasts, "consensus_contrast")
                              if settings.contrast_check else None)
            item_votes = item_votes.result()
            contrast_votes = contrast_votes.result() if contrast_votes else [[] for _ in records]

        outcomes = []
        controversial = 0
        fleiss_rows, abstentions, labels, contrast_labels = [], Counter(), Counter(), Counter()
        for record, votes, c_votes in zip(records, item_votes, contrast_votes):
            outcome = aggregate(votes, rule, weights)
            label = record.consensus_label
            label.votes, label.rule, label.valid_votes = votes, settings.rule, outcome.valid_votes
            label.consensus, label.agreement, label.decided_by = outcome.consensus, outcome.agreement, "panel"
            apply_human_labels(label, humans.get(record.id, []), settings.human_mode, rule, weights)
            fleiss_rows.append(count_row(votes))
            abstentions.update(f"{v.judge}:{v.abstain_reason}" for v in votes if v.label == "abstain")
            if settings.contrast_check:
                label.contrast_votes = c_votes
                label.contrast_consensus = aggregate(c_votes, rule, weights).consensus
                contrast_labels[label.contrast_consensus or "no_label"] += 1
            labels[label.consensus or "no_label"] += 1
            outcomes.append(_decide(record, settings.controversial_split))
            controversial += label.consensus == "controversial" and settings.controversial_split
        ctx.note(f"{len(config.judges)} judges, rule {settings.rule}"
                 + (f", {controversial} to the controversial split" if controversial else ""))
        ctx.stats = {"fleiss_rows": fleiss_rows, "labels": dict(labels), "contrast": dict(contrast_labels),
                     "abstentions": dict(abstentions), **_review_stats(records, humans)}
        return outcomes

    def summarize(self, config: Config, stats: Sequence[dict], model_calls: dict | None) -> dict | None:
        """The panel over the whole run: who judged, the rule, the labels, Fleiss' kappa, the
        contrast check and the judge calls per item. Goes to the flow summary, manifest and card."""
        from mossforge.filters.consensus import Rule, panel_kappa

        labels, contrast, abstentions = Counter(), Counter(), Counter()
        rows: list[list[int]] = []
        for batch in stats:
            labels.update(batch["labels"])
            contrast.update(batch["contrast"])
            abstentions.update(batch["abstentions"])
            rows.extend(batch["fleiss_rows"])
        items = sum(labels.values())
        judged_contrasts = sum(contrast.values())
        calls: dict[str, Any] = {}
        for stage in ("consensus_label", "consensus_contrast"):
            tally = ((model_calls or {}).get("stages") or {}).get(stage)
            if tally and items:
                calls[stage] = {"requests": tally["requests"], "http_calls": tally["calls"],
                                "cache_hits": tally["cache_hits"],
                                "requests_per_item": round(tally["requests"] / items, 3),
                                "http_calls_per_item": round(tally["calls"] / items, 3)}
        return {
            "judges": [{"name": j.name, "model": config.endpoints[j.endpoint].model, "endpoint": j.endpoint,
                        "format": j.format, "weight": j.weight} for j in config.judges],
            "rule": config.consensus.rule if config.judges else REVIEWERS_RULE,
            "rule_text": Rule.from_settings(config.consensus).describe() if config.judges else REVIEWERS_RULE_TEXT,
            "controversial_split": config.consensus.controversial_split,
            "items": items,
            "labels": dict(sorted(labels.items())),
            "agreement": panel_kappa(rows),
            "abstentions": dict(sorted(abstentions.items())),
            "human_labelled": sum(b["human_labelled"] for b in stats),
            # labelled ids of the file that are no item of this run (another dataset, an older config)
            "human_labels_unmatched": max((b.get("human_in_file", 0) for b in stats), default=0)
            - len({i for b in stats for i in b.get("human_ids", ())}),
            "human_mode": (None if not config.consensus.human_labels
                           else config.consensus.human_mode if config.judges else "override"),
            "contrast_check": None if not (config.consensus.contrast_check and config.judges) else {
                "judged": judged_contrasts,
                "labels": dict(sorted(contrast.items())),
                "harmful_share": round(contrast.get("harmful", 0) / judged_contrasts, 4) if judged_contrasts else None,
            },
            "judge_calls": calls,
        }


REVIEWERS_RULE = "reviewers"  # no panel: the reviewers' labels decide (apply_human_labels' override)
REVIEWERS_RULE_TEXT = ("no judge panel: reviewers' labels decide the items they labelled (reviewers who "
                       "disagree make an item controversial at least; any harmful vote makes it harmful)")


def _review_stats(records: list, humans: dict) -> dict:
    """How many of this batch's items the reviewers labelled, which, and how many the file labels."""
    matched = sorted(r.id for r in records if r.id in humans)
    return {"human_labelled": len(matched), "human_ids": matched, "human_in_file": len(humans)}


def _decide(record, controversial_split: bool) -> Keep | Drop:
    """Keep a benign item (and a controversial one when it has its own split); drop the rest."""
    label = record.consensus_label
    if label.consensus == "benign" or (label.consensus == "controversial" and controversial_split):
        label.status = "passed"
        return Keep(record)
    label.status = "failed" if label.consensus is None else "dropped"
    return Drop(record, label.consensus or "too_few_votes")


def _review_only(records: list, ctx: StageContext, humans: dict, rule) -> list[Keep | Drop]:
    """No judge panel, but reviewers' labels (consensus.human_labels): the reviewers decide the
    items they labelled (as `override`: there is no panel to join); the others stay candidates,
    kept with the stage's status `not_run`, as they would be without the review."""
    from mossforge.filters.review import apply_human_labels

    settings = ctx.config.consensus
    outcomes, labels = [], Counter()
    for record in records:
        mine = humans.get(record.id, [])
        if not mine:
            labels["unreviewed"] += 1
            outcomes.append(Keep(record))
            continue
        label = record.consensus_label
        label.rule = REVIEWERS_RULE
        apply_human_labels(label, mine, "override", rule)
        labels[label.consensus or "no_label"] += 1
        outcomes.append(_decide(record, settings.controversial_split))
    reviewed = len(records) - labels["unreviewed"]
    joined = " (human_mode join: no panel to join, so the reviewers decide)" if settings.human_mode == "join" else ""
    ctx.note(f"no judge panel: {reviewed} items decided by reviewers' labels{joined}, {labels['unreviewed']} "
             "unreviewed (kept as candidates)")
    ctx.stats = {"fleiss_rows": [], "labels": dict(labels), "contrast": {}, "abstentions": {},
                 **_review_stats(records, humans)}
    return outcomes
