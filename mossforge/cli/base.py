"""What every command group shares: the app and its one error handler, the two consoles, the
`--outputs` option, and starting the config's local model servers (`run` and `eval`).

Command modules import from here; nothing here imports a command module (`main.py` puts the
groups together), so there is no import cycle. Heavy libraries are imported inside functions:
`mossforge --help` and the fast commands stay fast.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup, TyperOption
from typer.exceptions import Abort, Exit, TyperException

from mossforge.errors import InputError, RunInterrupted, debug_enabled, report

# On its way out, Python runs the garbage collector over everything a command imported (a run: Prefect,
# pyarrow, datasets, some 260,000 objects) before tearing it down: about a second after a run's last
# line. By then every file is written and closed (versions are renamed into place whole), so the heap
# is hidden from that last pass instead. Registered at import, before other atexit handlers, so that
# it runs after them (last in, first out).
atexit.register(gc.freeze)

# Progress, messages, errors and the run's tables. In a log (not a terminal) 200 columns, not 80,
# so that tables keep their figures whole (an eval's intervals were cut to "12.5%–5…").
console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
# Reports a user asked for go to stdout; piped, they are not cut to 80 columns, so ids stay whole.
stdout = Console(width=None if sys.stdout.isatty() else 200)


def attach_consoles() -> None:
    """Detect the terminal again (colours, width, whether it is one) for both consoles, in place:
    a run forked by the warm runner (cli/warm_runner.py) gets its command's terminal after these
    were made for the runner's log, and every module holds them by name."""
    console.__init__(stderr=True, width=None if sys.stderr.isatty() else 200)
    stdout.__init__(width=None if sys.stdout.isatty() else 200)


def print_error(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # "[x]" is text here


class HandledGroup(TyperGroup):
    """The one error handler, around every command: any error becomes one or two lines on stderr
    and its exit code (`mossforge.errors.report`: a `MossforgeError` says what to do, anything
    else also gets its traceback in a log file); the traceback itself only with --debug.

    It sits in the command group, not around `app()`, so `typer.testing.CliRunner` sees exactly
    what a user sees."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _reflow_help(self)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (TyperException, Exit, Abort):
            raise  # usage errors, --help, typer.Exit: the command line's own handling
        except KeyboardInterrupt:  # Ctrl-C anywhere else: one line and 130, not a traceback
            if debug_enabled():
                raise
            raise Exit(report(RunInterrupted("interrupted before the command finished"), print_error)) from None
        except Exception as error:
            if debug_enabled() or isinstance(error, BrokenPipeError) and _stdout_closed():
                raise  # (`mossforge ... | head`: click stops quietly, exit 1)
            raise Exit(report(error, print_error)) from None


def _reflow_help(group) -> None:
    """Each command's help as whole paragraphs: typer's rich help keeps the docstring's source line
    breaks, so on an 80-column terminal sentences broke mid-line ("(exit codes:" / "README, ...")
    and summaries in a group's command list mid-sentence ("..., its" / "flags (human, ...")."""
    import inspect

    for command in getattr(group, "commands", {}).values():
        if command.help:
            paragraphs = inspect.cleandoc(command.help).split("\n\n")
            command.help = "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)
            if command.short_help is None:
                command.short_help = " ".join(paragraphs[0].split())
        _reflow_help(command)  # (the groups within: import, export, local-model, ...)


# typer 0.29 labels every flag "<bool>" in help ("--fresh <bool>", even "--help <bool>"), as if it
# took a value; `--fresh true` is a usage error. Flags show no type, as in typer 0.28 and before.
_option_type_shown = TyperOption.display_type_rich
TyperOption.display_type_rich = lambda self, ctx: None if self.is_bool_flag else _option_type_shown(self, ctx)


def _stdout_closed() -> bool:
    """Whether whatever reads stdout has gone (the write end of a pipe whose reader closed polls
    as an error)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # (no fileno: a test's captured stdout)
        return False


app = typer.Typer(cls=HandledGroup, help="Build over-refusal datasets: benign image+text queries that look alarming.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    if debug:
        os.environ["MOSSFORGE_DEBUG"] = "1"


# --- the outputs root: --outputs everywhere; --out only for what a command writes ---------------

DEFAULT_OUTPUTS = Path("outputs")


def outputs_option(default: str = "outputs/"):
    return typer.Option(None, "--outputs", help=f"The outputs root, where versions are published (default: {default}).")


def old_out_option():
    """`--out`/`-o` on a command that takes the outputs root: its old name, hidden, still working."""
    return typer.Option(None, "--out", "-o", hidden=True, help="Deprecated: use --outputs.")


def outputs_root(outputs: Path | None, old_out: Path | None, default: Path | None = DEFAULT_OUTPUTS):
    """The outputs root from --outputs, or from the deprecated --out (with a one-line warning)."""
    if old_out is None:
        return outputs if outputs is not None else default
    if outputs is not None and outputs != old_out:
        raise InputError(f"--out {old_out} and --outputs {outputs}: give only --outputs (--out is its old name here)")
    console.print("[yellow]warning:[/] --out for the outputs root is deprecated: use --outputs", highlight=False)
    return old_out


# --- used by more than one group ----------------------------------------------------------------


def local_servers(cfg):
    """Start the llama.cpp servers of the config's [local_models] (none: nothing to do); a
    LocalModelError says why when they cannot start. Used by `run` and `eval`; the logic is in
    mossforge/local_model.py."""
    from mossforge.local_model import Servers

    return Servers(cfg, progress=lambda line: console.print(f"local model: {escape(line)}", highlight=False))
