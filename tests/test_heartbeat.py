"""The build flow's own heartbeat (flows/crash_detection.py `heartbeats`): the event crash detection
watches, sent from mossforge's thread instead of Prefect's, which ended every run by waiting out
its one-second sleep. The end-to-end check (a killed run marked Crashed, a live one left alone) is
in tests/test_managed_server.py."""

from __future__ import annotations

import threading
import time

import pytest

from mossforge.flows import crash_detection


@pytest.fixture
def sent(monkeypatch):
    """Every heartbeat event emitted, as (event, resource, related)."""
    import prefect.events

    events: list[tuple] = []
    monkeypatch.setattr(prefect.events, "emit_event",
                        lambda event, resource, related: events.append((event, resource, related)))
    return events


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mossforge-heartbeat"]


def test_a_flow_run_sends_heartbeats_from_its_own_thread_and_prefects_are_off(prefect_harness, sent):
    from prefect import flow
    from prefect.context import FlowRunContext
    from prefect.settings import get_current_settings

    seen = {}

    @flow(name="heartbeat_probe")
    def probe() -> None:
        seen["run"] = FlowRunContext.get().flow_run
        seen["prefect_heartbeat"] = get_current_settings().flows.heartbeat_frequency
        with crash_detection.heartbeats(every_s=0.2):
            seen["threads"] = len(_heartbeat_threads())
            deadline = time.monotonic() + 10
            while len(sent) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)

    with crash_detection.watched():
        probe()

    run = seen["run"]
    assert seen["prefect_heartbeat"] is None  # Prefect's own (180 s by default) is off inside watched()
    assert seen["threads"] == 1
    assert len(sent) >= 3, "fewer than three heartbeats in 10 s at one per 0.2 s"
    for event, resource, related in sent:
        assert event == "prefect.flow-run.heartbeat"
        assert resource["prefect.resource.id"] == f"prefect.flow-run.{run.id}"
        related = [dict(r) for r in related]
        # what the automation matches: the flow's name and the watched tag
        assert {"prefect.resource.id": f"prefect.flow.{run.flow_id}", "prefect.resource.role": "flow",
                "prefect.resource.name": "heartbeat_probe"} in related
        assert {"prefect.resource.id": f"prefect.tag.{crash_detection.TAG}", "prefect.resource.role": "tag"} in related
    # The block's end stops the thread (it waits on an event, not in one-second sleeps)
    for thread in _heartbeat_threads():
        thread.join(timeout=5)
    assert not _heartbeat_threads()
    count = len(sent)
    time.sleep(0.5)
    assert len(sent) == count, "heartbeats went on after the flow run ended"


def test_outside_a_flow_run_nothing_is_sent(sent):
    with crash_detection.heartbeats(every_s=0.1):
        time.sleep(0.3)
    assert sent == [] and not _heartbeat_threads()
