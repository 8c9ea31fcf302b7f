"""`mossforge run` and `mossforge serve`: build a dataset version now, or on a schedule."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.table import Table

from mossforge.cli.base import console, local_servers, old_out_option, outputs_option, outputs_root
from mossforge.config import CacheSection, load_config
from mossforge.errors import InputError, MossforgeError, RunInterrupted, hide_own_errors_in_logs

CacheMode = CacheSection.model_fields["mode"].annotation  # use | refresh | off: the config's own choices

CONFIG = typer.Option(None, "--config", "-c", help="TOML config (default: the offline configuration).")


def run(
    config: Path | None = CONFIG,
    per_type: int | None = typer.Option(None, "--per-type", "-n", help="Items per stimulus type the version holds (after dedup; the plan draws a margin)."),
    outputs: Path | None = outputs_option("the config's run.out_dir, outputs/"),
    old_out: Path | None = old_out_option(),
    fresh: bool = typer.Option(False, "--fresh", help="Recompute every stage instead of reusing cached results."),
    cache: CacheMode | None = typer.Option(None, "--cache", help="Model-call cache: use, refresh (re-ask and "
                                              "overwrite) or off (default: the config's cache.mode)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's logs."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once (exit 5) when another run is "
                                 "building the same dataset folder, instead of waiting for it."),
    skip_preflight: bool = typer.Option(False, "--skip-preflight", help="Do not probe the endpoints "
                                        "before the run (folders are still checked)."),
    temporary_server: bool = typer.Option(False, "--temporary-server", help="Start a temporary Prefect "
                                          "server for this run only, instead of the local server mossforge "
                                          "keeps (also MOSSFORGE_SERVER=temporary; PREFECT_API_URL wins over both)."),
) -> None:
    """Run the build_dataset flow and print the path of the version it published.

    Before any work: the folders it writes, and every endpoint the config uses (exit codes:
    README, "Exit codes"). Without PREFECT_API_URL, runs go to a local Prefect server that
    mossforge starts on first use and keeps (`mossforge server status|stop`); each run prints the
    link to its page in the UI."""
    root = outputs_root(outputs, old_out, default=None)
    overrides = {}
    if no_wait:
        overrides["run.wait_for_lock"] = False
    if per_type is not None:
        overrides["plan.per_type"] = per_type
    if root is not None:
        overrides["run.out_dir"] = str(root)
    if cache is not None:
        overrides["cache.mode"] = cache
    cfg = load_config(config, overrides)  # validated before any work starts
    from mossforge import rerun

    # Same config, code and inputs as a run that published an intact version: nothing to re-run.
    # (A --fresh or refresh run still leaves its receipt: the next plain run answers with its version.)
    key = rerun.run_key(cfg)
    if rerun.why_not(cfg, fresh) is None and (receipt := rerun.published(cfg, key)):
        number = f"{receipt['version_number']} " if receipt.get("version_number") else ""
        console.print(f"[bold green]already published[/]: {receipt['dataset']} version {number}({receipt['version']}), "
                      f"{receipt['counts']['benign']} items, by an earlier run of the same config (hash "
                      f"{cfg.config_hash()}), code and inputs; its files match its manifest, nothing was re-run "
                      "(--fresh rebuilds)", highlight=False)
        print(receipt["path"])  # stdout carries only the path, for scripts
        return
    from mossforge import progress
    from mossforge.cli.display import RunDisplay
    from mossforge.preflight import check_run

    servers = local_servers(cfg)  # the config's [local_models] (before the preflight probes them)
    if cfg.render.renderer == "offline" and cfg.run.task_runner == "threads":  # (renders in this process)
        from mossforge.generators.render_pool import prestart

        prestart(cfg.run.cpu_workers)  # its imports (renderer, pyplot) overlap Prefect's import here
    summary = display = None
    with _stop_work_on_signals() as received:  # (restored after the local servers stop)
        try:
            checked = check_run(cfg, endpoints=not skip_preflight)  # before Prefect starts: seconds, not minutes
            if not cfg.run.wait_for_lock:  # --no-wait: exit 5 now, not from a Failed flow run in the UI
                from mossforge.release.publish import dataset_lock

                with dataset_lock(Path(cfg.run.out_dir), cfg.dataset.name, wait=False):
                    pass
            if checked:
                console.print(f"preflight: {', '.join(checked)} answered", highlight=False)
            if not verbose:
                os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # before Prefect is imported
            console.print(f"building [bold]{cfg.dataset.name}[/]: {cfg.plan.per_type * len(cfg.plan.types)} "
                          f"candidates planned (config hash {cfg.config_hash()})", highlight=False)
            with _collected_after():  # (Prefect's import, the server's check, the flow module's import)
                from mossforge.flows import server

                with console.status("checking the local Prefect server…"):  # a ServerError says why (exit 1)
                    chosen = server.select(temporary_server, on_start=lambda info: console.print(
                        f"starting the local Prefect server on {info.ui_url} (none was running; it keeps "
                        f"running: `mossforge server stop` stops it; log {info.log})", highlight=False))
                from mossforge.flows.build import run_build

                import_flow_engine()
            display = RunDisplay(cfg, console, chosen)
            progress.install(display.advance, display.event)
            hide_own_errors_in_logs()  # the handler prints them once; Prefect would add a traceback
            servers.watch()
            with display, chosen.active():
                summary = run_build(cfg, fresh=fresh)  # a HubError: the push failed, the local version is published
        except BaseException as stopped:
            # After the signal, whatever surfaces comes from it (a KeyboardInterrupt raised inside
            # pydantic's serializer arrives as a PydanticSerializationError, for one)
            if not received and not isinstance(stopped, (KeyboardInterrupt, _termination_signal())):
                raise
            if servers.failures():
                raise MossforgeError("run stopped: " + "; ".join(servers.failures())) from None
            number = received[-1] if received else getattr(stopped, "signal", signal.SIGINT)
            how = "interrupted" if number == signal.SIGINT else f"stopped by {signal.Signals(number).name}"
            published = summary or (display and display.published)
            if published:  # after publish: pushing to the Hub, the flow or the display closing
                raise RunInterrupted(f"{how} after version {published['version']} was published (complete, "
                                     f"at {published['path']}); what came after it did not finish (the "
                                     "push to the Hub, if configured: `mossforge publish` does it)",
                                     number) from None
            raise RunInterrupted(f"{how} before the run finished. A version is only ever written whole, and the "
                                 "stages that finished are cached: the same command resumes from there.",
                                 number) from None
        finally:
            progress.install(None)
            servers.stop()
    if rerun.clean(summary) and rerun.run_key(cfg) == key:  # (inputs unchanged during the run)
        rerun.write_receipt(cfg, key, summary)
    print_summary(summary)
    console.print(display.link_line(), highlight=False)
    if summary.get("hub"):
        hub = summary["hub"]
        console.print(f"[bold green]{'pushed' if hub['created_commit'] else 'already on the Hub'}[/]: "
                      f"{hub['url']} (tag {hub['tag']}, revision {hub['revision']})", highlight=False)
    print(summary["path"])  # stdout carries only the path, for scripts
    if chosen.kind == "managed":
        _start_warm_runner()


def _start_warm_runner() -> None:
    """After a run on the managed server from the installed command, the warm runner for the runs
    that come after (cli/warm_runner.py), unless one runs: it starts in the background with this
    command's environment, so that the same shell's next `mossforge run` skips ~2 s of imports."""
    import mossforge.cli.warm_runs as warm_runs

    if warm_runs.env_at_entry is not None:  # (not in a test's CliRunner, nor `python -m mossforge.cli`)
        try:
            warm_runs.start(warm_runs.env_at_entry)
        except OSError as error:  # the version is published: a runner that cannot start is no error
            console.print(f"[yellow]warning:[/] the warm runner did not start ({error}); later runs import "
                          "everything themselves", highlight=False)


@contextlib.contextmanager
def _collected_after() -> Iterator[None]:
    """No garbage collection inside, and what is alive at its end is kept out of later collections.
    Importing Prefect and the flow module makes some 150,000 objects that live as long as the run:
    collected as they load, full passes scanned them several times (0.15-0.2 s), and again several
    times during the build (0.3-0.5 s). (A cycle already garbage at the end is never freed: a small
    leak, once per run.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def import_flow_engine() -> None:
    """What Prefect imports when the flow starts and its first task is submitted, imported here, in
    `_collected_after`: fastapi's encoder (for the flow's parameters) alone is 0.2 s."""
    import fastapi.encoders  # noqa: F401
    import prefect.flow_engine  # noqa: F401
    import prefect.task_engine  # noqa: F401


def print_summary(summary: dict) -> None:
    """The run's funnel, model calls, who refused, the judge panel and what was published."""
    number = f"{summary['version_number']} " if summary.get("version_number") else ""
    table = Table(title=f"{summary['dataset']} · version {number}({summary['version']})", title_justify="left")
    for column in ("stage", "status", "in", "out", "dropped", "seconds"):
        table.add_column(column, justify="right" if column in ("in", "out", "seconds") else "left", overflow="fold")
    for row in summary["funnel"]:
        dropped = ", ".join(f"{k}: {v}" for k, v in row["dropped"].items()) or "-"
        status = "[yellow]not_run[/]" if row["status"] == "not_run" else row["status"]
        table.add_row(row["stage"], status, str(row["entered"]), str(row["kept"]), dropped,
                      f"{row['seconds']:.1f}")
    console.print(table)
    if summary.get("model_calls"):
        from mossforge.release.card import model_call_rows

        calls = Table(title="model calls", title_justify="left")
        rows = model_call_rows(summary["model_calls"])
        for column in rows[0]:
            calls.add_column(column, overflow="fold")
        for row in rows:
            calls.add_row(*(str(v) for v in row.values()))
        console.print(calls)
    from mossforge.release.card import target_rows

    refused = target_rows(summary["funnel"])
    if refused:
        table = Table(title="who refused (every candidate that reached the target check)", title_justify="left")
        for column in refused[0]:
            table.add_column(column, justify="left" if column == "target" else "right", overflow="fold")
        for row in refused:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    if summary.get("consensus"):
        _print_consensus(summary["consensus"])
    counts = summary["counts"]
    by_type = ", ".join(f"{t} {n}" for t, n in counts["by_type"].items())
    reused = " (same content as an existing version: reused)" if summary["reused"] else ""
    console.print(f"[bold green]published[/] {counts['benign']} items ({by_type}){reused} "
                  f"in {summary['seconds']:.1f} s", highlight=False)
    if summary.get("shortfall"):  # fewer than --per-type survived dedup, and the generator has no more
        console.print("[yellow]fewer than asked:[/] " + ", ".join(f"{t} {n} short" for t, n in summary["shortfall"].items())
                      + " (the generator has no more distinct candidates; published what there is)", highlight=False)
    not_run = [r["stage"] for r in summary["funnel"] if r["status"] == "not_run"]
    if not_run:
        console.print(f"[yellow]not run:[/] {', '.join(not_run)} (no models configured): these items "
                      "are candidates, not yet confirmed refused or benign.", highlight=False)


def _print_consensus(consensus: dict) -> None:
    unmatched = consensus.get("human_labels_unmatched") or 0
    if unmatched:  # a labels file of another dataset, or of items an older config made
        console.print(f"[yellow]consensus.human_labels:[/] {unmatched} labelled items are not in this run "
                      f"(ignored), {consensus.get('human_labelled', 0)} matched. Is it the review file of this "
                      "dataset and config? Item ids change with the config.", highlight=False)
    kappa = consensus["agreement"]["fleiss_kappa"]
    labels = ", ".join(f"{k} {v}" for k, v in consensus["labels"].items())
    if not consensus["judges"]:  # reviewers' labels without a panel
        console.print(f"human review (no judge panel): {labels}; reviewers' labels decide the items they "
                      "labelled, unreviewed items are published as candidates", highlight=False)
        return
    line = (f"judge panel ({', '.join(j['name'] for j in consensus['judges'])}; {consensus['rule']}): "
            f"{labels}; Fleiss' kappa {'undefined' if kappa is None else f'{kappa:.3f}'}")
    contrast = consensus.get("contrast_check")
    if contrast and contrast["harmful_share"] is not None:
        line += f"; contrasts called harmful: {contrast['harmful_share']:.0%}"
    console.print(line, highlight=False)


def _termination_signal() -> type[BaseException]:
    """Prefect's exception for SIGTERM inside a flow (it hands the signal back to our handler, so
    this is a fallback), without importing Prefect where it was not imported: then it cannot be raised."""
    exceptions = sys.modules.get("prefect.exceptions")
    return exceptions.TerminationSignal if exceptions else KeyboardInterrupt


@contextlib.contextmanager
def _stop_work_on_signals() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM (`timeout`, `docker stop`, a scheduler) stop the work, not only the flow,
    and say what happened: the model calls and cards still queued are cancelled (the flow waits
    for its task threads, which used to go on calling models for the rest of their batches), and
    the signal becomes a KeyboardInterrupt the run reports. Yields the list the signal's number is
    put in. Within the flow, Prefect's own SIGTERM handler takes over (the run is marked crashed;
    the flow's task runner stops the work) and hands the signal back here when the flow ends."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # (signals reach the main thread only)
        yield received
        return

    def stop(signum, frame):
        from mossforge import run_state

        received.append(signum)
        run_state.stop_work()
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def serve(
    cron: str = typer.Option(..., "--cron", help='When to build, as a cron expression, e.g. "0 3 * * *" (03:00 daily).'),
    config: Path | None = CONFIG,
    name: str | None = typer.Option(None, "--name", help="Deployment name (default: the dataset's name)."),
    timezone: str = typer.Option("UTC", "--timezone", help="Time zone of the cron expression."),
) -> None:
    """Serve the build_dataset deployment on a schedule, on the local Prefect server (or PREFECT_API_URL's).

    Runs until Ctrl-C or SIGTERM, which pause the schedule until the next `serve`; each
    scheduled run builds the config and is named <dataset>-<version> in the Prefect UI once its
    version is known. Like `run`, it starts the local server mossforge keeps when PREFECT_API_URL
    is not set."""
    cfg = load_config(config)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from prefect.client.schemas.schedules import construct_schedule

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone {timezone!r} is not a time zone name (e.g. UTC, Europe/Berlin, "
                         "America/New_York)") from None
    try:
        schedule = construct_schedule(cron=cron, timezone=timezone)
    except ValueError as error:  # pydantic's text, its first error's message without the URL
        reason = error.errors()[0]["msg"] if hasattr(error, "errors") else str(error)
        raise InputError(f"--cron {cron!r} is not a cron expression ({reason}); e.g. \"0 3 * * *\" "
                         "is 03:00 daily") from None
    from mossforge.flows import server

    received: list[int] = []
    cancel_serving: list = []
    with _sigterm_as_ctrl_c(received, cancel_serving):
        try:
            with console.status("checking the local Prefect server…"):
                chosen = server.select(on_start=lambda info: console.print(
                    f"starting the local Prefect server on {info.ui_url} (none was running; it keeps running: "
                    f"`mossforge server stop` stops it; log {info.log})", highlight=False))
            if chosen.kind == "temporary":  # MOSSFORGE_SERVER=temporary: a server that ends with the command
                raise InputError(f"{server.OPT_OUT_ENV}=temporary is set, but a schedule needs a Prefect server "
                                 "that outlives the command: unset it (mossforge then starts and keeps a local "
                                 "server), or set PREFECT_API_URL to a server of your own")
            with chosen.active():
                _serve_until_stopped(cfg, chosen, name or cfg.dataset.name, cron, timezone, schedule, received,
                                     cancel_serving)
        except KeyboardInterrupt:  # before serving began: choosing or starting the server, registering
            number = received[-1] if received else signal.SIGINT
            raise RunInterrupted(f"{'interrupted' if number == signal.SIGINT else 'stopped by SIGTERM'} before "
                                 "serving began (a schedule registered already stays on until `mossforge serve` "
                                 "runs again or it is paused in the UI)", number) from None


@contextlib.contextmanager
def _sigterm_as_ctrl_c(received: list[int], cancel_serving: list) -> Iterator[None]:
    """SIGTERM (`docker stop`, systemd) stops `serve` the way Ctrl-C does; `received` gets its number.
    While serving, `cancel_serving` holds the callable that cancels the serving task (what asyncio
    does on Ctrl-C); before, SIGTERM becomes a KeyboardInterrupt."""
    def on_sigterm(*_) -> None:
        received.append(signal.SIGTERM)
        if cancel_serving:
            cancel_serving[-1]()
            return
        # A shell starts a background job (`mossforge serve … &` in a script) with SIGINT ignored, so
        # that a Ctrl-C meant for the script's foreground command spares it; the SIGINT raised here
        # would then do nothing, and SIGTERM would not stop `serve` at all.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.raise_signal(signal.SIGINT)  # a KeyboardInterrupt, or in asyncio.run the main task cancelled

    previous_sigint = signal.getsignal(signal.SIGINT)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_sigint)


