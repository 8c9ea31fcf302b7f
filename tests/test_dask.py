"""The flow on a local Dask cluster (prefect-dask) publishes the version the thread pool does, and
the endpoint's Prefect global concurrency limit bounds calls made from several worker processes."""

import hashlib

import pytest
from openai_server import ok, serve

from mossforge.config import load_config
from mossforge.flows.build import run_build

pytestmark = pytest.mark.slow

pytest.importorskip("prefect_dask", reason="prefect-dask is a dependency of mossforge; reinstall it")


def script(request):
    question = request.body["messages"][-1]["content"][0]["text"]
    refuses = hashlib.sha256(question.encode()).digest()[0] % 2 == 0
    # Slow answers: without a bound across processes, two workers' calls would overlap.
    return ok("I'm sorry, but I can't help with that." if refuses else "Sure! Here is a plan.", delay=0.3)


def config(tmp_path, base_url, runner, **run):
    return load_config(overrides={
        "dataset.name": "daskflow", "plan.per_type": 3, "render.size": 96, "render.batch_size": 3,
        "run.out_dir": str(tmp_path / runner / "out"), "run.work_dir": str(tmp_path / runner / "work"),
        "run.task_runner": runner, **{f"run.{k}": v for k, v in run.items()},
        "endpoints": {"picky": {"base_url": base_url, "model": "picky", "max_concurrency": 1, "timeout_s": 30}},
        "targets": [{"name": "picky", "endpoint": "picky"}],
    })


def test_dask_publishes_the_same_version_as_threads(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client

    with serve(script=script) as server:
        threads = run_build(config(tmp_path, server.base_url, "threads"))
        calls = len(server.requests)
        server.reset()
        dask = run_build(config(tmp_path, server.base_url, "dask", dask_workers=2))
        assert len(server.requests) == calls  # its own work dir and cache: every call made again
        assert server.max_active == 1, "the global limit bounds calls across worker processes"

    assert dask["version"] == threads["version"]
    assert dask["counts"] == threads["counts"]
    assert threads["model_calls"]["total"]["calls"] == calls
    # Calls made in the worker processes are counted there and collected by the flow.
    assert dask["model_calls"]["total"] == threads["model_calls"]["total"]
    assert dask["model_calls"]["stages"] == threads["model_calls"]["stages"]
    assert dask["limits"] == {"mossforge-endpoint-picky": 1}
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("mossforge-endpoint-picky").limit == 1


def test_ray_without_ray_installed_is_a_clear_error(tmp_path):
    from mossforge.flows.runners import RunnerUnavailable, make_task_runner

    try:
        import prefect_ray  # noqa: F401
    except ImportError:
        with pytest.raises(RunnerUnavailable, match=r"mossforge\[ray\]"):
            make_task_runner(load_config(overrides={"run.task_runner": "ray"}))
    else:
        pytest.skip("prefect-ray is installed here: the missing-package error cannot be shown")


def test_a_run_started_on_another_runner_knows_it():
    from prefect.task_runners import ThreadPoolTaskRunner

    from mossforge.flows.runners import runner_matches

    threads = load_config(overrides={"run.max_workers": 3})
    assert runner_matches(threads, ThreadPoolTaskRunner(max_workers=3))
    assert not runner_matches(threads, ThreadPoolTaskRunner(max_workers=2))  # the decorator's default
    assert not runner_matches(load_config(overrides={"run.task_runner": "dask"}), ThreadPoolTaskRunner(max_workers=2))


@pytest.mark.parametrize("ending, stops", [(None, False), ("ValueError", False), ("KeyboardInterrupt", True),
                                           ("TerminationSignal", True)],
                         ids=["finished", "a stage failed", "ctrl-c", "sigterm"])
def test_the_thread_runner_stops_the_work_of_its_threads_only_when_a_signal_ends_the_flow(monkeypatch, ending, stops):
    """On SIGTERM (Prefect's TerminationSignal) or Ctrl-C the flow's thread pool cancels the model
    calls and cards its threads are busy with before it waits for them; a run that finishes or
    fails leaves them alone (a later run in the same process still renders and calls models)."""
    from prefect.exceptions import TerminationSignal

    from mossforge import run_state
    from mossforge.flows.runners import StoppingThreadPoolTaskRunner, make_task_runner

    error = {None: None, "ValueError": ValueError("a stage failed"), "KeyboardInterrupt": KeyboardInterrupt(),
             "TerminationSignal": TerminationSignal(15)}[ending]
    calls = []
    monkeypatch.setattr(run_state, "stop_work", lambda: calls.append(1))
    runner = make_task_runner(load_config()).duplicate()  # (what the flow engine enters)
    assert isinstance(runner, StoppingThreadPoolTaskRunner)
    runner.__enter__()
    runner.__exit__(type(error) if error else None, error, None)
    assert bool(calls) == stops


def test_a_run_started_with_the_default_runner_reruns_itself_on_the_configured_one(prefect_harness, tmp_path):
    """What a served or deployed run does: the entrypoint's default runner is not the config's."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from mossforge.flows.build import build_dataset

    cfg = load_config(overrides={"dataset.name": "served", "plan.per_type": 2, "render.size": 64,
                                 "dedup.enabled": False, "run.max_workers": 1,
                                 "run.out_dir": str(tmp_path / "out"), "run.work_dir": str(tmp_path / "work")})
    summary = build_dataset(config=cfg.model_dump(mode="json"))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[f"served-{summary['version']}"])))
    assert len(runs) == 2  # the started run and its subflow on ThreadPoolTaskRunner(max_workers=1)
    assert sum(r.parent_task_run_id is not None for r in runs) == 1
