"""refine: near-misses of the target check become variants that go back through dedup, render and
the target check (the flow runs the rounds: `flows/build.py`, `Run.refine`).

One call of this stage is one round: it reads what the target check dropped in the round before,
ranks the near-misses (partial refusals, refused by some targets but not enough), and yields their
children (seed-bank recombinations, LLM rewrites when a rewriter is configured) with their lineage.
The parents stay dropped. The budget left after earlier rounds comes in `ctx.params`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mossforge import code_version
from mossforge.config import Config
from mossforge.stage import Keep, Stage, StageContext

# The stages a round's children go through, in pipeline order.
ROUTE = ("quality_gate", "dedup", "render", "image_dedup", "target_check")


class RefineStage(Stage):
    name = "refine"
    scope = "all"
    refines = "target_check"  # the stage whose drops are the parents
    routes_through = ROUTE

    def not_run_reason(self, config: Config) -> str | None:
        if not config.refine.enabled:
            return "refine.enabled = false"
        return None if config.targets else "no targets configured"

    def uses_models(self, config: Config) -> bool:
        return bool(config.refine.rewriter) and "llm_rewrite" in self.operators(config)

    @staticmethod
    def operators(config: Config) -> list[str]:
        from mossforge.generators.refine import default_operators

        return list(config.refine.operators) or default_operators(llm=bool(config.refine.rewriter))

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep]:
        from mossforge.generators.refine import Budget, KeepRule, OperatorCounters, propose, select_near_misses

        config, params = ctx.config, ctx.params
        settings = config.refine
        round_ = int(params["round"])
        rule = KeepRule.of(config.target_check)
        misses = select_near_misses(records, rule, targets=set(config.counted_targets()),
                                    limit=settings.max_parents, include_none=settings.include_none)
        budget = Budget(max_variants=params.get("variants_left"), max_calls=params.get("calls_left"),
                        max_seconds=params.get("seconds_left"))
        counters = OperatorCounters()
        rewriter = None
        operators = self.operators(config)
        if "llm_rewrite" in operators:
            from mossforge.generators.refine_llm import Rewriter
            from mossforge.run_state import model_client

            rewriter = Rewriter(model_client(config), settings.rewriter, temperature=settings.temperature)
        children = propose(misses, round_, config.plan.seed, operators, budget, counters=counters,
                           rewriter=rewriter, per_parent=settings.per_parent, seen_ids=params.get("seen", ()),
                           min_refusals=rule.min_refusals, config_hash=config.config_hash(),
                           code_version=code_version())
        ctx.entered = len(records)
        ctx.count("near_misses", len(misses))
        ctx.count("proposed", len(children))
        ctx.count("calls", budget.calls)
        for name, n in counters.flat().items():
            ctx.count(name, n)
        ctx.note(f"round {round_}: {len(children)} variants of {len(misses)} near-misses")
        ctx.stats = {"round": round_, "near_misses": len(misses), "proposed": len(children),
                     "calls": budget.calls, "spent": budget.as_dict()["spent"], "operators": counters.rows()}
        yield from (Keep(child) for child in children)


def operator_rows(stats: list[dict]) -> list[dict]:
    """Per operator over every round: proposed, not applicable, duplicates, calls."""
    total: dict[str, Counter] = {}
    meta: dict[str, dict] = {}
    for round_stats in stats:
        for row in round_stats.get("operators", []):
            total.setdefault(row["operator"], Counter()).update(
                {k: v for k, v in row.items() if isinstance(v, int)})
            meta[row["operator"]] = {"kind": row.get("kind"), "stimulus_type": row.get("stimulus_type")}
    return [{"operator": name, **meta[name], **dict(counts)} for name, counts in sorted(total.items())]


def _refused(record, target: str, count_partial: bool) -> bool | None:
    from mossforge.filters.targets import counts_as_refusal

    for result in record.target_check.results:
        if result.target == target:
            return counts_as_refusal(result.label, count_partial)
    return None


def _rate(records: list, target: str, count_partial: bool) -> dict:
    answers = [x for x in (_refused(r, target, count_partial) for r in records) if x is not None]
    return {"asked": len(answers), "refused": sum(answers),
            "rate": round(sum(answers) / len(answers), 4) if answers else None}


def summary(config: Config, loop: dict, funnel: list[dict], checked: list, published: list, dropped: list) -> dict:
    """What the refinement did, for the manifest and the card.

    `loop`: the flow's record of the rounds (`Run.refined`); `checked`: every record the target
    check saw (main pass and rounds); `published`/`dropped`: the version's records and drops.
    - yield: items the target check kept per 100 planned candidates, without and with refinement,
      per stimulus type, with the target calls (and rewriter calls) each cost;
    - transfer: refusal by each held-out target of the refined candidates against the unrefined;
    - benign check: the share of refined and of unrefined survivors of the target check that the
      judge panel called harmful (None when no panel ran)."""

    partial = config.target_check.count_partial
    rows = {row["stage"]: row for row in funnel}
    planned = Counter()
    for key, n in rows.get("plan", {}).get("details", {}).items():
        if key.startswith("drawn:"):
            planned[key.split(":", 1)[1]] += n
    base = [r for r in checked if r.lineage is None]
    refined = [r for r in checked if r.lineage is not None]
    passed = [r for r in checked if r.target_check.status == "passed"]
    by_type = {}
    for t in config.plan.types:
        n = planned.get(t, 0)
        without = sum(1 for r in passed if r.lineage is None and r.stimulus_type == t)
        added = sum(1 for r in passed if r.lineage is not None and r.stimulus_type == t)
        by_type[t] = {"planned": n, "kept_without": without, "kept_with": without + added,
                      "yield_without": round(100 * without / n, 2) if n else None,
                      "yield_with": round(100 * (without + added) / n, 2) if n else None}
    total = sum(planned.values())
    kept_without = sum(1 for r in passed if r.lineage is None)
    kept_with = len(passed)
    counted = set(config.counted_targets())
    calls_without = len(base) * len(config.targets)
    calls_with = calls_without + len(refined) * len(config.targets) + loop.get("calls", 0)

    judged = published + [r for r in dropped if r.drop_stage == "consensus_label"]
    def harmful_share(group):
        labelled = [r for r in group if r.consensus_label.consensus is not None]
        if not labelled:
            return None
        return {"judged": len(labelled), "harmful": sum(r.consensus_label.consensus == "harmful" for r in labelled),
                "share": round(sum(r.consensus_label.consensus == "harmful" for r in labelled) / len(labelled), 4)}

    kept_by_operator = Counter(r.lineage.operator for r in passed if r.lineage is not None)
    operators = [{**row, "kept": kept_by_operator.get(row["operator"], 0)} for row in loop["operators"]]
    return {
        "rounds": loop["rounds"],
        "operators": operators,
        "drive_targets": sorted(counted),
        "held_out_targets": [t.name for t in config.targets if t.name not in counted],
        "yield": {"planned": total, "kept_without": kept_without, "kept_with": kept_with,
                  "per_100_without": round(100 * kept_without / total, 2) if total else None,
                  "per_100_with": round(100 * kept_with / total, 2) if total else None,
                  "ratio": round(kept_with / kept_without, 3) if kept_without else None,
                  "target_calls_without": calls_without, "calls_with": calls_with,
                  "calls_ratio": round(calls_with / calls_without, 3) if calls_without else None,
                  "rewriter_calls": loop.get("calls", 0), "by_type": by_type},
        "transfer": {t.name: {"unrefined": _rate(base, t.name, partial), "refined": _rate(refined, t.name, partial)}
                     for t in config.targets if t.name not in counted},
        "drive": {name: {"unrefined": _rate(base, name, partial), "refined": _rate(refined, name, partial)}
                  for name in sorted(counted)},
        "benign_check": None if not config.judges else {
            "unrefined": harmful_share([r for r in judged if r.lineage is None]),
            "refined": harmful_share([r for r in judged if r.lineage is not None])},
    }
