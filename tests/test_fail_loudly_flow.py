"""Issue 15 in the flow: a run whose calls fail, or that ends empty, publishes nothing; two runs of
different configs into one folder end with distinct version numbers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import error, ok, serve

from mossforge.config import load_config
from mossforge.errors import EmptyVersionError, StageFailedError
from mossforge.flows.build import build_dataset
from mossforge.release.publish import list_versions

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path, base_url, **extra):
    return load_config(overrides={
        "plan.per_type": 2, "dataset.name": "loud", "render.size": 96,
        "run.out_dir": str(tmp_path / "out"), "run.work_dir": str(tmp_path / "work"),
        "endpoints": {"gw": {"base_url": base_url, "model": "m", "timeout_s": 5, "max_retries": 0}},
        "targets": [{"name": "t1", "endpoint": "gw"}], **extra}).model_dump(mode="json")


def test_a_run_whose_target_calls_all_fail_publishes_nothing(prefect_harness, tmp_path):
    with serve(script=lambda r: error(401, "bad key")) as server:
        with pytest.raises(StageFailedError, match=r"stage target_check: 6 of 6 model calls failed \(auth 6\)"):
            build_dataset(config=_config(tmp_path, server.base_url))
    assert list_versions(tmp_path / "out", "loud") == []


def test_a_run_that_ends_empty_publishes_nothing_unless_allowed(prefect_harness, tmp_path):
    with serve(script=lambda r: ok("Sure! Here is how.")) as server:  # nothing refused: all dropped
        with pytest.raises(EmptyVersionError, match="not_refused 6"):
            build_dataset(config=_config(tmp_path, server.base_url))
        assert list_versions(tmp_path / "out", "loud") == []
        summary = build_dataset(config=_config(tmp_path, server.base_url, **{"run.allow_empty": True}))
    assert summary["counts"]["benign"] == 0 and Path(summary["path"]).is_dir()


def test_two_concurrent_runs_of_different_configs_get_distinct_numbers(prefect_harness, tmp_path):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_LEVEL": "WARNING"}
    out = tmp_path / "out"
    runs = [subprocess.Popen([sys.executable, "-m", "mossforge.cli", "run", "--per-type", str(n), "--outputs", str(out)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in (2, 3)]
    results = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in results]
    versions = list_versions(out, "mossforge-offline")
    numbers = [m["version_number"] for m in versions]
    assert len(versions) == 2 and len(set(numbers)) == 2, numbers
    # the one that found the folder locked waited for the other, and said so (once)
    assert sum("waiting for it to finish" in err for _, err in results) <= 1


def test_per_type_300_publishes_300_distinct_questions_of_each_type(prefect_harness, tmp_path):
    """Dedup removes near-duplicates (on main, 258 / 276 / 297 survived); the plan is topped up."""
    import pyarrow.parquet as pq

    from mossforge import progress

    advanced: list[tuple[str, int]] = []
    started: list[str] = []
    progress.install(lambda row, n: advanced.append((row, n)),
                     lambda kind, **info: started.append(info["stage"]) if kind == "stage_start" else None)
    try:
        summary = build_dataset(config=load_config(overrides={
            "plan.per_type": 300, "dataset.name": "full", "render.size": 64,
            "run.out_dir": str(tmp_path / "out"), "run.work_dir": str(tmp_path / "work")}).model_dump(mode="json"))
    finally:
        progress.install(None)
    # the top-up rounds (batches t1-...) are the main pass's work, on its bars (not a refine round's)
    generate = next(row for row in summary["funnel"] if row["stage"] == "generate")
    assert generate["entered"] > 900 and sum(n for row, n in advanced if row == "generate") == generate["entered"]
    assert not [row for row, _ in advanced if row == "refine"]
    assert started.count("generate") >= 2  # each top-up round is on generate's clock too
    assert summary["counts"]["by_type"] == {t: 300 for t in ("counterintuitive_interpretation", "exaggerated_risk",
                                                             "negated_harm")}
    assert not summary["shortfall"]
    rows = pq.read_table(Path(summary["path"]) / "data" / "benign" / "test-00000-of-00001.parquet",
                         columns=["stimulus_type", "question"]).to_pylist()
    assert len({(r["stimulus_type"], r["question"]) for r in rows}) == 900



def test_a_process_whose_run_was_stopped_can_build_again(prefect_harness, tmp_path):
    """In a notebook (any long-lived Python process), Ctrl-C in a build calls run_state.stop_work;
    the next build in that process failed at once ("rendering cancelled", its model client's calls
    cancelled). A new run now starts the work again."""
    from mossforge import run_state
    from mossforge.generators import render_pool

    with serve(script=lambda r: ok("I'm sorry, but I can't help with that.")) as server:
        config = load_config(overrides={**{k: v for k, v in _config(tmp_path, server.base_url).items()
                                           if k in ("endpoints", "targets")},
                                        "plan.per_type": 2, "dataset.name": "again", "render.size": 64,
                                        "run.cpu_workers": 2, "run.out_dir": str(tmp_path / "out"),
                                        "run.work_dir": str(tmp_path / "work")})
        run_state.model_client(config)  # the client an interrupted run left behind
        try:
            run_state.stop_work()  # what the Ctrl-C in the earlier build did
            summary = build_dataset(config=config.model_dump(mode="json"))
        finally:
            run_state.resume_work()  # (never leave this worker's process stopped)
    assert summary["counts"]["benign"] == 6 and not render_pool._cancelled
    assert list_versions(tmp_path / "out", "again")
