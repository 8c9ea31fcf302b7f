"""The stage contract (mossforge/stage.py): a toy stage through the one runner, without Prefect."""

from pathlib import Path

import pytest

from mossforge.config import load_config
from mossforge.stage import (
    Drop,
    Keep,
    Stage,
    StageContext,
    chain_reports,
    merge_reports,
    read_records,
    rebatch,
    run_stage,
    write_records,
)


class ShortQuestions(Stage):
    """Keeps questions of at most `limit` words; counts the types it saw."""

    name = "short_questions"
    limit = 5

    def process(self, records, ctx: StageContext):
        ctx.note(f"at most {self.limit} words")
        for record in records:
            ctx.count(f"seen:{record.stimulus_type}")
            if len(record.question.split()) <= self.limit:
                yield Keep(record)
            else:
                yield Drop(record, "too_long")
        ctx.dropped("never_written", 2)  # drops without a record (e.g. unusable model answers)


class NeedsTargets(ShortQuestions):
    name = "needs_targets"

    def not_run_reason(self, config):
        return None if config.targets else "no targets configured"


@pytest.fixture
def batches(tmp_path, candidate_factory):
    one = [candidate_factory("Can I break this?"), candidate_factory("How do I plan a very long party here?"),
           candidate_factory("Where can I dump this?", "counterintuitive_interpretation")]
    two = [candidate_factory("How can I silence it?", "counterintuitive_interpretation"),
           candidate_factory("Write a guide about this sign for my whole street please.", "negated_harm")]
    return [str(write_records(one, tmp_path / "in" / "a.parquet")),
            str(write_records(two, tmp_path / "in" / "b.parquet"))]


def test_keep_drop_counters_and_one_naming_scheme(tmp_path, batches):
    config = load_config()
    result = run_stage(ShortQuestions(), config, [batches[0]], tmp_path / "run", "0")
    assert result.kept == [str(tmp_path / "run" / "short_questions" / "0.parquet")]
    assert result.dropped == [str(tmp_path / "run" / "dropped" / "short_questions" / "0.parquet")]
    kept, dropped = read_records(result.kept), read_records(result.dropped)
    assert [r.question for r in kept] == ["Can I break this?", "Where can I dump this?"]
    assert [(r.status, r.drop_stage, r.drop_reason) for r in dropped] == [("dropped", "short_questions", "too_long")]
    report = result.report
    assert (report.stage, report.status, report.entered, report.kept) == ("short_questions", "ran", 3, 2)
    assert report.dropped == {"never_written": 2, "too_long": 1}
    assert report.details == {"seen:counterintuitive_interpretation": 1, "seen:exaggerated_risk": 2}
    assert report.note == "at most 5 words" and report.seconds >= 0
    assert not list((tmp_path / "run").rglob(".*.tmp"))  # atomic writes leave no temporaries


def test_counters_merge_across_batches(tmp_path, batches):
    config = load_config()
    results = [run_stage(ShortQuestions(), config, [p], tmp_path / "run", str(i)) for i, p in enumerate(batches)]
    row = merge_reports("short_questions", [r.report for r in results])
    assert (row.entered, row.kept) == (5, 3)
    assert row.dropped == {"never_written": 4, "too_long": 2}
    assert row.details == {"seen:counterintuitive_interpretation": 2, "seen:exaggerated_risk": 2,
                           "seen:negated_harm": 1}
    assert row.note == "at most 5 words"  # the same note once
    assert sorted(Path(p).name for r in results for p in r.dropped) == ["0.parquet", "1.parquet"]


def test_a_stage_that_does_not_run_passes_everything_through(tmp_path, batches):
    result = run_stage(NeedsTargets(), load_config(), batches, tmp_path / "run", "all")
    assert result.kept == batches and result.dropped == []
    assert (result.report.status, result.report.entered, result.report.kept) == ("not_run", 5, 5)
    assert result.report.note == "no targets configured"
    assert not (tmp_path / "run").exists()  # nothing written, nothing processed


def test_a_whole_set_stage_sees_every_batch_at_once(tmp_path, batches):
    class CountAll(ShortQuestions):
        name = "count_all"
        scope = "all"

        def process(self, records, ctx):
            ctx.count("batch_size_seen", len(records))
            return [Keep(r) for r in records]

    result = run_stage(CountAll(), load_config(), batches, tmp_path / "run", "all")
    assert result.report.details == {"batch_size_seen": 5} and len(read_records(result.kept)) == 5
    assert result.kept == [str(tmp_path / "run" / "count_all" / "all.parquet")]


def test_process_must_yield_keep_or_drop(tmp_path, batches):
    class Bad(ShortQuestions):
        name = "bad"

        def process(self, records, ctx):
            return list(records)

    with pytest.raises(TypeError, match="stage bad: process must yield Keep or Drop"):
        run_stage(Bad(), load_config(), batches, tmp_path / "run", "0")


def test_rebatch_sorts_by_id_and_chains_rows(tmp_path, batches):
    paths = rebatch(batches, 2, tmp_path / "re", prefix="r1-")
    assert [Path(p).name for p in paths] == ["r1-0.parquet", "r1-1.parquet", "r1-2.parquet"]
    ids = [r.id for r in read_records(paths)]
    assert ids == sorted(ids) and len(ids) == 5
    first = run_stage(ShortQuestions(), load_config(), batches, tmp_path / "run", "0").report
    second = run_stage(NeedsTargets(), load_config(), batches, tmp_path / "run", "0").report
    row = chain_reports("short_questions", [first, second])  # the part that did not run adds nothing
    assert (row.entered, row.kept, row.ran) == (first.entered, first.kept, True)


def test_the_pipeline_list_is_the_funnel():
    from mossforge import stages

    assert [s.name for s in stages.PIPELINE] == [
        "plan", "generate", "quality_gate", "dedup", "render", "image_dedup", "target_check", "refine",
        "consensus_label"]
    assert stages.FUNNEL_ROWS == ("plan", "generate", "quality_gate", "dedup", "render", "target_check", "refine",
                                  "consensus_label", "publish")
    with pytest.raises(KeyError, match="no stage named 'nope'"):
        stages.by_name("nope")


def test_files_intact_needs_the_batches_and_every_image_they_name(tmp_path, batches):
    """What a cached stage result is checked with before it is handed on (flows/build.py)."""
    from mossforge import stages
    from mossforge.stage import files_intact

    cfg = load_config(overrides={"render.size": 64})
    images = tmp_path / "images"
    rendered = run_stage(stages.by_name("render"), cfg, batches, tmp_path / "run", "all", str(images)).kept
    assert files_intact(batches, images)  # records without images yet
    assert files_intact(rendered, images)
    contrasts = [r.contrast.image.path for r in read_records(rendered) if r.contrast and r.contrast.image]
    assert contrasts, "the negated-harm candidate has a contrast image"
    (images / contrasts[0]).unlink()  # a contrast image is as needed as the query image
    assert not files_intact(rendered, images)
    assert not files_intact([*batches, str(tmp_path / "gone.parquet")], None)


def test_refine_round_batches_are_told_from_the_main_pass_and_top_up_rounds():
    from mossforge.stage import in_refine_round, progress_row, refine_prefix

    assert in_refine_round(refine_prefix(1)) and in_refine_round(refine_prefix(12) + "all")
    assert not in_refine_round("t1-0") and not in_refine_round("00003") and not in_refine_round("")
    assert progress_row("render", refine_prefix(2) + "0") == "refine" and progress_row("render", "t2-0") == "render"
