"""Issue 15, item 5: `--per-type N` publishes N per type when the generator can supply them."""

from collections import Counter

import pytest

from mossforge.config import load_config
from mossforge.generators.plan import draw_slots, first_draw, next_draw, shortfall
from mossforge.generators.seedbank import SeedBank
from mossforge.stage import read_records, run_stage, write_records
from mossforge.stages.dedup import DedupStage, survived
from mossforge.stages.plan import PlanStage


@pytest.fixture(scope="module")
def space():
    return SeedBank().slot_space()


def test_a_larger_draw_extends_a_smaller_one(space):
    small = draw_slots(space, 40, seed=3)
    large = draw_slots(space, {t: 90 for t in space}, seed=3)
    for t in space:
        assert [s for s in small if s.stimulus_type == t] == [s for s in large if s.stimulus_type == t][:40]


def test_the_draw_grows_until_enough_survive_or_the_generator_is_exhausted():
    available = {"a": 1000, "b": 120}
    draw = first_draw(100, available)
    assert draw == {"a": 115, "b": 115}
    # 20% lost in dedup: grow a by what is missing at the rate seen, b only to what exists
    grown = next_draw(100, draw, {"a": 92, "b": 97}, available)
    assert grown["a"] >= 115 + (100 - 92) / 0.8 and grown["b"] == 120
    assert next_draw(100, draw, {"a": 100, "b": 100}, available) is None  # enough of each
    assert next_draw(100, {"a": 115, "b": 120}, {"a": 100, "b": 97}, available) is None  # b exhausted
    assert shortfall(100, {"a": 100, "b": 97}) == {"b": 3}


def test_plan_then_dedup_keeps_exactly_per_type_in_plan_order(tmp_path, candidate_factory):
    config = load_config(overrides={"plan.per_type": 2, "dedup.enabled": False})
    records = [candidate_factory(f"Question number {i} about this room?", t)
               for t in ("exaggerated_risk", "negated_harm") for i in range(3)]
    path = write_records(records, tmp_path / "in.parquet")
    result = run_stage(DedupStage(), config, [str(path)], tmp_path, "all")
    kept, report = read_records(result.kept), result.report
    assert Counter(r.stimulus_type for r in kept) == {"exaggerated_risk": 2, "negated_harm": 2}
    assert report.dropped == {"surplus": 2} and survived(report) == {"exaggerated_risk": 3, "negated_harm": 3}
    assert report.status == "not_run" and report.note == "dedup.enabled = false"
    assert [r.drop_reason for r in read_records(result.dropped)] == ["surplus", "surplus"]
    assert {r.question for r in kept} == {f"Question number {i} about this room?" for i in (0, 1)}


def test_plan_stage_writes_only_the_new_slots_of_a_top_up(tmp_path):
    config = load_config(overrides={"plan.per_type": 10})
    first = run_stage(PlanStage(), config, [], tmp_path, "all")
    assert first.report.entered == first.report.kept == 3 * 12  # 10 per type and a margin for dedup's losses
    more = run_stage(PlanStage(), config, [], tmp_path, "t1-all",
                     params={"draw": {t: 20 for t in config.plan.types},
                             "already": {t: 12 for t in config.plan.types}, "round": 1})
    assert more.report.entered == 3 * 8 and not set(first.kept) & set(more.kept)
    slots = PlanStage().read(first.kept)  # plan reads nothing: its slots are read by generate
    from mossforge.stages.generate import GenerateStage
    first_slots, more_slots = GenerateStage().read(first.kept), GenerateStage().read(more.kept)
    assert slots == [] and len(first_slots) == 36 and not set(first_slots) & set(more_slots)
