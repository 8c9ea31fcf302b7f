"""From judges' votes to one label, and how much the panel agrees (Fleiss' kappa).

Plain Python over `JudgeVote`s. The rule is explicit:

1. Abstentions (label `abstain`: a judge that refused to judge, answered off format or failed) are
   kept on the item but are never votes. With fewer than `min_votes` valid votes there is no label.
2. `benign` when the rule accepts it:
   - `unanimous`: every valid vote is benign;
   - `quorum`: at least `quorum` valid votes are benign;
   - `weighted`: the benign votes carry at least `weighted_threshold` of the valid votes' weight.
3. Otherwise `harmful` when harmful votes carry at least `harmful_share` of the valid weight (all
   weights are 1 except under the weighted rule), else `controversial`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mossforge.schema import JudgeVote

LABELS: tuple[str, ...] = ("benign", "controversial", "harmful")


@dataclass(frozen=True)
class Rule:
    rule: str = "unanimous"  # "unanimous" | "quorum" | "weighted"
    quorum: int | None = None
    weighted_threshold: float = 0.5
    harmful_share: float = 0.5
    min_votes: int = 2

    @classmethod
    def from_settings(cls, settings) -> Rule:
        """From a `ConsensusSection` (or anything with the same attributes)."""
        return cls(settings.rule, settings.quorum, settings.weighted_threshold, settings.harmful_share,
                   settings.min_votes)

    def describe(self) -> str:
        if self.rule == "quorum":
            main = f"quorum: benign when at least {self.quorum} valid votes are benign"
        elif self.rule == "weighted":
            main = f"weighted: benign when benign votes carry >= {self.weighted_threshold:g} of the valid weight"
        else:
            main = "unanimous: benign when every valid vote is benign"
        return (f"{main}; otherwise harmful when >= {self.harmful_share:g} of the valid votes are harmful, "
                f"else controversial; at least {self.min_votes} valid votes (abstentions are not votes)")


@dataclass(frozen=True)
class Outcome:
    consensus: str | None  # None: too few valid votes
    agreement: float | None  # share of pairs of valid votes that agree
    valid_votes: int


def is_vote(vote: JudgeVote) -> bool:
    return vote.label in LABELS


def aggregate(votes: Sequence[JudgeVote], rule: Rule, weights: Mapping[str, float] | None = None) -> Outcome:
    """One label from `votes` under `rule`. `weights` maps a judge name to its weight (default 1);
    it is used by the weighted rule only."""
    valid = [v for v in votes if is_vote(v)]
    if len(valid) < rule.min_votes:
        return Outcome(None, None, len(valid))

    def weight(vote: JudgeVote) -> float:
        return (weights or {}).get(vote.judge, 1.0) if rule.rule == "weighted" else 1.0

    total = sum(weight(v) for v in valid)
    share = {label: sum(weight(v) for v in valid if v.label == label) / total for label in LABELS}
    benign_votes = sum(v.label == "benign" for v in valid)
    if rule.rule == "unanimous":
        benign = benign_votes == len(valid)
    elif rule.rule == "quorum":
        if rule.quorum is None:
            raise ValueError("the quorum rule needs quorum = k")
        benign = benign_votes >= rule.quorum
    elif rule.rule == "weighted":
        benign = share["benign"] >= rule.weighted_threshold - 1e-12
    else:
        raise ValueError(f"unknown rule {rule.rule!r}")
    if benign:
        label = "benign"
    elif share["harmful"] >= rule.harmful_share - 1e-12:
        label = "harmful"
    else:
        label = "controversial"
    return Outcome(label, pairwise_agreement(valid), len(valid))


def pairwise_agreement(votes: Sequence[JudgeVote]) -> float:
    """Share of the pairs of valid votes that agree: Fleiss' per-item agreement P_i (1.0 for one vote)."""
    n = sum(1 for v in votes if is_vote(v))
    if n < 2:
        return 1.0
    return round((sum(c * c for c in count_row(votes)) - n) / (n * (n - 1)), 4)


def count_row(votes: Sequence[JudgeVote]) -> list[int]:
    """Valid votes per label (benign, controversial, harmful): one row of a Fleiss table."""
    return [sum(v.label == label for v in votes) for label in LABELS]


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of an items × categories table of rating counts, the same number of raters on
    every item. None when it is undefined (no items, one rater, or every rating in one category)."""
    rows = [list(map(int, row)) for row in table]
    if not rows:
        return None
    raters = sum(rows[0])
    if raters < 2 or any(sum(row) != raters for row in rows):
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings on every item")
    items, categories = len(rows), len(rows[0])
    p_j = [sum(row[j] for row in rows) / (items * raters) for j in range(categories)]
    p_i = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in rows]
    p_bar = sum(p_i) / items
    p_e = sum(p * p for p in p_j)
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1 - p_e)


def panel_kappa(rows: Sequence[Sequence[int]]) -> dict:
    """Fleiss' kappa over the items every judge voted on (abstentions leave an item out: the
    statistic needs the same raters on every item). Rows are `count_row`s; the panel size is the
    largest row total."""
    rows = [list(r) for r in rows]
    judges = max((sum(r) for r in rows), default=0)
    complete = [r for r in rows if sum(r) == judges]
    kappa = fleiss_kappa(complete) if judges >= 2 and complete else None
    return {"fleiss_kappa": None if kappa is None else round(kappa, 4), "items": len(complete),
            "items_left_out": len(rows) - len(complete), "raters": judges}
