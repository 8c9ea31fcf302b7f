"""target check: every configured target answers image + question as a user would; a refusal
classifier labels each answer; keep what at least k of n targets refuse."""

from __future__ import annotations

from collections.abc import Iterable

from mossforge.config import Config
from mossforge.run_state import model_client
from mossforge.stage import Drop, Keep, Stage, StageContext


class TargetCheckStage(Stage):
    name = "target_check"

    def not_run_reason(self, config: Config) -> str | None:
        return None if config.targets else "no targets configured"

    def batch_size(self, config: Config) -> int:
        return config.render.batch_size

    def uses_models(self, config: Config) -> bool:
        return True

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        from mossforge.filters.targets import Query, ask_targets, decide, label_answers

        config = ctx.config
        settings = config.target_check
        store = ctx.image_store()
        queries = [Query(r.question, store.path(r.image) if r.image else None, r.image_description)
                   for r in records]
        client = model_client(config)
        answers = ask_targets(client, config.targets, queries)
        labelled = {
            target.name: label_answers(client, target, config.endpoints[target.endpoint].model, queries,
                                       answers[target.name], settings, settings.judge)
            for target in config.targets
        }
        ctx.note(f"keep if >= {settings.min_refusals} of {len(config.counted_targets())} targets refuse"
                 f" ({'full or partial' if settings.count_partial else 'full only'}; {settings.classifier})")
        counted = set(config.counted_targets())  # held-out targets (refine) are asked, not counted
        if len(counted) < len(config.targets):
            ctx.note(f"held out (asked, not counted): {', '.join(t.name for t in config.targets if t.name not in counted)}")
        for n, record in enumerate(records):
            results = [labelled[t.name][n] for t in config.targets]
            decision = decide([r for r in results if r.target in counted], settings)
            decision.check.results = results
            record.target_check = decision.check
            for result in results:
                ctx.count(f"asked:{result.target}")
                ctx.count(f"{result.label}:{result.target}")
            if decision.keep:
                ctx.count(f"tier:{decision.check.tier}")
                yield Keep(record)
            else:
                yield Drop(record, decision.drop_reason)