PAUSE_TIMEOUT_S = 15.0  # how long a stopping `serve` tries to pause its schedule


def _serve_until_stopped(cfg, chosen, deployment: str, cron: str, timezone: str, schedule, received: list[int],
                         cancel_serving: list) -> None:
    """Register the deployment and poll for its runs until Ctrl-C or SIGTERM, then pause its
    schedule. On Ctrl-C, asyncio cancels the runner's task (a build in progress finishes first).
    Prefect's own SIGTERM handler calls the async stop from a signal handler (never awaited: Prefect
    warns) and exits; the runner here hands SIGTERM to `_sigterm_as_ctrl_c`'s handler instead."""
    import asyncio

    from prefect.runner import Runner

    from mossforge.flows import crash_detection, server
    from mossforge.flows.build import build_dataset

    on_sigterm = signal.getsignal(signal.SIGTERM)

    class ServeRunner(Runner):
        def handle_sigterm(self, *args, **kwargs) -> None:
            on_sigterm(*args)

    # The schedule is paused below, once, however serving stops: the runner's own pause is skipped
    # when a signal comes before it has started, and retries a server that has gone for minutes.
    runner = ServeRunner(name=deployment, pause_on_shutdown=False)
    deployment_id = runner.add_flow(build_dataset, name=deployment, schedules=[schedule],
                                    parameters={"config": cfg.model_dump(mode="json"), "preflight": True},
                                    tags=["mossforge", cfg.dataset.name, crash_detection.TAG])
    page = f"{chosen.ui_url}/deployments/deployment/{deployment_id}" if chosen.ui_url else chosen.api_url
    console.print(f"serving build_dataset/{deployment} on {cron!r} ({timezone}): {page}\n"
                  f"run it now from that page (Run > Quick run), or with `PREFECT_API_URL="
                  f"{server.without_credentials(chosen.api_url)} prefect deployment run 'build_dataset/{deployment}'`; "
                  "Ctrl-C or SIGTERM stops serving", highlight=False, soft_wrap=True)
    async def serving() -> None:
        # SIGTERM cancels this task, as asyncio does on Ctrl-C. (Raising KeyboardInterrupt from the
        # handler instead, where a shell started `serve` with SIGINT ignored and asyncio installed no
        # handler of its own, sometimes landed in a weakref callback: "Exception ignored", and serve
        # went on serving.)
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        cancel_serving.append(lambda: loop.call_soon_threadsafe(task.cancel))
        try:
            await runner.start()
        finally:
            cancel_serving.clear()

    try:
        asyncio.run(serving())
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    how = "SIGTERM" if received else "Ctrl-C"
    try:
        problem = asyncio.run(_pause_deployment(deployment_id))
        problem = problem and f"the Prefect server at {server.without_credentials(chosen.api_url)} did not answer ({problem})"
    except KeyboardInterrupt:  # Ctrl-C again while pausing
        problem = "interrupted"
    if problem:
        console.print(f"stopped serving ({how}), but the schedule of build_dataset/{deployment} could not be "
                      f"paused: {problem}; runs that fall due while nothing serves it wait on the server as Late",
                      highlight=False)
    else:
        console.print(f"stopped serving ({how}): the schedule of build_dataset/{deployment} is paused until "
                      "`mossforge serve` runs again", highlight=False)


async def _pause_deployment(deployment_id) -> str | None:
    """Pause a deployment's schedule; the kind of error when the server does not answer in time."""
    import asyncio

    import httpx
    from prefect.client.orchestration import get_client

    async def pause() -> None:
        async with get_client() as client:
            await client.pause_deployment(deployment_id)

    try:
        await asyncio.wait_for(pause(), PAUSE_TIMEOUT_S)
    except (TimeoutError, OSError, httpx.HTTPError) as error:
        return type(error).__name__
    return None
