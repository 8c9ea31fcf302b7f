import polars as pl
import pytest
from PIL import Image

from mossforge.images import ImageStore
from mossforge.schema import (
    Candidate,
    JudgeVote,
    TargetResult,
    arrow_schema,
    candidate_id,
    dataset_features,
    from_table,
    to_table,
)


def test_candidate_id_is_stable_and_ignores_spacing():
    a = candidate_id("negated_harm", "Promote  this message.", "A sign")
    assert a == candidate_id("negated_harm", "Promote this message.", " A sign ")
    assert a != candidate_id("exaggerated_risk", "Promote this message.", "A sign")
    assert a.startswith("mf-") and len(a) == 19


def test_defaults_say_not_run(candidate_factory):
    record = candidate_factory()
    assert record.dedup.decision == "not_run"
    assert record.target_check.status == "not_run"
    assert record.consensus_label.status == "not_run"
    assert record.consensus_label.consensus is None


def test_unknown_field_is_rejected(candidate_factory):
    with pytest.raises(ValueError, match="extra"):
        Candidate(**{**candidate_factory().model_dump(), "surprise": 1})


def test_arrow_and_polars_round_trip(tmp_path, candidate_factory):
    store = ImageStore(tmp_path)
    record = candidate_factory(stimulus_type="negated_harm")
    record.image = store.put(Image.new("RGB", (8, 6), "white"), renderer="test", seed=3)
    record.target_check.results.append(
        TargetResult(target="t1", model_id="m", answer="No.", label="full_refusal", classifier="rules"))
    record.consensus_label.votes.append(JudgeVote(judge="j1", model_id="m", label="benign"))
    table = to_table([record, candidate_factory("Another question?")])
    assert table.schema == arrow_schema()
    assert from_table(table)[0] == record
    frame = pl.from_arrow(table)
    assert frame["negation"].struct.field("symbol").to_list() == ["prohibition_sign", None]
    assert from_table(frame.to_arrow().cast(arrow_schema()))[0] == record


def test_dataset_features_round_trip_with_real_images(tmp_path, candidate_factory):
    import datasets

    store = ImageStore(tmp_path / "img")
    record = candidate_factory()
    record.image = store.put(Image.new("RGB", (16, 9), (10, 200, 30)), renderer="test")
    row = record.model_dump()
    row["image_info"] = row.pop("image")
    row["image"] = {"bytes": store.path(record.image).read_bytes(), "path": None}
    row["contrast_image"] = None
    ds = datasets.Dataset.from_list([row], features=dataset_features())
    ds.to_parquet(str(tmp_path / "x.parquet"))
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "x.parquet"), split="train")
    assert isinstance(loaded.features["image"], datasets.Image)
    image = loaded[0]["image"]
    assert image.size == (16, 9) and image.getpixel((0, 0)) == (10, 200, 30)
    assert loaded[0]["image_info"]["sha256"] == record.image.sha256
    assert loaded[0]["target_check"]["status"] == "not_run"


def test_image_store_writes_once(tmp_path):
    store = ImageStore(tmp_path)
    ref = store.put(Image.new("RGB", (4, 4), "red"), renderer="test")
    path = store.path(ref)
    mtime = path.stat().st_mtime_ns
    again = store.put(Image.new("RGB", (4, 4), "red"), renderer="test")
    assert again.path == ref.path and path.stat().st_mtime_ns == mtime
    assert (ref.width, ref.height) == (4, 4) and len(ref.sha256) == 64
