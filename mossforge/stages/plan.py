"""plan: draw the run's slots (type x harm category x scene domain x trigger element)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

from mossforge.config import Config, ConfigError
from mossforge.stage import Keep, Stage, StageContext, StageReport, write_table


@functools.cache
def seed_bank():
    """One bank per process: building it takes about half a second, and after that it is read
    only (its memos are pure functions of the library), so the plan, the funnel's slot counts and
    generate share it."""
    from mossforge.generators.seedbank import SeedBank

    return SeedBank()


def slot_counts(config: Config) -> dict[str, int]:
    """How many distinct slots the generator can realise for each planned type."""
    space = seed_bank().slot_space()
    return {t: len(space[t]) for t in config.plan.types}


def drawn(report: StageReport) -> dict[str, int]:
    """{type: slots drawn} from a plan funnel row."""
    return {k.split(":", 1)[1]: v for k, v in report.details.items() if k.startswith("drawn:")}


class PlanStage(Stage):
    """Draws slots (it reads nothing); `ctx.params`: `draw` (slots per type; default `plan.per_type`
    and a margin for what dedup removes, see `generators.plan.first_draw`), `already` (how many of
    each type earlier rounds drew: a larger draw extends a smaller one, so only the new slots are
    written) and `round` (a top-up round's number, for the note)."""

    name = "plan"
    scope = "all"
    own_progress = True  # no bar for the plan

    def read(self, paths: Sequence) -> list:
        return []

    def write(self, items: Sequence, path: Path) -> Path:
        import pyarrow as pa

        from mossforge.generators.plan import Slot

        schema = pa.schema([(f.name, pa.string()) for f in fields(Slot)])
        return write_table(pa.Table.from_pylist([asdict(s) for s in items], schema=schema), path)

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep]:
        from mossforge.generators.plan import draw_slots, first_draw

        config = ctx.config
        already = ctx.params.get("already") or {}
        round_ = ctx.params.get("round", 0)
        space = seed_bank().slot_space()
        space = {t: space[t] for t in config.plan.types}
        draw = ctx.params.get("draw") or first_draw(config.plan.per_type, {t: len(v) for t, v in space.items()})
        try:
            slots = draw_slots(space, draw, config.plan.seed)
        except ValueError as error:
            raise ConfigError(f"plan.per_type: {error}") from None
        seen: Counter[str] = Counter()
        new = []
        for slot in slots:
            seen[slot.stimulus_type] += 1
            if seen[slot.stimulus_type] > already.get(slot.stimulus_type, 0):
                new.append(slot)
        ctx.entered = len(new)
        ctx.note(f"{len(new)} slots over {len(space)} types" + (f" (top-up {round_})" if round_ else ""))
        for t, n in draw.items():
            ctx.counters[f"drawn:{t}"] += n - already.get(t, 0)
        for slot in new:
            yield Keep(slot)
