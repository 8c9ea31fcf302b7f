"""The typed manifest: what publish writes is validated, and what was written reads back unchanged."""

import json
from pathlib import Path

import pytest

from mossforge.release.layout import MANIFEST, list_versions, read_manifest
from mossforge.release.manifest import Manifest, ManifestError, load_manifest

DATA = Path(__file__).parent / "data" / "release"

# The manifest as the first published version of mossforge wrote it (commit b2356d0): no
# controversial count, items, features, version number, change, models or consensus.
OLDEST = {
    "dataset": "mossforge-offline", "version": "0123456789ab", "created_at": "2026-11-22T10:00:00+00:00",
    "schema_version": "1", "code_version": "0.1.0", "config_hash": "abcdef0123456789",
    "config": {"dataset": {"name": "mossforge-offline"}},
    "generators": [{"generator": "seedbank", "model_id": None, "prompt_template_id": "seedbank-v1",
                    "prompt_template_hash": "00" * 32}],
    "renderers": [{"renderer": "offline-pillow", "model_id": None}],
    "stages": {"target_check": "not_run"},
    "funnel": [{"stage": "generate", "status": "ran", "entered": 3, "kept": 3, "dropped": {}, "note": "seed bank"}],
    "counts": {"benign": 3, "contrast": 3, "dropped": 0, "by_type": {"negated_harm": 3},
               "by_category": {"copyright": 3}, "by_type_and_category": {"negated_harm/copyright": 3},
               "dropped_by_reason": {}},
    "files": {"README.md": "11" * 32},
}


@pytest.mark.parametrize("name", ["default", "models"])
def test_published_manifests_round_trip_byte_for_byte(name):
    """Real manifests (the two pinned configs of test_version_ids) validate and dump to the very
    text publish writes: the models change no key and no value (ints stay ints, floats floats)."""
    path = DATA / f"manifest_{name}.json"
    data = json.loads(path.read_text())
    typed = Manifest.for_writing(data)
    assert typed.to_json() == json.dumps(data, indent=2, sort_keys=True)
    assert typed.counts.benign == data["counts"]["benign"]
    assert [row.stage for row in typed.funnel] == [row["stage"] for row in data["funnel"]]
    seconds = [row.seconds for row in typed.funnel]
    assert all(type(s) is type(r["seconds"]) for s, r in zip(seconds, data["funnel"]))


def test_the_oldest_manifest_shape_still_reads(tmp_path):
    folder = tmp_path / "mossforge-offline" / OLDEST["version"]
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(json.dumps(OLDEST))
    assert read_manifest(folder) == OLDEST  # nothing added, nothing lost
    typed = load_manifest(folder / MANIFEST)
    assert typed.counts.controversial == 0 and typed.version_number is None and typed.items is None
    assert [m["version"] for m in list_versions(tmp_path, "mossforge-offline")] == [OLDEST["version"]]


def test_a_newer_manifest_key_is_kept_on_read_and_refused_on_write():
    data = {**OLDEST, "made_by_a_newer_mossforge": {"x": 1}}
    assert Manifest.model_validate(data).to_dict() == data
    with pytest.raises(ValueError, match="made_by_a_newer_mossforge"):
        Manifest.for_writing(data)


@pytest.mark.parametrize("bend, problem", [
    (lambda m: m["counts"].pop("benign"), "counts.benign"),
    (lambda m: m["counts"].update(benign="many"), "counts.benign"),
    (lambda m: m["counts"].update(typo=1), "counts.typo"),
    (lambda m: m["generators"][0].pop("generator"), "generators.0.generator"),
    (lambda m: m.update(change={"level": "huge", "reasons": []}), "change.level"),
    (lambda m: m.pop("version"), "version"),
])
def test_a_bad_manifest_is_an_error_naming_the_file_and_key(tmp_path, bend, problem):
    data = json.loads(json.dumps(OLDEST))
    bend(data)
    path = tmp_path / MANIFEST
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_unreadable_manifests_name_the_file(tmp_path):
    folder = tmp_path / "ds" / "v1"
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ManifestError, match=str(folder / MANIFEST)):
        list_versions(tmp_path, "ds")
    (folder / MANIFEST).write_text("[1, 2]")
    with pytest.raises(ManifestError, match="JSON object"):
        read_manifest(folder)
