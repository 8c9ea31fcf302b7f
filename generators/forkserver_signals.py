"""Imported by the render pool's forkserver before anything else (`render_pool.PRELOAD`), and only
there: the forkserver ignores SIGTERM, as it already ignores SIGINT, and leaves without a last
garbage collection.

`timeout` and a shell's `kill -- -PGID` send SIGTERM to the whole process group. A forkserver
that dies of it closes the pipes through which the caller watches its workers, so every render
in progress fails with BrokenProcessPool instead of the run stopping cleanly (the caller handles
the signal and stops the pool). It still exits when its caller is gone (its `alive` pipe closes),
and the workers it forks inherit the setting (`render_pool._worker_init` sets it too)."""

import atexit
import gc
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)

# The forkserver leaves (SystemExit) when its caller has gone, and the caller's output pipes, which
# it holds too, close only then: without this, Python collected the whole preloaded heap (pyplot,
# the renderer) first, and a caller reading `mossforge run`'s output waited 0.3-0.4 s more for it.
# Registered first, so it runs after every other atexit handler.
atexit.register(gc.freeze)
