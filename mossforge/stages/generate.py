"""generate: text candidates for each slot (the seed bank offline, or an LLM)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mossforge import code_version
from mossforge.config import Config
from mossforge.run_state import model_client
from mossforge.stage import Keep, Stage, StageContext

# GenerationStats counters that go to the funnel row as they are
LLM_COUNTERS = ("calls", "cache_hits", "failed_calls", "requested", "accepted", "extra", "repair_calls",
                "repaired")


class GenerateStage(Stage):
    name = "generate"
    own_progress = True  # advanced by the slots done

    def batch_size(self, config: Config) -> int:
        return config.generate.batch_size

    def uses_models(self, config: Config) -> bool:
        return config.generate.generator == "llm"

    def read(self, paths: Sequence) -> list:
        import pyarrow.parquet as pq

        from mossforge.generators.plan import Slot

        return [Slot(**row) for path in paths for row in pq.read_table(path).to_pylist()]

    def process(self, slots: list, ctx: StageContext) -> Iterable[Keep]:
        config = ctx.config
        config_hash, version = config.config_hash(), code_version()
        if config.generate.generator == "llm":
            from mossforge.generators.llm import LLMGenerator

            settings = config.generate
            generator = LLMGenerator(
                model_client(config), settings.endpoint, candidates_per_call=settings.candidates_per_call,
                temperature=settings.temperature, few_shot=settings.few_shot,
                avoid_recent=settings.avoid_recent, structured=settings.structured, repair=settings.repair,
                calls_in_flight=settings.calls_in_flight)
            records, stats = generator.generate(slots, seed=config.plan.seed, config_hash=config_hash,
                                                code_version=version)
            for reason, n in stats.dropped.items():  # answers that never became candidates
                ctx.dropped(reason, n)
            for name in LLM_COUNTERS:
                ctx.counters[name] += getattr(stats, name)  # zeros too: "no repair" is news
            ctx.note(f"llm via endpoint {settings.endpoint!r} ({config.endpoints[settings.endpoint].model})")
        else:
            from mossforge.stages.plan import seed_bank

            bank = seed_bank()
            records = [bank.generate(slot, seed=config.plan.seed, config_hash=config_hash, code_version=version)
                       for slot in slots]
            ctx.note("seed bank")
        ctx.advance(len(slots))
        for record in records:
            yield Keep(record)
