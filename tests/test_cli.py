"""The command line's shape (issue 16): one error base and one handler, typed choices, `--outputs`
for the outputs root (with `--out` as its deprecated name there), a package without import cycles,
and fast paths that import no heavy library."""

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mossforge.cli import app

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "mossforge" / "cli"
HEAVY = ("prefect", "torch", "openai", "sentence_transformers")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_importing_the_cli_and_its_fast_paths_import_no_heavy_library(tmp_path):
    script = f"""
import json, sys
import mossforge.cli
after_import = sorted(m for m in {HEAVY!r} if m in sys.modules)
from typer.testing import CliRunner
from mossforge.cli import app
runner = CliRunner()
codes = [runner.invoke(app, args).exit_code for args in (["--help"], ["run", "--help"], ["eval", "--help"],
                                                         ["versions", "--outputs", {str(tmp_path)!r}])]
print(json.dumps({{"import": after_import, "codes": codes,
                  "fast": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["import"] == [] and seen["fast"] == []
    assert seen["codes"] == [0, 0, 0, 2]  # versions: nothing published there (exit 2, bad input)


def test_every_first_party_error_is_a_mossforge_error_and_keeps_its_other_base():
    from mossforge.client import ModelCallError
    from mossforge.config import ConfigError
    from mossforge.errors import InputError, MossforgeError
    from mossforge.filters.review import ReviewFileError
    from mossforge.flows.limits import MissingLimitError
    from mossforge.flows.monitor import StageBatchFailed
    from mossforge.flows.runners import RunnerUnavailable
    from mossforge.flows.server import ServerError
    from mossforge.local_model import LocalModelError
    from mossforge.release.hub import HubError
    from mossforge.release.versions import VersionError

    for cls in (LocalModelError, ModelCallError, StageBatchFailed, MissingLimitError, RunnerUnavailable,
                ServerError, HubError):
        assert issubclass(cls, MossforgeError) and issubclass(cls, RuntimeError) and cls.exit_code == 1, cls
    for cls in (ReviewFileError, ConfigError, VersionError):
        assert issubclass(cls, InputError) and issubclass(cls, ValueError) and cls.exit_code == 2, cls


def test_a_wrapped_error_is_reported_as_what_it_wraps():
    from mossforge.errors import PreflightError, describe, report
    from mossforge.flows.monitor import StageBatchFailed

    try:
        try:
            raise PreflightError("endpoint 'gw' rejected the key")
        except PreflightError as inner:
            raise StageBatchFailed("stage target_check, batch 0 of 1 failed") from inner
    except StageBatchFailed as outer:
        assert describe(outer) == ("endpoint 'gw' rejected the key", 3)
    lines = []
    try:
        try:
            raise OSError("disk full")
        except OSError as inner:
            raise StageBatchFailed("stage render, batch 2 of 3 failed: OSError: disk full") from inner
    except StageBatchFailed as outer:
        assert report(outer, lines.append) == 1
    assert lines[0].startswith("stage render, batch 2 of 3 failed: OSError: disk full\n(full traceback in ")
    # where the flag goes: `mossforge run … --debug` is "No such option" (a new user's first try)
    assert lines[0].endswith("`mossforge --debug <command> …` shows it here)")
    Path(lines[0].split("full traceback in ")[1].split(";")[0]).unlink()


def test_the_one_handler_gives_a_library_error_its_line_and_exit_code():
    result = invoke("local-model", "install", "no-such-model")  # a LocalModelError from mossforge/local_model.py
    assert result.exit_code == 1, result.output
    assert "error: unknown local model 'no-such-model'" in " ".join(result.stderr.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    missing = invoke("review", "import", ROOT / "nope.csv", "--into", ROOT / "nope", "--out", ROOT / "x.parquet")
    assert missing.exit_code == 2 and "no such file or version folder" in missing.stderr


@pytest.mark.parametrize("args, shown", [
    (["run", "--cache", "sometimes"], "use|refresh|off"),
    (["eval", "x", "--split", "both"], "benign|contrast|all"),
    (["eval", "x", "--classifier", "gpt"], "rules|judge|rules_then_judge"),
    (["classify-refusals", "a.csv", "--column", "a", "--mode", "vibes"], "rules|judge|rules_then_judge"),
    (["review", "import", "r.csv", "--into", "v", "--out", "o.parquet", "--mode", "merge"], "override|join"),
    (["import", "csv", "q.csv", "--question-column", "q", "--out", "o", "--stimulus-type", "scary"],
     "unspecified"),
])
def test_fixed_choices_are_typed_listed_in_help_and_checked_before_any_work(args, shown):
    result = invoke(*args)
    assert result.exit_code == 2 and "is not one of" in " ".join(result.output.split()), result.output
    command = args[:2] if args[0] in ("review", "import") else args[:1]
    helped = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert shown in helped.output


def test_outputs_is_the_root_and_out_its_deprecated_name(tmp_path):
    empty = tmp_path / "empty"
    for command in (["versions"], ["diff", "1.0.0", "2.0.0"], ["publish", "1.0.0", "--repo", "o/n"]):
        helped = CliRunner().invoke(app, [*command[:1], "--help"], env={"COLUMNS": "200"})
        assert "--outputs" in helped.output and "--out " not in helped.output, command  # --out is hidden
        old = invoke(*command, "--out", empty)
        assert "--out for the outputs root is deprecated: use --outputs" in old.stderr, command
        assert "no published versions" in old.stderr or "no version '1.0.0'" in old.stderr, old.stderr
    both = invoke("run", "--outputs", tmp_path / "a", "--out", tmp_path / "b")
    assert both.exit_code == 2 and "give only --outputs" in both.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing was run


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def test_cli_modules_form_no_cycle_and_share_no_private_helper():
    """Only main.py (and the package, through it) imports the command modules; they import base.py
    (and display.py, and warm_runs.py: the warm runner's start, stop and state); warm_runner.py, the
    other way in (it runs the app), imports what a run imports; no module imports another's private
    name."""
    for path in sorted(CLI.glob("*.py")):
        for module, names in _imports(path):
            if path.name not in ("main.py", "__init__.py", "__main__.py", "warm_runner.py") and (module == "mossforge.cli" or module.startswith("mossforge.cli.")):
                assert module in ("mossforge.cli.base", "mossforge.cli.display", "mossforge.cli.warm_runs"), (path.name, module)
            if module.startswith("mossforge"):
                assert not [n for n in names if n.startswith("_")], (path.name, module, names)


def test_sigterm_during_a_run_becomes_one_reported_interruption_and_the_handlers_are_restored(monkeypatch):
    """`mossforge run` turns SIGINT and SIGTERM (also while the preflight or the Prefect server start
    is under way, where SIGTERM used to end the process without a word, and without stopping the
    local model servers) into a KeyboardInterrupt the run reports with 128 + the signal's number."""
    import os
    import signal

    from mossforge import run_state
    from mossforge.cli.build import _stop_work_on_signals
    from mossforge.errors import RunInterrupted

    stopped = []
    monkeypatch.setattr(run_state, "stop_work", lambda: stopped.append(1))
    before = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt):
        with _stop_work_on_signals() as received:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # (the handler runs at once, in this thread)
    assert received == [signal.SIGTERM] and stopped == [1]
    assert {n: signal.getsignal(n) for n in before} == before
    assert RunInterrupted("stopped", signal.SIGTERM).exit_code == 143 and RunInterrupted("x").exit_code == 130


