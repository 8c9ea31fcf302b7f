"""quality gate: drop, with a reason, a candidate that would be useless downstream (too short or
too long a question, no rationale, no contrast, a negated_harm item without its negation, ...).

The checks are `generators/quality.gate_reason`; as a stage they apply to every generator's output
and to refinement's variants. (The LLM generator also applies them while it parses, so what it
hands over passes; the seed bank's library passes by construction.)"""

from __future__ import annotations

from collections.abc import Iterable

from mossforge.stage import Drop, Keep, Stage, StageContext


class QualityGateStage(Stage):
    name = "quality_gate"

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        from mossforge.generators.quality import gate_reason

        for record in records:
            reason = gate_reason(record)
            yield Keep(record) if reason is None else Drop(record, reason)
