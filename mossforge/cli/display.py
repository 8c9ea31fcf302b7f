"""What `mossforge run` shows while it works: a "starting Prefect" phase, then one bar per stage.

Bars follow the flow's own events (`mossforge.progress`): a stage's bar starts when the flow starts
the stage and stops when it ends, so its elapsed time is the stage's seconds in the funnel table
and the manifest; its total is what the previous stage kept (the render bar is right from the
start); a stage that Prefect took from its cache says `cached`.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mossforge.config import Config


def shown_stages(cfg: Config) -> list[str]:
    names = ["generate"]
    if cfg.dedup.enabled:
        names.append("dedup")
    names.append("render")
    if cfg.targets:
        names.append("target_check")
        if cfg.refine.enabled:
            names.append("refine")  # its rounds' batches (variants rendered and asked) move this bar
    if cfg.judges:
        names.append("consensus_label")
    return names


class RunDisplay:
    def __init__(self, cfg: Config, console: Console, server):
        self.console = console
        self.server = server  # mossforge.flows.server.Selection
        self.flow_run_id: str | None = None
        self.published: dict | None = None  # {version, path} once the flow has published
        self.bars = Progress(SpinnerColumn(), TextColumn("{task.description:<24}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False)
        where = {"managed": f"local server {server.ui_url}", "configured": f"server {server.api_url}",
                 "temporary": "temporary server"}[server.kind]
        self.prefect = self.bars.add_task(f"starting Prefect ({where})", total=None)
        planned = cfg.plan.per_type * len(cfg.plan.types)
        self.ids = {stage: self.bars.add_task(stage, total=planned if stage == "generate" else None, start=False)
                    for stage in shown_stages(cfg)}

    def __enter__(self):
        self.bars.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bars.__exit__(*exc)

    def advance(self, stage: str, amount: int) -> None:
        if stage in self.ids:
            self.bars.advance(self.ids[stage], amount)

    def event(self, kind: str, **info) -> None:
        if kind == "published":  # {version, path}: what a signal after this point leaves behind
            self.published = info
            return
        if kind == "flow_run":
            self.flow_run_id = info["id"]
            self.bars.update(self.prefect, total=1, completed=1, description="Prefect ready")
            self.bars.stop_task(self.prefect)
            self.console.print(self.link_line(), highlight=False)
            return
        task = self.ids.get(info.get("stage"))
        if task is None:
            return
        if kind == "stage_start":
            if info.get("total") is not None:
                self.bars.update(task, total=info["total"])
            self.bars.start_task(task)
        elif kind == "stage_done":
            status = info["status"]
            label = info["stage"] if status == "ran" else f"{info['stage']} ({status})"
            self.bars.update(task, total=max(info["entered"], 1), completed=info["entered"], description=label)
            self.bars.stop_task(task)

    def link_line(self) -> str:
        url = self.server.run_url(self.flow_run_id) if self.flow_run_id else None
        if url:
            return f"Prefect UI, this run: {url}"
        return ("Prefect: a temporary server, gone when the run ends (no UI to open; drop "
                "--temporary-server, or run `mossforge server start`, to keep one)")
