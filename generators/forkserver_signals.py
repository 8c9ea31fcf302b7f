"""Imported by the render pool's forkserver before anything else (`render_pool.PRELOAD`), and only
there: the forkserver ignores SIGTERM, as it already ignores SIGINT.

`timeout` and a shell's `kill -- -PGID` send SIGTERM to the whole process group. A forkserver
that dies of it closes the pipes through which the caller watches its workers, so every render
in progress fails with BrokenProcessPool instead of the run stopping cleanly (the caller handles
the signal and stops the pool). It still exits when its caller is gone (its `alive` pipe closes),
and the workers it forks inherit the setting (`render_pool._worker_init` sets it too)."""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
