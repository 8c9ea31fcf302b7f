"""Prefect global concurrency limits for each endpoint, created by mossforge.

A build creates (or updates) them before any task runs, so the numbers in the config are the
numbers the Prefect server enforces, and they show under Concurrency in the Prefect UI:

    mossforge-endpoint-<name>   limit = the endpoint's max_concurrency (slots = HTTP calls in flight)

(The GPU's limit, `render.diffusion.gpu_limit` with `gpu_slots` slots, is flows/gpu.py's; the
flow creates it the same way before any diffusion render task.)

Every slot is taken with `strict=True`: Prefect's default for a limit that does not exist is to
do nothing, silently, which would let an unbounded run pass for a bounded one. Here a missing
limit is an error that names it.

Inside one process the model client's own semaphore already bounds each endpoint; the global
limits are what bound a run whose tasks are spread over processes or machines (Dask, Ray), so the
model client takes an endpoint slot per call only there (see `install_call_slots`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterator

from mossforge.config import Config
from mossforge.errors import MossforgeError

PREFIX = "mossforge"


class MissingLimitError(MossforgeError, RuntimeError):
    """A global concurrency limit mossforge relies on does not exist on the Prefect server."""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "x"


def endpoint_limit(endpoint: str) -> str:
    return f"{PREFIX}-endpoint-{_slug(endpoint)}"


def wanted_limits(cfg: Config) -> dict[str, int]:
    """Name -> slots for every endpoint limit this config needs."""
    return {endpoint_limit(name): endpoint.max_concurrency for name, endpoint in cfg.endpoints.items()}


def ensure_limits(cfg: Config) -> dict[str, int]:
    """Create or update the run's limits on the Prefect server (the API the flow talks to)."""
    from prefect.client.orchestration import get_client

    wanted = wanted_limits(cfg)
    if wanted:
        with get_client(sync_client=True) as client:
            for name, slots in wanted.items():
                client.upsert_global_concurrency_limit_by_name(name, slots)
    return wanted


def _missing(error: Exception, names: list[str]) -> MissingLimitError:
    return MissingLimitError(
        f"Prefect global concurrency limit(s) {', '.join(names)} do not exist on the server "
        f"({error}); mossforge creates them at the start of build_dataset, so something removed "
        "them: re-run the build, or create them with `prefect gcl create NAME --limit N`")


@contextlib.contextmanager
def hold(names: list[str], occupy: int = 1) -> Iterator[None]:
    """Hold a slot of each named limit (sync code)."""
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    try:
        with concurrency(names, occupy=occupy, strict=True):
            yield
    except ConcurrencySlotAcquisitionError as error:
        raise _missing(error, names) from None


@contextlib.asynccontextmanager
async def ahold(names: list[str], occupy: int = 1) -> AsyncIterator[None]:
    """Hold a slot of each named limit (async code: the model client's calls)."""
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency

    try:
        async with concurrency(names, occupy=occupy, strict=True):
            yield
    except ConcurrencySlotAcquisitionError as error:
        raise _missing(error, names) from None


def endpoint_slot_factory():
    """A `call_slot` for `ModelClient`: each HTTP attempt holds a slot of its endpoint's limit.

    The client runs calls on its own event loop in its own thread, where Prefect's settings
    context (the API URL: a test harness or a Dask worker sets it as a context variable, not in
    the environment) is not visible; the factory captures it here and re-enters it per call.
    """
    from prefect.context import SettingsContext

    settings = SettingsContext.get()

    @contextlib.asynccontextmanager
    async def slot(endpoint: str) -> AsyncIterator[None]:
        with settings.model_copy() if settings is not None else contextlib.nullcontext():
            async with ahold([endpoint_limit(endpoint)]):
                yield

    return slot


_FLOW_PID = "MOSSFORGE_FLOW_PID"


def ensure_run_limits(cfg: Config) -> dict[str, int]:
    """At the start of a build: create the run's limits, and mark this process as the flow's
    (tasks in other processes, Dask or Ray workers, then hold global endpoint slots)."""
    os.environ[_FLOW_PID] = str(os.getpid())
    return ensure_limits(cfg)


def in_flow_process() -> bool:
    return os.environ.get(_FLOW_PID) == str(os.getpid())


def install_call_slots() -> None:
    """In a task: when it runs outside the flow's process (a Dask or Ray worker), this process's
    model client is one of several, so each of its calls holds its endpoint's global slot."""
    from mossforge import run_state

    if not in_flow_process() and run_state.call_slot() is None:
        run_state.set_call_slot(endpoint_slot_factory())
