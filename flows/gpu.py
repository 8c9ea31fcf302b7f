"""GPU discipline across workers: a Prefect global concurrency limit per GPU.

Inside one worker process the diffusion provider already runs one batch at a time per device (a
lock). Across worker processes (several `mossforge run`s, or a deployment's workers) only the
orchestrator can say who holds the GPU: every diffusion render task takes a slot of the limit
`render.diffusion.gpu_limit` (`gpu_slots` slots, 1 by default) for as long as it renders.

A global concurrency limit that does not exist is silently ignored unless `strict=True`, so the
flow creates (or updates) it before any render task asks for it, and asks strictly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency


def ensure_gpu_limit(name: str, slots: int = 1) -> None:
    """Create the global concurrency limit `name` with `slots` slots, or set it to that."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, slots)


@contextlib.contextmanager
def gpu_slot(name: str) -> Iterator[None]:
    """Hold one slot of `name` (waiting for it); fails if the limit does not exist."""
    with concurrency(name, occupy=1, strict=True):
        yield
