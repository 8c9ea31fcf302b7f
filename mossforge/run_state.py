"""The run's state in one process: one model client per run (and scope), shared by every batch.

Stages get their client from `model_client(config)`; its per-endpoint concurrency bound then holds
across all concurrent batches of the process. Orchestration sets two things here, through
functions rather than by patching globals:

- `set_call_slot(factory)`: when tasks run in several processes (Dask, Ray), each model call holds
  a slot of its endpoint's global limit (flows/limits.py installs Prefect's);
- `client_scope(name)`: a task in a worker process gets a client of its own, so its calls are
  counted exactly and sent back to the flow (flows/monitor.py); in the flow's process the scope
  is "".

Plain Python: no Prefect here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from mossforge.config import Config

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
_call_slot: Callable[[str], Any] | None = None
_scope: ContextVar[str] = ContextVar("mossforge_client_scope", default="")


def set_call_slot(factory: Callable[[str], Any] | None) -> None:
    """Every client created after this holds `factory(endpoint)` around each HTTP attempt."""
    global _call_slot
    _call_slot = factory


def call_slot() -> Callable[[str], Any] | None:
    return _call_slot


@contextlib.contextmanager
def client_scope(name: str) -> Iterator[None]:
    """Within: `model_client` returns the client of scope `name` (close it with `close_scoped_client`)."""
    token = _scope.set(name)
    try:
        yield
    finally:
        _scope.reset(token)


def _client_key(config: Config) -> str:
    return f"{config.config_hash()}:{config.cache_path()}:{config.cache.mode}:{_scope.get()}"


def model_client(config: Config):
    """The run's client: its per-endpoint concurrency bound holds across all concurrent batches."""
    from mossforge.client import ModelClient

    key = _client_key(config)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = ModelClient(list(config.endpoints.values()), cache_dir=config.cache_path(),
                                        cache_mode=config.cache.mode, call_slot=_call_slot)
        return _clients[key]


def cancel_model_calls() -> None:
    """Ctrl-C: cancel the calls in flight or waiting on every run client of this process."""
    with _clients_lock:
        clients = list(_clients.values())
    for client in clients:
        client.cancel_all()


_stopping = threading.Event()  # stop_work was called: the run in this process is stopping
_on_stop: list[Callable[[], None]] = []
_on_resume: list[Callable[[], None]] = []


def on_stop(callback: Callable[[], None], resume: Callable[[], None] | None = None) -> None:
    """`callback()` is called by `stop_work`, `resume()` by `resume_work` (the render pool registers
    its `cancel` and what undoes it: this package imports no generator)."""
    _on_stop.append(callback)
    if resume is not None:
        _on_resume.append(resume)


def resume_work() -> None:
    """A new run in this process, after one that `stop_work` stopped: work may start again. (In a
    notebook or any long-lived Python process, the build after a Ctrl-C failed at once: "rendering
    cancelled", and every model call of a reused client was cancelled.) Clients `stop_work`
    cancelled are closed and dropped; the run makes new ones. A no-op when nothing was stopped."""
    if not _stopping.is_set():
        return
    _stopping.clear()
    with _clients_lock:
        cancelled = [key for key, client in _clients.items() if client.cancelled]
        clients = [_clients.pop(key) for key in cancelled]
    for client in clients:
        with contextlib.suppress(Exception):  # (a cancelled client's loop may be gone already)
            client.close()
    for callback in list(_on_resume):
        callback()


def stop_work() -> None:
    """Ctrl-C or SIGTERM: cancel this process's model calls and what `on_stop` registered (the
    render pool's queued cards), and have long loops stop at their next step
    (`check_not_stopping`). The flow waits for its task threads before it stops, and they would go
    on with their batches."""
    _stopping.set()
    cancel_model_calls()
    for callback in list(_on_stop):
        callback()


def check_not_stopping(what: str) -> None:
    """Between the steps of long work that no call can cancel (a diffusion batch): RunInterrupted
    once `stop_work` was called in this process."""
    if _stopping.is_set():
        from mossforge.errors import RunInterrupted

        raise RunInterrupted(f"{what} stopped: the run is stopping")


def close_model_client(config: Config, extra: list[dict] = ()) -> dict | None:
    """Close the run's client and return its accounting, with `extra` tally rows of the run's
    clients in other processes (None if no model was called)."""
    from mossforge.client import accounting_of

    with _clients_lock:
        client = _clients.pop(_client_key(config), None)
    if client is None and not extra:
        return None
    rows = [*extra]
    if client is not None:
        rows += client.tally_rows()
        client.close()
    return accounting_of(config.endpoints, config.cache.mode, rows)


def close_scoped_client(config: Config) -> list[dict]:
    """Close the current scope's client; its raw counts (empty if no model was called)."""
    with _clients_lock:
        client = _clients.pop(_client_key(config), None)
    if client is None:
        return []
    rows = client.tally_rows()
    client.close()
    return rows
