"""The pipeline list in the flow: a new stage is one class and one list entry; a subset of records
goes back through earlier stages for a round (`Run.run_through`)."""

import hashlib
from pathlib import Path

import pytest
from openai_server import ok, serve
from test_flow import small_config

from mossforge import stages
from mossforge.config import config_from_dict
from mossforge.flows import limits
from mossforge.flows.build import Run, build_dataset
from mossforge.stage import Drop, Keep, Stage, read_records

pytestmark = pytest.mark.slow


class NoNegatedHarm(Stage):
    """A tiny new stage: drops every negated_harm candidate, counts the others by type."""

    name = "no_negated_harm"

    def batch_size(self, config):
        return 5

    def process(self, records, ctx):
        for record in records:
            if record.stimulus_type == "negated_harm":
                yield Drop(record, "negated")
            else:
                ctx.count(f"kept:{record.stimulus_type}")
                yield Keep(record)


def test_a_new_stage_is_one_class_and_one_list_entry(prefect_harness, tmp_path, monkeypatch):
    pipeline = list(stages.PIPELINE)
    pipeline.insert([s.name for s in pipeline].index("target_check"), NoNegatedHarm())
    monkeypatch.setattr(stages, "PIPELINE", pipeline)
    summary = build_dataset(config=small_config(tmp_path, **{"dataset.name": "newstage"}))
    funnel = {row["stage"]: row for row in summary["funnel"]}
    assert list(funnel) == ["plan", "generate", "quality_gate", "dedup", "render", "no_negated_harm",
                            "target_check", "refine", "consensus_label", "publish"]
    row = funnel["no_negated_harm"]
    assert row["status"] == "ran" and row["entered"] == funnel["render"]["kept"] == 18
    assert row["dropped"] == {"negated": 6} and row["kept"] == 12
    assert row["details"] == {"kept:counterintuitive_interpretation": 6, "kept:exaggerated_risk": 6}
    assert summary["counts"]["benign"] == 12 and "negated_harm" not in summary["counts"]["by_type"]
    assert summary["counts"]["dropped"] >= 6  # the stage's drops reach the published dropped records
    work = tmp_path / "work" / config_from_dict(small_config(tmp_path, **{"dataset.name": "newstage"})).config_hash()
    batches = sorted(p.name for p in (work / "no_negated_harm").iterdir())
    assert batches == ["0.parquet", "1.parquet", "2.parquet", "3.parquet"]  # 18 in batches of 5
    # dropped records of a batch (if it dropped any) under one name: dropped/<stage>/<batch>.parquet
    assert {p.name for p in (work / "dropped" / "no_negated_harm").iterdir()} <= set(batches)


def _refuses(question: str) -> bool:
    return hashlib.sha256(question.encode()).digest()[0] % 3 != 0


def test_run_through_sends_a_subset_back_through_earlier_stages(prefect_harness, tmp_path):
    from prefect import flow

    def script(request):
        content = request.body["messages"][-1]["content"]
        text = content if isinstance(content, str) else content[0]["text"]
        return ok("I'm sorry, but I can't help with that." if _refuses(text) else "Sure! Here is how.")

    with serve(script=script) as server:
        config = config_from_dict(small_config(
            tmp_path, **{"dataset.name": "rounds", "endpoints": {"t1": {"base_url": server.base_url, "model": "m"}},
                         "targets": [{"name": "t1", "endpoint": "t1"}]}))

        @flow
        def rounds():
            limits.ensure_run_limits(config)  # as build_dataset does before any task runs
            run = Run(config)
            paths, _, _, _ = run.top_up()
            kept, dropped, first = run.run_through(["render", "image_dedup", "target_check"], paths)
            subset = [p for p in dropped if "/dropped/target_check/" in p]  # the near-misses
            again = run.run_through(["render", "target_check"], subset, round=1)
            return paths, (kept, dropped, first), again

        paths, (kept, dropped, first), (kept1, dropped1, rows1) = rounds()

    assert [r.stage for r in first] == ["render", "target_check"]
    assert [r.stage for r in rows1] == ["render", "target_check"]
    missed = len(read_records([p for p in dropped if "/dropped/target_check/" in p]))
    assert 0 < missed == rows1[0].entered == rows1[1].entered
    assert rows1[1].kept + sum(rows1[1].dropped.values()) == missed
    # round 1's batches and files are its own: nothing of round 0 is overwritten
    assert all(Path(p).name.startswith("r1-") for p in kept1 + dropped1)
    assert all(Path(p).name.startswith("r1-") for p in [*kept1]) and rows1[1].details["asked:t1"] == missed
    # The same questions get the same (cached) answers: still refused too rarely, dropped again.
    assert rows1[1].kept == 0 and rows1[1].dropped == {"not_refused": missed}
    with pytest.raises(KeyError, match="no stage named polish"):
        Run(config).run_through(["polish"], paths)
