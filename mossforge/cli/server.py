"""`mossforge server start|stop|status`: the local Prefect server that runs use (flows/server.py)."""

from __future__ import annotations

import typer

from mossforge.cli.base import console

server_app = typer.Typer(help="The local Prefect server (UI and API) that runs use when PREFECT_API_URL "
                         "is not set: started on first use, kept running.", no_args_is_help=True)


@server_app.command("start")
def start() -> None:
    """Start the local server (nothing to do if it runs); print its UI address."""
    from mossforge.flows import server

    info = server.ensure_running(on_start=lambda i: console.print(f"starting on {i.ui_url} (log {i.log})…",
                                                                  highlight=False))  # a ServerError: exit 1
    console.print(f"running: pid {info.pid}, API {info.api_url}; state in {server.state_dir()}", highlight=False)
    try:
        server.install_crash_detection(info)  # (a server started by an older mossforge gets it too)
    except Exception as error:  # the server runs: say what failed, and go on
        console.print(f"crash detection could not be installed: {type(error).__name__}: {error}", highlight=False)
    _say_crash_detection(info.api_url)
    _start_warm_runner()
    print(info.ui_url)


def _start_warm_runner() -> None:
    import os

    import mossforge.cli.warm_runs as warm_runs

    if warm_runs.opted_out(os.environ):
        console.print(f"warm runner: off ({warm_runs.OPT_OUT_ENV}={os.environ[warm_runs.OPT_OUT_ENV]})", highlight=False)
        return
    try:
        state = warm_runs.start(warm_runs.env_at_entry or dict(os.environ), wait=True)
    except OSError as error:
        console.print(f"warm runner: did not start ({error}); runs import everything themselves", highlight=False)
        return
    _say_warm_runner(state)


def _say_warm_runner(state: dict | None) -> None:
    import mossforge.cli.warm_runs as warm_runs

    if state is None:
        console.print("warm runner: not running (the next `mossforge run` on this server starts it)", highlight=False)
    elif warm_runs.answers():
        console.print(f"warm runner: pid {state['pid']}, serves `mossforge run` from the environment it was started "
                      f"in; log {state['log']}", highlight=False)
    else:
        console.print(f"warm runner: pid {state['pid']} is not answering yet (importing); log {state['log']}",
                      highlight=False)


def _say_crash_detection(api_url: str) -> None:
    from mossforge.flows import crash_detection

    try:
        found = crash_detection.installed(api_url)
    except Exception as error:  # a server that answers /health but not this
        console.print(f"crash detection: unknown ({type(error).__name__}: {error})", highlight=False)
        return
    if found is None:
        console.print("crash detection: off (runs killed without a word stay \"Running\" in the UI); "
                      "`mossforge server start` turns it on", highlight=False)
        return
    if not found.enabled:
        console.print(f"crash detection: off (the automation {crash_detection.NAME!r} is turned off in the UI's "
                      "Automations)", highlight=False)
        return
    silent = found.trigger.within.total_seconds()
    console.print(f"crash detection: on (a build run that sends no heartbeat for {silent:.0f} s is marked "
                  f"Crashed; runs send one every {crash_detection.HEARTBEAT_S} s)", highlight=False)


@server_app.command("stop")
def stop(force: bool = typer.Option(False, "--force", help="Stop it even while runs are running on it "
                                    "(they end Crashed; the same command resumes them).")) -> None:
    """Stop the local server (its data stays, under PREFECT_HOME). Refused while runs are running
    on it, unless --force."""
    from mossforge.errors import InputError
    from mossforge.flows import server

    running = server.status()
    names = server.live_flow_runs(running.api_url) if running and not force else []
    if names:
        raise InputError(f"{len(names)} run(s) are running on the local server ({', '.join(names)}): stopping it "
                         "now breaks them (they end Crashed, and a `serve` using it stops working). Wait for "
                         "them, or `mossforge server stop --force`")
    import mossforge.cli.warm_runs as warm_runs

    warm_runs.stop()  # (it finishes a run it serves first: none, or --force)
    info = server.stop()
    console.print(f"stopped the server on {info.ui_url} (pid {info.pid})" if info else "no local server was running",
                  highlight=False)


@server_app.command("status")
def status() -> None:
    """Say whether the local server runs (exit code 0) or not (3), and which server runs use."""
    import os

    from mossforge.flows import server

    info = server.status()
    if os.environ.get("PREFECT_API_URL"):
        console.print(f"runs use PREFECT_API_URL={os.environ['PREFECT_API_URL']} (the local server is not used)",
                      highlight=False)
    if info is None:
        hung = server.unresponsive()
        if hung is not None:
            console.print(f"not answering: pid {hung.pid} is alive but {hung.api_url} does not answer (busy, or "
                          f"stopped); `mossforge server stop` stops it, or the next run replaces it after "
                          f"{server.START_TIMEOUT_S:.0f} s; log {hung.log}", highlight=False)
        else:
            console.print(f"not running (state folder {server.state_dir()}); the next `mossforge run` starts it",
                          highlight=False)
        raise typer.Exit(3)
    console.print(f"running: pid {info.pid} since {info.started_at}, API {info.api_url}, log {info.log}",
                  highlight=False)
    _say_crash_detection(info.api_url)
    import mossforge.cli.warm_runs as warm_runs

    _say_warm_runner(warm_runs.read_state())
    print(info.ui_url)
