"""A process-wide progress sink that stages report to, so the CLI can draw one progress bar.

Stages call `advance(stage, n)`; nothing is drawn unless a sink was installed (the CLI installs a
rich progress display). Tasks running in threads of the same process report here; tasks on other
processes (Dask, Ray) simply report nothing.

The flow also reports events (`event(kind, **info)`), each from its own clock, so the bars, the
CLI's funnel table and the manifest show the same seconds:
- `flow_run` (id, name): the flow has started (Prefect is up);
- `stage_start` (stage, total: items the stage will see, when known);
- `stage_done` (stage, status: ran, cached or not_run, seconds, entered).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_sink: Callable[[str, int], None] | None = None
_events: Callable[..., None] | None = None
_lock = threading.Lock()


def install(sink: Callable[[str, int], None] | None,
            events: Callable[..., None] | None = None) -> None:
    global _sink, _events
    _sink, _events = sink, events


def advance(stage: str, amount: int) -> None:
    sink = _sink
    if sink is not None and amount:
        with _lock:
            sink(stage, amount)


def event(kind: str, **info: Any) -> None:
    listener = _events
    if listener is not None:
        with _lock:
            listener(kind, **info)
