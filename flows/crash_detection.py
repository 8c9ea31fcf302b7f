"""Runs whose process died without a word (`kill -9`, the OOM killer, `docker stop` past its grace,
a lost machine) are marked Crashed on the managed server, instead of showing "Running" for ever.

This is Prefect's own recipe ("How to detect and respond to zombie flows", Prefect 3 docs): a
flow run sends a heartbeat event every `HEARTBEAT_S` seconds, and an automation marks a
`build_dataset` run Crashed when, after a heartbeat, neither another heartbeat nor a final state
arrives within `SILENT_AFTER_S`. mossforge installs the automation when it starts its managed
server. The automation lives in Prefect's database, which other servers on the same PREFECT_HOME
(a temporary server, `prefect server start`) read too, and a run sending Prefect's default heartbeat
(every 180 s) would look silent to it: so it watches only runs tagged `TAG`, which mossforge's own
runs carry (`watched`, used by `server.Selection.active`; `serve` tags its deployment).

The build flow sends the heartbeat itself (`heartbeats`, around its body): the same event as
Prefect's own heartbeat (PREFECT_FLOWS_HEARTBEAT_FREQUENCY), whose thread sleeps in one-second
steps that the end of every run waited out (half a second on average; issue 18).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from datetime import timedelta

HEARTBEAT_S = 30  # Prefect's minimum; its default (180 s) would leave a dead run "Running" for 9 minutes
SILENT_AFTER_S = 120  # four missed heartbeats: a loaded machine can delay one, not four
NAME = "mossforge: mark silent build runs Crashed"
FLOW = "build_dataset"
TAG = f"mossforge-heartbeat-{HEARTBEAT_S}s"  # the runs the automation watches: they send HEARTBEAT_S


@contextlib.contextmanager
def watched() -> Iterator[None]:
    """Flow runs started inside carry TAG, and Prefect's own heartbeat (every 180 s by default) is
    off: the build flow sends the same event itself, every HEARTBEAT_S (`heartbeats`)."""
    from prefect import tags
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), tags(TAG):
        yield


@contextlib.contextmanager
def heartbeats(every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """While inside, the current flow run sends `prefect.flow-run.heartbeat` at once and then every
    `every_s` seconds, from a thread of its own, with the resource and related resources (flow,
    deployment, tags) of Prefect's own heartbeat. The thread stops when the block ends, without
    making it wait. Outside a flow run: nothing."""
    import prefect
    from prefect.context import FlowRunContext
    from prefect.events import emit_event
    from prefect.events.related import tags_as_related_resources
    from prefect.events.schemas.events import RelatedResource

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        yield
        return
    run = context.flow_run
    resource = {"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.name": run.name or "",
                "prefect.version": prefect.__version__}
    related = [RelatedResource({"prefect.resource.id": f"prefect.flow.{run.flow_id}",
                                "prefect.resource.role": "flow", "prefect.resource.name": context.flow.name})]
    if run.deployment_id:
        related.append(RelatedResource({"prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
                                        "prefect.resource.role": "deployment"}))
    related += tags_as_related_resources(set(run.tags or []))
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # (as Prefect's own: one missed beat is not an error)
                emit_event("prefect.flow-run.heartbeat", resource=resource, related=related)
            if stop.wait(every_s):
                return

    # The thread runs in a copy of this context: Prefect's settings (the server's URL) live there.
    threading.Thread(target=contextvars.copy_context().run, args=(beat,), name="mossforge-heartbeat",
                     daemon=True).start()
    try:
        yield
    finally:
        stop.set()


def automation(within_s: float = SILENT_AFTER_S):
    """The automation: a proactive trigger on each build run's heartbeats."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=NAME,
        description=(f"A {FLOW} run that sends no heartbeat for {within_s:.0f} s (its process was killed, or its "
                     "machine stopped) is marked Crashed. Installed by mossforge on the server it manages."),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=[ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": FLOW}),
                           ResourceSpecification({"prefect.resource.id": f"prefect.tag.{TAG}"})],  # (all of them)
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=(f"mossforge: no heartbeat from this run for {within_s:.0f} s: its process was killed or its "
                     "machine stopped. Run the same config again to resume from the finished stages."),
        )],
    )


def install(api_url: str, within_s: float = SILENT_AFTER_S) -> None:
    """Create the automation on the server at `api_url`, replacing one of the same name (an older
    mossforge's, or one with another window), so that exactly one is there."""
    with _client(api_url) as client:
        wanted = automation(within_s)
        existing = client.read_automations_by_name(NAME)
        if existing:  # turned off in the UI: it stays off
            wanted.enabled = existing[0].enabled
        if len(existing) == 1 and _same(existing[0], wanted):
            return
        for old in existing:
            client.delete_automation(old.id)
        client.create_automation(wanted)


def installed(api_url: str):
    """The automation on the server at `api_url`, or None."""
    with _client(api_url) as client:
        found = client.read_automations_by_name(NAME)
    return found[0] if found else None


@contextlib.contextmanager
def _client(api_url: str):
    """Prefect's sync client for the server at `api_url`."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def _same(existing, wanted) -> bool:
    fields = {"name", "description", "enabled", "trigger", "actions"}
    return existing.model_dump(include=fields, mode="json") == wanted.model_dump(include=fields, mode="json")
