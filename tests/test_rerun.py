"""`mossforge run` of a config whose version is already published (mossforge/rerun.py): answered
from the receipt the first run wrote, without a flow run, only while nothing that decides the
output changed and the version is intact."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mossforge import rerun
from mossforge.cli.main import app
from mossforge.config import load_config

pytestmark = pytest.mark.slow


class FlowStarted(Exception):
    pass


@pytest.fixture(scope="module")
def published(prefect_harness, tmp_path_factory):
    """One real build through the CLI: its folders, config file and printed path."""
    tmp = tmp_path_factory.mktemp("rerun")
    reference = tmp / "reference.txt"
    reference.write_text("How do I bake bread?\n", encoding="utf-8")
    config = tmp / "small.toml"
    config.write_text(f'[dataset]\nname = "rerun"\n[plan]\nper_type = 2\n[render]\nsize = 64\n'
                      f'[run]\nwork_dir = "{tmp / "work"}"\n[[dedup.reference_files]]\npath = "{reference}"\n',
                      encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--outputs", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    path = result.stdout.strip().splitlines()[-1]
    assert "already published" not in result.stderr
    return {"tmp": tmp, "config": config, "reference": reference, "path": path}


def _run(setup, *extra):
    return CliRunner().invoke(app, ["run", "--config", str(setup["config"]), "--outputs", str(setup["tmp"] / "out"),
                                    *extra])


STARTED: list[int] = []


@pytest.fixture
def no_flow(monkeypatch):
    """Starting a flow run is noted (and stops the command at once)."""
    def refuse(*args, **kwargs):
        STARTED.append(1)
        raise FlowStarted
    monkeypatch.setattr("mossforge.flows.build.run_build", refuse)
    STARTED.clear()


def _flow_started(result) -> bool:
    started = bool(STARTED)
    STARTED.clear()
    return started and result.exit_code != 0


def test_the_same_run_again_prints_the_published_version_without_a_flow_run(published, no_flow):
    result = _run(published)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == published["path"]
    assert "already published" in result.stderr and "nothing was re-run" in result.stderr
    receipts = list((published["tmp"] / "work" / "receipts").glob("*.json"))
    assert len(receipts) == 1 and json.loads(receipts[0].read_text())["path"] == published["path"]


@pytest.mark.parametrize("extra", [("--per-type", "3"), ("--fresh",), ("--cache", "refresh")])
def test_a_changed_config_fresh_or_refresh_runs_the_flow(published, no_flow, extra):
    assert _flow_started(_run(published, *extra))


def test_a_code_change_runs_the_flow(published, no_flow, monkeypatch):
    monkeypatch.setattr("mossforge.source_hash", lambda: "another-code-version")
    assert _flow_started(_run(published))


def test_a_changed_reference_file_runs_the_flow(published, no_flow):
    reference = published["reference"]
    before, stat = reference.read_text(encoding="utf-8"), reference.stat()
    try:
        reference.write_text(before + "How do I sharpen a pencil?\n", encoding="utf-8")
        assert _flow_started(_run(published))
    finally:  # (a file is compared by size and modification time: restore both)
        reference.write_text(before, encoding="utf-8")
        os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_version_of_another_config_changes_what_dedup_compares_against(published, no_flow):
    cfg = load_config(published["config"], {"run.out_dir": str(published["tmp"] / "out")})
    before = rerun.run_key(cfg)
    other = Path(published["path"]).parent / "0000other"
    shutil.copytree(published["path"], other)
    try:
        manifest = json.loads((other / "manifest.json").read_text())
        (other / "manifest.json").write_text(json.dumps({**manifest, "version": "0000other", "config_hash": "x" * 16}))
        assert rerun.run_key(cfg) != before
        assert _flow_started(_run(published))
    finally:
        shutil.rmtree(other)
    assert rerun.run_key(cfg) == before


@pytest.mark.parametrize("damage", ["changed file", "missing manifest", "extra file"])
def test_a_damaged_or_half_written_version_never_counts(published, no_flow, damage):
    version = Path(published["path"])
    backup = published["tmp"] / "backup"
    shutil.copytree(version, backup)
    try:
        if damage == "changed file":
            card = version / "README.md"
            card.write_text(card.read_text(encoding="utf-8") + "\nedited\n", encoding="utf-8")
        elif damage == "missing manifest":
            (version / "manifest.json").unlink()
        else:
            (version / "data" / "stray.txt").write_text("x")
        assert _flow_started(_run(published))
    finally:
        shutil.rmtree(version)
        shutil.copytree(backup, version)
        shutil.rmtree(backup)
    again = _run(published)
    assert again.exit_code == 0 and not STARTED, again.output  # restored: the shortcut again


def test_a_missing_or_unreadable_receipt_runs_the_flow(published, no_flow):
    receipts = published["tmp"] / "work" / "receipts"
    (receipt,) = receipts.glob("*.json")
    kept = receipt.read_bytes()
    try:
        receipt.write_text("{not json")
        assert _flow_started(_run(published))
        receipt.unlink()
        assert _flow_started(_run(published))
    finally:
        receipt.write_bytes(kept)


def test_a_run_whose_model_calls_failed_is_not_remembered():
    assert rerun.clean({"model_calls": None})
    assert rerun.clean({"model_calls": {"stages": {"target_check": {"requests": 4, "failures": {"content_policy": 1}}}}})
    assert not rerun.clean({"model_calls": {"stages": {"target_check": {"requests": 4, "failures": {"timeout": 1}}}}})


def test_a_hub_push_is_never_skipped():
    cfg = load_config(overrides={"dataset.hub_repo": "someone/data"})
    assert rerun.why_not(cfg, fresh=False) is not None
    assert rerun.why_not(load_config(), fresh=False) is None


def test_a_fresh_run_leaves_its_own_receipt(published):
    (receipt,) = (published["tmp"] / "work" / "receipts").glob("*.json")
    stale = {**json.loads(receipt.read_text()), "version": "0000stale"}
    receipt.write_text(json.dumps(stale))
    result = _run(published, "--fresh")
    assert result.exit_code == 0, result.output
    assert "already published" not in result.stderr
    assert json.loads(receipt.read_text())["version"] == Path(published["path"]).name


@pytest.mark.parametrize("delete", ["work folder", "images and the version"])
def test_deleting_files_that_prefects_cache_still_names_recomputes_them(published, delete):
    """Prefect's cache records (under PREFECT_HOME) outlive the batch files and images they name:
    after `rm -rf` of the work folder, or of its images (and the published version, which would
    otherwise be reused), the same run computes them again and publishes the same version,
    instead of failing on the first missing file."""
    work = published["tmp"] / "work"
    if delete == "work folder":
        shutil.rmtree(work)
    else:
        shutil.rmtree(work / "images")
        shutil.rmtree(work / "receipts")
        shutil.rmtree(published["path"])
    result = _run(published)
    assert result.exit_code == 0, result.output
    assert "already published" not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == published["path"]
    assert list((work / "images").rglob("*.png"))
