"""The offline renderer spread over the machine's cores: one pool of worker processes per process.

Each candidate's images depend on the candidate alone (`generators/render_offline.py` is
deterministic), and the image store is content-addressed, so rendering in any number of processes
gives the same images, the same files and the same references, in the candidates' order. With one
worker, candidates are rendered in the calling process (no pool).

Workers come from a `forkserver` (on Linux; `spawn` elsewhere) that has already imported the
renderer: forking a thread-heavy process (a Prefect flow) is unsafe, and a fresh interpreter per
worker would pay the imports again. Workers start all at once, without the caller's `__main__`. The pool lives as long as the process, so its start-up is paid
once per run, not per batch.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, ProcessPoolExecutor

from mossforge import run_state
from mossforge.errors import RunInterrupted
from mossforge.schema import Candidate, ImageRef

_pools: dict[int, ProcessPoolExecutor] = {}
_prestarted = 0  # the worker count `prestart` was called with (0: not called)
_cancelled = False  # cancel() was called (Ctrl-C, SIGTERM): no more cards in this process
_shut_down: list[ProcessPoolExecutor] = []  # pools cancel() shut down
_lock = threading.Lock()
# What the forkserver imports before it forks any worker: its signal settings (first), the
# renderer, and pyplot and the report for the report's plots (`running_pool`), so that no worker
# pays those imports.
PRELOAD = ["mossforge.generators.forkserver_signals", "mossforge.generators.render_offline", "matplotlib.pyplot",
           "mossforge.release.report"]
STOPPED = "rendering cancelled (Ctrl-C or SIGTERM)"


def worker_count(configured: int) -> int:
    """`run.cpu_workers`, with 0 meaning one per core this process may use."""
    if configured:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _pool(workers: int) -> ProcessPoolExecutor:
    with _lock:
        if workers not in _pools:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            if "forkserver" in methods:
                context.set_forkserver_preload(PRELOAD)
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                                       initargs=(os.getpid(),))
            with _without_main():  # all workers now, while the caller's script is hidden from them
                pool._launch_processes()
                # A first task starts the pool's manager thread, which is what tells the workers to
                # leave on shutdown: a pool shut down before its first card (a cancel as the render
                # began) kept them, and the process waited for them at exit for ever.
                pool.submit(int)
            _pools[workers] = pool
        return _pools[workers]


def prestart(configured: int) -> None:
    """Start the forkserver now, so that it imports the renderer while earlier stages run: the
    render stage's pool then forks its workers from it at once. Returns at once (the server's
    imports happen in its own process); does nothing with one worker or without forkserver."""
    workers = worker_count(configured)
    if workers <= 1 or "forkserver" not in multiprocessing.get_all_start_methods() \
            or multiprocessing.current_process().daemon:
        return
    from multiprocessing import forkserver

    global _prestarted
    with _lock:
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        with _without_main():  # (the server would import the caller's main script too)
            forkserver.ensure_running()
        _prestarted = workers


def cancel() -> None:
    """Ctrl-C or SIGTERM (`run_state.stop_work` calls it): drop the cards not started yet (those being drawn finish, a few per worker), so the
    render task waiting on them ends now with RunInterrupted; no later render in this process
    starts."""
    global _cancelled
    with _lock:
        _cancelled = True
        pools = list(_pools.values())
        _pools.clear()
        # Kept referenced: the pool's manager thread holds it by a weak reference, and cancels
        # nothing (it runs every queued card) once the pool object has been collected.
        _shut_down.extend(pools)
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


def _resume() -> None:
    """A new run in this process (`run_state.resume_work`): renders may start again, in new pools."""
    global _cancelled
    with _lock:
        _cancelled = False


run_state.on_stop(cancel, resume=_resume)


def _shut_down_at_exit() -> None:
    """Stop the pools' workers before the process exits. A process that multiprocessing started
    (a served flow run: Prefect's runner spawns it) joins its children before the executor's own
    exit cleanup runs, so idle workers would keep it, and `mossforge serve` waiting for it, alive."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


multiprocessing.util.Finalize(None, _shut_down_at_exit, exitpriority=100)  # (before that join)


def running_pool() -> ProcessPoolExecutor | None:
    """This process's worker pool, if this run has one (a render used it, or `prestart` started
    its forkserver), else None. For the run's other CPU work whose imports are preloaded there (the
    report's plots): run in the calling process, it would pay those imports itself."""
    with _lock:
        if _pools:
            return next(iter(_pools.values()))
        workers = _prestarted
    return _pool(workers) if workers > 1 and not multiprocessing.current_process().daemon else None


def _worker_init(caller: int) -> None:
    """In each worker: Ctrl-C reaches the whole process group, and so does `timeout`'s SIGTERM; the
    caller handles them (it stops the run and the pool), so a worker ignores both (it would print a
    traceback of its own, or die and fail its render task with BrokenProcessPool). And a worker
    leaves when its caller is gone: killed with SIGKILL (or SIGTERM where it does not handle it),
    the caller never closes the task queue, whose pipe the worker holds both ends of, so nothing
    else would end it (or the forkserver, which waits for its last worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(caller, 0)
            except (ProcessLookupError, PermissionError):  # (PermissionError: another user's process took its pid)
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="mossforge-caller-watch").start()


@contextlib.contextmanager
def _without_main():
    """Worker processes would otherwise import (and so run again) the caller's main script, as
    `spawn` and `forkserver` do; they need nothing from it. (A script without an
    `if __name__ == "__main__"` guard that calls the flow would run twice, or fail to start.)"""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@functools.lru_cache(maxsize=4)
def _renderer(size: int):
    from mossforge.generators.render_offline import OfflineRenderer

    return OfflineRenderer(size=size)


def _render(candidate: Candidate, size: int, image_root: str) -> tuple[ImageRef, ImageRef | None]:
    from mossforge.images import ImageStore

    return _renderer(size).render(candidate, ImageStore(image_root))


def render_offline(records: Sequence[Candidate], size: int, image_root: str, workers: int,
                   done: Callable[[int], None] | None = None) -> list[tuple[ImageRef, ImageRef | None]]:
    """(query image, contrast image or None) for each record, in order; `done(1)` after each."""
    results = []
    for refs in _iter(records, size, image_root, worker_count(workers)):
        results.append(refs)
        if done:
            done(1)
    return results


def _iter(records, size, image_root, workers) -> Iterator[tuple[ImageRef, ImageRef | None]]:
    if _cancelled:
        raise RunInterrupted(STOPPED)
    # In a daemonic worker process (a Dask worker) no children may be started: the runner already
    # spreads batches over processes there.
    if workers <= 1 or len(records) <= 1 or multiprocessing.current_process().daemon:
        for record in records:
            yield _render(record, size, image_root)
        return
    # Small chunks: a card takes tens of milliseconds (a negated one, with its contrast, twice as
    # long), so a big last chunk would leave the other workers idle at the end.
    chunk = max(1, min(4, len(records) // (8 * workers)))
    try:
        yield from _pool(workers).map(_render, records, [size] * len(records), [image_root] * len(records),
                                      chunksize=chunk)
    except (CancelledError, RuntimeError):  # (RuntimeError: `cancel` shut the pool down as this render took it)
        if _cancelled:
            raise RunInterrupted(STOPPED) from None
        raise
