"""A process-wide progress sink that stages report to, so the CLI can draw one progress bar.

Stages call `advance(stage, n)`; nothing is drawn unless a sink was installed (the CLI installs a
rich progress display). Tasks running in threads of the same process report here; tasks on other
processes (Dask, Ray) simply report nothing.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

_sink: Optional[Callable[[str, int], None]] = None
_lock = threading.Lock()


def install(sink: Optional[Callable[[str, int], None]]) -> None:
    global _sink
    _sink = sink


def advance(stage: str, amount: int) -> None:
    sink = _sink
    if sink is not None and amount:
        with _lock:
            sink(stage, amount)
