"""The flow with the diffusion renderer (tiny pipeline, CPU) and the GPU concurrency limit."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
import pytest
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from mossforge.config import load_config
from mossforge.flows.build import build_dataset
from mossforge.flows.gpu import ensure_gpu_limit, gpu_slot
from mossforge.generators import diffusion

pytestmark = pytest.mark.slow


def diffusion_config(tmp_path, model, **overrides):
    settings = {"plan.per_type": 3, "run.out_dir": str(tmp_path / "out"),
                "run.work_dir": str(tmp_path / "work"), "dataset.name": "difftest",
                "render.renderer": "diffusion", "render.size": 64, "render.batch_size": 2,
                "render.diffusion.model": model, "render.diffusion.device": "cpu",
                "render.diffusion.steps": 2, "render.diffusion.batch_size": 2,
                "render.diffusion.gpu_limit": "test-gpu"}
    settings.update(overrides)
    return load_config(overrides=settings).model_dump(mode="json")


def test_diffusion_flow_renders_publishes_and_reuses(prefect_harness, tmp_path, tiny_diffusion_model):
    from prefect.client.orchestration import get_client

    config = diffusion_config(tmp_path, tiny_diffusion_model, **{
        "render.near_duplicate_images": "drop", "render.phash_distance": 64})  # everything "alike"
    start = len(diffusion.pipeline_calls)
    summary = build_dataset(config=config)
    calls = sorted(list(diffusion.pipeline_calls)[start:], key=lambda c: c[1])
    assert len(calls) >= 3  # several render tasks, two at a time in the flow's thread pool
    assert all(prev[2] <= nxt[1] for prev, nxt in zip(calls, calls[1:]))  # never two at once
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("test-gpu").limit == 1

    render = next(row for row in summary["funnel"] if row["stage"] == "render")
    assert render["status"] == "ran" and "no GPU" in render["note"]
    assert render["dropped"]["near_duplicate_image"] == render["entered"] - 1 and render["kept"] == 1
    assert "near-duplicate images" in render["note"]
    assert summary["counts"]["benign"] == 1
    version = summary["path"]
    dropped = pq.read_table(f"{version}/dropped.parquet").to_pylist()
    assert sum(r["drop_reason"] == "near_duplicate_image" for r in dropped) == render["entered"] - 1
    rows = pq.read_table(f"{version}/data/benign/test-00000-of-00001.parquet").to_pylist()
    info = rows[0]["image_info"]
    assert info["renderer"] == "diffusers" and info["steps"] == 2 and info["model_id"] == tiny_diffusion_model

    # A re-run renders nothing (cached tasks), and publishes the same version.
    start = len(diffusion.pipeline_calls)
    again = build_dataset(config=config)
    assert len(diffusion.pipeline_calls) == start and again["version"] == summary["version"]
    # Recomputing every task still renders nothing: the image store's render cache answers.
    fresh = build_dataset(config=config, fresh=True)
    assert len(diffusion.pipeline_calls) == start and fresh["version"] == summary["version"]


def test_the_gpu_limit_admits_one_render_at_a_time(prefect_harness):
    ensure_gpu_limit("test-gpu-slots", 1)

    @task
    def hold(i: int) -> tuple[float, float]:
        with gpu_slot("test-gpu-slots"):
            started = time.time()
            time.sleep(0.4)
            return started, time.time()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def contend() -> list[tuple[float, float]]:
        return [f.result() for f in [hold.submit(i) for i in range(3)]]

    spans = sorted(contend())
    assert all(prev[1] <= nxt[0] + 0.05 for prev, nxt in zip(spans, spans[1:]))
    assert spans[-1][1] - spans[0][0] >= 1.1  # serialised, not parallel


def test_a_missing_gpu_limit_is_an_error_not_a_free_pass(prefect_harness):
    @flow
    def unguarded():
        with gpu_slot("no-such-limit"):
            return "ran"

    with pytest.raises(Exception, match="no-such-limit|not found|does not exist"):
        unguarded()
