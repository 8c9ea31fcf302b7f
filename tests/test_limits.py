"""Prefect global concurrency limits: created from the config, and a missing one is an error."""

import pytest

from mossforge.config import load_config
from mossforge.flows import limits


def config():
    return load_config(overrides={"endpoints": {
        "Fast.API": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_concurrency": 7},
        "slow": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_concurrency": 2}}})


def test_names_and_slots_come_from_the_config():
    assert limits.wanted_limits(config()) == {"mossforge-endpoint-fast-api": 7, "mossforge-endpoint-slow": 2}


def test_limits_are_created_and_updated_on_the_server(prefect_harness):
    from prefect.client.orchestration import get_client

    cfg = config()
    limits.ensure_limits(cfg)
    cfg.endpoints["slow"].max_concurrency = 3
    limits.ensure_limits(cfg)  # a changed config updates the limit
    with get_client(sync_client=True) as client:
        found = {lim.name: lim.limit for lim in client.read_global_concurrency_limits(limit=100)}
    assert found["mossforge-endpoint-fast-api"] == 7
    assert found["mossforge-endpoint-slow"] == 3
    with limits.hold(["mossforge-endpoint-slow"]):  # an existing limit: a slot is taken
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name("mossforge-endpoint-slow").active_slots == 1


def test_a_missing_limit_fails_loudly_instead_of_doing_nothing(prefect_harness):
    with pytest.raises(limits.MissingLimitError, match="mossforge-endpoint-gone"):
        with limits.hold(["mossforge-endpoint-gone"]):
            pass

    async def call():
        async with limits.ahold(["mossforge-endpoint-nowhere"]):
            pass

    import asyncio

    with pytest.raises(limits.MissingLimitError, match="mossforge-endpoint-nowhere"):
        asyncio.run(call())


def test_a_failed_batch_names_its_stage_batch_and_reason(prefect_harness):
    from prefect import flow, task

    from mossforge.flows.monitor import StageBatchFailed, wait_with_progress

    @task
    def work(n: int):
        if n == 2:
            raise OSError("disk full")
        return n

    @flow
    def batches():
        return wait_with_progress([work.submit(n) for n in range(3)], "render")

    with pytest.raises(StageBatchFailed, match=r"stage render, batch 2 of 3 failed: OSError: disk full"):
        batches()
