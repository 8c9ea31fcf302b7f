"""The task runner a build uses, chosen by `run.task_runner`: a bounded thread pool (default),
Dask (prefect-dask) or Ray (prefect-ray).

The runner decides where batch tasks execute, never what they produce: `run` is marked as not
affecting output (mossforge/config.py), so it is in neither the config hash nor the tasks' cache
keys, and a threads run and a Dask run of the same config reuse each other's results and publish
the same version.

With Dask or Ray, tasks run in other processes (or machines). Each process then has its own model
client: its in-process bound per endpoint no longer bounds the whole run, so the Prefect global
concurrency limits of `flows/limits.py` do (every model call holds a slot of its endpoint's limit),
and each task's calls are counted on a client of its own and collected by the flow
(`flows/monitor.py`). The CLI's progress bars only see work done in the flow's own process; the
Prefect progress artifacts (updated as batches finish) are right for every runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.task_runners import ThreadPoolTaskRunner

from mossforge import run_state
from mossforge.config import Config
from mossforge.errors import MossforgeError


class RunnerUnavailable(MossforgeError, RuntimeError):
    """The configured task runner's package is not installed."""


class StoppingThreadPoolTaskRunner(ThreadPoolTaskRunner):
    """Prefect's thread pool, which stops the work of its threads when the flow ends by a signal
    (SIGTERM, which Prefect turns into a crash or a runner's cancellation; Ctrl-C). Prefect's runner
    waits for its threads before the flow stops, and they would go on calling models and drawing
    cards for the rest of their batches; `run_state.stop_work` cancels those calls and cards first."""

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):  # a signal, not a failed stage
            run_state.stop_work()
        super().__exit__(exc_type, exc_value, traceback)


def needs_gpu(cfg: Config) -> bool:
    return cfg.render.renderer == "diffusion"


def gpu_count(cfg: Config) -> int:
    """GPU slots of the run: the diffusion renderer's `gpu_slots` (its global limit's size)."""
    return cfg.render.diffusion.gpu_slots if needs_gpu(cfg) else 0


def make_task_runner(cfg: Config):
    kind = cfg.run.task_runner
    if kind == "threads":
        return StoppingThreadPoolTaskRunner(max_workers=cfg.run.max_workers)
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise RunnerUnavailable("run.task_runner = 'dask' needs prefect-dask: "
                                    "pip install 'mossforge[dask]'") from None
        if cfg.run.dask_address:
            return DaskTaskRunner(address=cfg.run.dask_address)
        cluster = {"n_workers": cfg.run.dask_workers, "threads_per_worker": cfg.run.dask_threads_per_worker,
                   "processes": True, "dashboard_address": None}
        if gpus := gpu_count(cfg):  # workers advertise the GPUs that render tasks ask for
            cluster["resources"] = {"GPU": gpus}
        return DaskTaskRunner(cluster_kwargs=cluster)
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError:
            raise RunnerUnavailable("run.task_runner = 'ray' needs prefect-ray (and Ray, which is "
                                    "large): pip install 'mossforge[ray]'") from None
        return RayTaskRunner(address=cfg.run.ray_address) if cfg.run.ray_address else RayTaskRunner()
    raise ValueError(f"run.task_runner: unknown runner {kind!r}")  # the config already forbids it


def runner_matches(cfg: Config, runner) -> bool:
    """Whether `runner` (the running flow's) is the one the config asks for. A served or deployed
    run is started from the flow's entrypoint with the decorator's default runner; when its config
    asks for another, the flow runs the build as a subflow on the right one."""
    kind = cfg.run.task_runner
    if kind == "threads":
        return isinstance(runner, ThreadPoolTaskRunner) and getattr(runner, "_max_workers", None) == cfg.run.max_workers
    return type(runner).__name__ == {"dask": "DaskTaskRunner", "ray": "RayTaskRunner"}[kind]


@contextlib.contextmanager
def gpu_request(cfg: Config) -> Iterator[None]:
    """Around task submissions: ask the runner for one GPU per task when the renderer needs one
    (Dask: a worker resource; Ray: num_gpus). Across processes the GPU's global concurrency limit
    (`render.diffusion.gpu_limit`, flows/gpu.py) bounds it too."""
    if not needs_gpu(cfg) or cfg.run.task_runner == "threads":
        yield
    elif cfg.run.task_runner == "dask":
        import dask

        with dask.annotate(resources={"GPU": 1}):
            yield
    else:
        from prefect_ray.context import remote_options

        with remote_options(num_gpus=1):
            yield
