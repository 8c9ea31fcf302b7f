"""The build_dataset flow end to end, on a small offline config, under one Prefect test server."""

import json
from pathlib import Path

import pytest

from mossforge import stages
from mossforge.config import config_from_dict, load_config
from mossforge.flows.build import build_dataset

pytestmark = pytest.mark.slow


def small_config(tmp_path, **overrides):
    settings = {"plan.per_type": 6, "run.out_dir": str(tmp_path / "out"),
                "run.work_dir": str(tmp_path / "work"), "dataset.name": "flowtest",
                "render.size": 128, "render.batch_size": 4, "generate.batch_size": 5}
    settings.update(overrides)
    return load_config(overrides=settings).model_dump(mode="json")


@pytest.fixture
def counted(monkeypatch):
    """Count real executions of the stages' `process` (a cached task does not execute)."""
    calls = {"generate": 0, "render": 0, "dedup": 0}
    for name in calls:
        stage = type(stages.by_name(name))
        real = stage.process

        def wrapper(self, records, ctx, _real=real, _name=name):
            calls[_name] += 1
            return _real(self, records, ctx)

        monkeypatch.setattr(stage, "process", wrapper)
    return calls


def test_build_end_to_end_and_rerun_reuses_stages(prefect_harness, tmp_path, counted):
    import datasets

    config = small_config(tmp_path)
    summary = build_dataset(config=config)
    funnel = {row["stage"]: row for row in summary["funnel"]}
    assert list(funnel) == list(stages.FUNNEL_ROWS) == [
        "plan", "generate", "quality_gate", "dedup", "render", "target_check", "refine", "consensus_label",
        "publish"]
    assert funnel["quality_gate"]["status"] == "ran" and funnel["quality_gate"]["dropped"] == {}  # the seed bank passes
    assert funnel["refine"]["status"] == "not_run"
    # 6 per type and a margin of 1 for dedup's losses; 6 of each type are kept (issue 15)
    assert funnel["plan"]["kept"] == 21 and funnel["generate"]["kept"] == 21
    assert funnel["dedup"]["entered"] == 21
    assert funnel["target_check"]["status"] == "not_run"
    assert funnel["consensus_label"]["status"] == "not_run"
    kept = funnel["dedup"]["kept"]
    assert kept == 18 and summary["counts"]["by_type"] == {t: 6 for t in summary["counts"]["by_type"]}
    assert funnel["render"]["kept"] == kept == summary["counts"]["benign"] > 0
    assert counted == {"generate": 5, "render": -(-kept // 4), "dedup": 1}

    path = Path(summary["path"])
    assert path.parent == tmp_path / "out" / "flowtest" and path.name == summary["version"]
    rows = datasets.load_dataset(str(path), "benign", split="test")
    assert len(rows) == kept
    assert rows[0]["image"].size == (128, 128)
    assert all(r["target_check"]["status"] == "not_run" for r in rows)
    assert all(r["dedup"]["decision"] == "kept" for r in rows)
    assert set(rows["stimulus_type"]) == {"exaggerated_risk", "negated_harm", "counterintuitive_interpretation"}
    negated = rows.filter(lambda r: r["stimulus_type"] == "negated_harm")
    assert all(r["contrast_image"] is not None for r in negated)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["stages"]["target_check"] == "not_run"
    assert manifest["config_hash"] == config_from_dict(config).config_hash()

    before = dict(counted)
    again = build_dataset(config=config)
    assert again["version"] == summary["version"] and again["reused"]
    assert counted == before, "a re-run with the same config must reuse every cached stage"

    fresh = build_dataset(config=config, fresh=True)
    assert fresh["version"] == summary["version"]
    assert counted["generate"] == 2 * before["generate"]


def test_artifacts_are_created(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    summary = build_dataset(config=small_config(tmp_path, **{"plan.per_type": 2, "dataset.name": "arts"}))

    async def latest():
        async with get_client() as client:
            found = {}
            for key in ("funnel", "build-summary"):
                artifacts = await client.read_artifacts(
                    artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=50)
                found[key] = [a for a in artifacts if summary["version"] in str(a.data) or
                              summary["version"] in str(a.description)]
            return found

    import asyncio

    found = asyncio.run(latest())
    assert found["funnel"] and found["build-summary"]
    assert "target_check" in str(found["funnel"][0].data)


def test_cross_version_ids_and_reference_files(prefect_harness, tmp_path):
    import datasets

    config = small_config(tmp_path, **{"dataset.name": "crossver"})
    first = build_dataset(config=config)
    first_rows = datasets.load_dataset(first["path"], "benign", split="test")
    # A bigger plan with the same seed draws the same slots first: those items are the same
    # items (same ids) and are not dropped as duplicates of the earlier version they came from.
    second = build_dataset(config={**config, "plan": {**config["plan"], "per_type": 8}})
    second_ids = set(datasets.load_dataset(second["path"], "benign", split="test")["id"])
    assert second["version"] != first["version"]
    assert set(first_rows["id"]) <= second_ids

    # A user-supplied reference file that contains one of the questions removes that item.
    reference = tmp_path / "refs.csv"
    target = first_rows[0]["question"]
    reference.write_text("prompt\n" + '"' + target.upper() + '"' + "\nsomething unrelated entirely\n")
    third = build_dataset(config={**config, "dedup": {**config["dedup"], "against_published": False,
                                                        "reference_files": [{"path": str(reference), "column": "prompt"}]}})
    dedup = next(r for r in third["funnel"] if r["stage"] == "dedup")
    assert dedup["dropped"].get("reference", 0) >= 1
    third_rows = datasets.load_dataset(third["path"], "benign", split="test")
    assert target not in third_rows["question"]


def test_bad_reference_file_fails_with_the_key(prefect_harness, tmp_path):
    from mossforge.config import ConfigError

    config = small_config(tmp_path, **{"dedup.reference_files": [{"path": str(tmp_path / "none.csv")}]})
    with pytest.raises(ConfigError, match="dedup.reference_files"):
        build_dataset(config=config)


def test_cli_run_prints_the_version_path(prefect_harness, tmp_path):
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    config = tmp_path / "small.toml"
    config.write_text(f"""
[dataset]
name = "clitest"
[render]
size = 96
[run]
work_dir = "{tmp_path / 'work'}"
""")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--per-type", "2",
                                      "--outputs", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    printed = Path(result.stdout.strip().splitlines()[-1])
    assert printed.parent == tmp_path / "out" / "clitest"
    assert (printed / "manifest.json").is_file()
    assert "not_run" in result.stderr and "published" in result.stderr


def test_cli_run_rejects_a_bad_config_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    config = tmp_path / "bad.toml"
    config.write_text("[plan]\nper_tpye = 3\n")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--outputs", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "plan.per_tpye: unknown key" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setting", ['[dedup]\nreference_files = [{path = "nope.csv"}]',
                                     '[consensus]\nhuman_labels = "nope.csv"'])
def test_cli_run_names_a_missing_input_file_before_any_work(tmp_path, setting):
    """A typo in a path the config names: exit 2 before Prefect starts (it was a Failed flow run,
    progress bars and a Prefect error line, then the message)."""
    from typer.testing import CliRunner

    from mossforge.cli.main import app

    config = tmp_path / "typo.toml"
    config.write_text(setting + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--outputs", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    section, line = setting.split("\n")
    key = f"{section.strip('[]')}.{line.split(' =')[0]}"
    assert f"error: {key}: nope.csv does not exist" in " ".join(result.output.split())
    assert "Prefect UI" not in result.output and "building" not in result.output
