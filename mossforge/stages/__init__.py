"""The pipeline: the stages in the order records go through them.

A new stage is one file here (a `mossforge.stage.Stage` subclass) and one entry in `PIPELINE`.
`flows/build.py` runs the list: plan, generate and dedup in a top-up loop (until `plan.per_type`
of each type survive dedup), then the rest in order; stages that share a funnel row (render and
its near-duplicate image check) report as one row.
"""

from __future__ import annotations

from mossforge.stage import Stage
from mossforge.stages.consensus_label import ConsensusLabelStage
from mossforge.stages.dedup import DedupStage
from mossforge.stages.generate import GenerateStage
from mossforge.stages.plan import PlanStage
from mossforge.stages.quality_gate import QualityGateStage
from mossforge.stages.refine import RefineStage
from mossforge.stages.render import ImageDuplicatesStage, RenderStage
from mossforge.stages.target_check import TargetCheckStage

PIPELINE: list[Stage] = [
    PlanStage(),
    GenerateStage(),
    QualityGateStage(),
    DedupStage(),
    RenderStage(),
    ImageDuplicatesStage(),
    TargetCheckStage(),
    RefineStage(),
    ConsensusLabelStage(),
]

# The funnel's rows, in order (publish is the flow's last row, not a stage over records).
FUNNEL_ROWS: tuple[str, ...] = (*dict.fromkeys(s.funnel_row for s in PIPELINE), "publish")


def by_name(name: str, pipeline: list[Stage] | None = None) -> Stage:
    for stage in pipeline if pipeline is not None else PIPELINE:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage named {name!r} (stages: {', '.join(s.name for s in PIPELINE)})")