def test_config_sections_named_in_help_texts_are_shown_not_eaten_as_markup():
    """Typer renders help with rich markup, where "[endpoints]" or "[[targets]]" is a style tag and
    vanished: `eval --help` said "TOML config with , [] and (classifier, ...)"."""
    import re

    import typer

    def commands(command, path):
        yield path, command
        if hasattr(command, "commands"):  # a group (typer carries its own click)
            for name, sub in command.commands.items():
                yield from commands(sub, [*path, name])

    checked = 0
    for path, command in commands(typer.main.get_command(app), []):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        sections = {s for text in texts for s in re.findall(r"\[\[?[a-z_.]+\]\]?", text.replace("\\", ""))}
        if not sections:
            continue
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200, env={"COLUMNS": "200"}).output
        for section in sections:
            assert section in shown, f"`mossforge {' '.join(path)} --help` does not show {section}"
            checked += 1
    assert checked >= 4


def test_help_on_an_80_column_terminal_keeps_sentences_whole_and_shows_no_type_on_flags():
    """Typer's rich help kept the docstrings' source line breaks, so `run --help` on 80 columns broke
    sentences in the middle of the line ("(exit codes:" / "README, ..."); and typer 0.29 labels
    every flag "<bool>" ("--fresh <bool>", "--help <bool>") as if it took a value."""
    shown = CliRunner().invoke(app, ["run", "--help"], terminal_width=80, env={"COLUMNS": "80"}).output
    lines = [line.strip(" │") for line in shown.splitlines()]
    assert not [line for line in lines if line.endswith("(exit codes:")], shown
    assert "(exit codes: README" in " ".join(lines), shown
    for command in (["run"], [], ["server"]):
        shown = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "80"}).output
        assert "--help" in shown and "<bool>" not in shown, shown
    assert "<int>" in CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "80"}).output  # types stay
    assert invoke("run", "--fresh", "true").exit_code == 2  # (a flag takes no value)


def test_output_piped_into_a_reader_that_leaves_stops_quietly(monkeypatch):
    """`mossforge eval --help | head -30`: the pipe closes under the writer. That was reported as
    "could not reach the host (BrokenPipeError ...)", exit 6 and a traceback log; now it goes to
    click, which stops like any command-line tool, without a word (exit 1). A broken pipe is never
    a host that could not be reached."""
    import typer

    from mossforge.cli import base
    from mossforge.errors import describe

    group = typer.Typer(cls=base.HandledGroup)

    @group.command()
    def write() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    @group.command()
    def other() -> None:
        pass

    monkeypatch.setattr(base, "_stdout_closed", lambda: True, raising=False)
    result = CliRunner().invoke(group, ["write"])
    assert result.exit_code == 1 and "error" not in result.output, result.output
    monkeypatch.setattr(base, "_stdout_closed", lambda: False, raising=False)  # another pipe (a worker's): an unexpected error
    result = CliRunner().invoke(group, ["write"])
    assert result.exit_code == 1 and "could not reach" not in result.output
    assert describe(BrokenPipeError(32, "Broken pipe"))[1] != 6


def test_stdout_closed_tells_a_pipe_whose_reader_left(monkeypatch):
    import os

    from mossforge.cli.base import _stdout_closed

    for reader_left in (True, False):
        read_end, write_end = os.pipe()
        if reader_left:
            os.close(read_end)
        with open(write_end, "w") as writer:
            monkeypatch.setattr(sys, "stdout", writer)
            assert _stdout_closed() is reader_left
        if not reader_left:
            os.close(read_end)


def test_every_command_summary_in_a_command_list_is_one_paragraph():
    """Typer's rich help kept the docstrings' source line breaks in a group's command list, so
    summaries broke mid-sentence ("..., its" / "flags (human, child, ...)" in `import --help`)."""
    import typer

    def commands(group):
        for command in getattr(group, "commands", {}).values():
            yield command
            yield from commands(command)

    every = list(commands(typer.main.get_command(app)))
    assert len(every) >= 20
    for command in every:
        assert command.short_help and "\n" not in command.short_help, command.name
