"""The `mossforge` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mossforge.config import ConfigError, load_config
from mossforge.errors import debug_enabled, hide_own_errors_in_logs, report


class _App(typer.Typer):
    """The one error handler at the entry point: a mossforge error (or any other) becomes one or
    two lines on stderr and its exit code (mossforge/errors.py); the traceback only with --debug."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as error:
            if debug_enabled():
                raise
            sys.exit(report(error, lambda m: console.print(f"[bold red]error:[/] {escape(m)}", highlight=False)))


app = _App(help="Build over-refusal datasets: benign image+text queries that look alarming.",
           no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    if debug:
        os.environ["MOSSFORGE_DEBUG"] = "1"


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # "[x]" is text here
    raise typer.Exit(code)


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (default: the offline configuration)."),
    per_type: Optional[int] = typer.Option(None, "--per-type", "-n", help="Candidates to plan per stimulus type."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where versions are published (default: outputs/)."),
    fresh: bool = typer.Option(False, "--fresh", help="Recompute every stage instead of reusing cached results."),
    cache: Optional[str] = typer.Option(None, "--cache", help="Model-call cache: use, refresh (re-ask and "
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
    overrides = {}
    if no_wait:
        overrides["run.wait_for_lock"] = False
    if per_type is not None:
        overrides["plan.per_type"] = per_type
    if out is not None:
        overrides["run.out_dir"] = str(out)
    if cache is not None:
        overrides["cache.mode"] = cache
    try:
        cfg = load_config(config, overrides)  # validated before any work starts
    except ConfigError as error:
        _fail(str(error))
    from mossforge.preflight import check_run

    servers = local_servers(cfg)  # the config's [local_models] (before the preflight probes them); stopped at the end
    try:
        checked = check_run(cfg, endpoints=not skip_preflight)  # before Prefect starts: seconds, not minutes
    except BaseException:
        servers.stop()
        raise
    if checked:
        console.print(f"preflight: {', '.join(checked)} answered", highlight=False)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # before Prefect is imported

    from mossforge import progress
    from mossforge.flows import server
    from mossforge.cli.display import RunDisplay

    console.print(f"building [bold]{cfg.dataset.name}[/]: {cfg.plan.per_type * len(cfg.plan.types)} "
                  f"candidates planned (config hash {cfg.config_hash()})", highlight=False)
    try:
        with console.status("checking the local Prefect server…"):
            chosen = server.select(temporary_server, on_start=lambda info: console.print(
                f"starting the local Prefect server on {info.ui_url} (first use; it keeps running: "
                f"`mossforge server stop` stops it; log {info.log})", highlight=False))
    except BaseException as error:
        servers.stop()
        if isinstance(error, server.ServerError):
            _fail(str(error), code=1)
        raise
    from mossforge.flows.build import run_build

    display = RunDisplay(cfg, console, chosen)
    progress.install(display.advance, display.event)
    hide_own_errors_in_logs()  # the handler prints them once; Prefect would add a traceback
    try:
        servers.watch()
        with display, chosen.active():
            summary = run_build(cfg, fresh=fresh)
    except ConfigError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        if not servers.failures():
            raise
        _fail("run stopped: " + "; ".join(servers.failures()), code=1)
    except Exception as error:
        from mossforge.release.hub import HubError

        if not isinstance(error, HubError):
            raise
        _fail(str(error), code=1)  # the push failed; the local version is published
    finally:
        progress.install(None)
        servers.stop()
    _print_summary(summary)
    console.print(display.link_line(), highlight=False)
    if summary.get("hub"):
        hub = summary["hub"]
        console.print(f"[bold green]{'pushed' if hub['created_commit'] else 'already on the Hub'}[/]: "
                      f"{hub['url']} (tag {hub['tag']}, revision {hub['revision']})", highlight=False)
    print(summary["path"])  # stdout carries only the path, for scripts


def local_servers(cfg):
    """Start the llama.cpp servers of the config's [local_models] (none: nothing to do); a clear
    error when they cannot start. Used by `run` and `eval`; logic in mossforge/local_model.py."""
    from mossforge.local_model import LocalModelError, Servers

    try:
        return Servers(cfg, progress=lambda line: console.print(f"local model: {escape(line)}", highlight=False))
    except LocalModelError as error:
        _fail(str(error), code=1)


def _print_summary(summary: dict) -> None:
    number = f"{summary['version_number']} " if summary.get("version_number") else ""
    table = Table(title=f"{summary['dataset']} · version {number}({summary['version']})", title_justify="left")
    for column in ("stage", "status", "in", "out", "dropped", "seconds"):
        table.add_column(column, justify="right" if column in ("in", "out", "seconds") else "left")
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
            calls.add_column(column)
        for row in rows:
            calls.add_row(*(str(v) for v in row.values()))
        console.print(calls)
    from mossforge.release.card import target_rows

    refused = target_rows(summary["funnel"])
    if refused:
        table = Table(title="who refused (every candidate that reached the target check)", title_justify="left")
        for column in refused[0]:
            table.add_column(column, justify="left" if column == "target" else "right")
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
    kappa = consensus["agreement"]["fleiss_kappa"]
    labels = ", ".join(f"{k} {v}" for k, v in consensus["labels"].items())
    line = (f"judge panel ({', '.join(j['name'] for j in consensus['judges'])}; {consensus['rule']}): "
            f"{labels}; Fleiss' kappa {'undefined' if kappa is None else f'{kappa:.3f}'}")
    contrast = consensus.get("contrast_check")
    if contrast and contrast["harmful_share"] is not None:
        line += f"; contrasts called harmful: {contrast['harmful_share']:.0%}"
    console.print(line, highlight=False)


def prefect_server_url() -> str:
    """The API of a running Prefect server, checked reachable; a clear error otherwise.

    Schedules need a real server: the temporary one a plain `mossforge run` starts lives only as
    long as that run and cannot run a schedule."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    start = ("start one with `prefect server start` (UI and API on http://127.0.0.1:4200) and "
             "`export PREFECT_API_URL=http://127.0.0.1:4200/api`")
    if not url:
        _fail(f"PREFECT_API_URL is not set: schedules need a running Prefect server (the temporary "
              f"server a plain run starts cannot schedule); {start}")
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as error:
        _fail(f"the Prefect server at PREFECT_API_URL={url} is not reachable ({type(error).__name__}: "
              f"{error}); {start}")
    return url


@app.command()
def serve(
    cron: str = typer.Option(..., "--cron", help='When to build, as a cron expression, e.g. "0 3 * * *" (03:00 daily).'),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (default: the offline configuration)."),
    name: Optional[str] = typer.Option(None, "--name", help="Deployment name (default: the dataset's name)."),
    timezone: str = typer.Option("UTC", "--timezone", help="Time zone of the cron expression."),
) -> None:
    """Serve the build_dataset deployment on a schedule (needs a running Prefect server).

    Runs until interrupted; each scheduled run builds the config and is named
    <dataset>-<version> in the Prefect UI once its version is known."""
    try:
        cfg = load_config(config)
    except ConfigError as error:
        _fail(str(error))
    url = prefect_server_url()
    from prefect.client.schemas.schedules import construct_schedule

    from mossforge.flows.build import build_dataset

    try:
        schedule = construct_schedule(cron=cron, timezone=timezone)
    except ValueError as error:
        _fail(f"--cron {cron!r}: {error}")
    deployment = name or cfg.dataset.name
    console.print(f"serving build_dataset/{deployment} on {cron!r} ({timezone}) against {url}; "
                  "Ctrl-C stops it", highlight=False)
    build_dataset.serve(name=deployment, schedules=[schedule], parameters={"config": cfg.model_dump(mode="json"), "preflight": True},
                        tags=["mossforge", cfg.dataset.name])


from mossforge.tables import FORMATS as _FORMATS  # noqa: E402  (one map of table formats)


def _read_table(path: Path):
    from mossforge.tables import read_table

    return read_table(path)  # an InputError names the file (and line) when it cannot be read


@app.command()
def dedup(
    file: Path = typer.Argument(..., help="Questions to deduplicate (.csv, .jsonl or .parquet)."),
    column: str = typer.Option(..., "--column", help="The column holding the text."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv, .jsonl or .parquet)."),
    threshold: float = typer.Option(0.9, "--threshold", "-t", min=0.0, max=1.0,
                                    help="Cosine similarity at or above which two texts are duplicates."),
    reference: list[Path] = typer.Option([], "--reference", "-r",
                                         help="A file of texts to dedup against (same column name), or a "
                                         "dataset folder (its benign questions); repeatable."),
    show: int = typer.Option(5, "--show", help="How many of the least similar duplicates to print (for tuning)."),
) -> None:
    """Mark exact and near-duplicate rows: OUT has every input row plus dup_cluster and is_duplicate.

    dup_cluster is the row number (0-based) of the row each row's cluster kept, or -1 when the row
    duplicates a reference.
    """
    import polars as pl

    if out.suffix.lower() not in _FORMATS:
        _fail(f"--out {out}: unsupported format {out.suffix!r} (use .csv, .jsonl or .parquet)")
    if threshold <= 0:
        _fail("--threshold must be above 0")
    frame = _read_table(file)
    if column not in frame.columns:
        _fail(f"{file} has no column {column!r} (columns: {', '.join(frame.columns)})")
    texts = [("" if t is None else str(t)) for t in frame[column].to_list()]
    references: list[str] = []
    for ref in reference:
        from mossforge.release.dataset_io import dataset_questions, is_dataset_folder

        if is_dataset_folder(ref):  # a published or imported version: its benign questions
            references += dataset_questions(ref)
            continue
        ref_frame = _read_table(ref)
        if column not in ref_frame.columns:
            _fail(f"{ref} has no column {column!r}")
        references += [str(t) for t in ref_frame[column].to_list() if t is not None]

    from mossforge.filters.dedup import find_duplicates
    from mossforge.filters.embeddings import MiniLMEmbedder

    console.print(f"embedding {len(texts)} texts (+{len(references)} references) with all-MiniLM-L6-v2…")
    outcome = find_duplicates(texts, threshold, embedder=MiniLMEmbedder(), references=references,
                              show_progress=sys.stderr.isatty())
    result = frame.with_columns(
        pl.Series("dup_cluster", outcome.representative, dtype=pl.Int64),
        pl.Series("is_duplicate", outcome.is_duplicate, dtype=pl.Boolean),
        pl.Series("dup_similarity", outcome.similarity.round(4), dtype=pl.Float32),
        pl.Series("dup_reason", outcome.reason, dtype=pl.String),
    )
    _write_table(result, out)

    stats = outcome.stats
    console.print(f"{stats['rows']} rows: kept {stats['kept']}, exact duplicates {stats['exact']}, "
                  f"near duplicates {stats['near_duplicate']}, reference duplicates {stats['reference']}"
                  f" → {out}", highlight=False)
    pairs = outcome.least_similar_duplicates(show)
    if pairs:
        table = Table(title="least similar pairs still counted as duplicates (raise --threshold if "
                            "these differ)", title_justify="left")
        table.add_column("similarity", justify="right")
        table.add_column("duplicate")
        table.add_column("kept")
        for row, rep, sim in pairs:
            table.add_row(f"{sim:.3f}", texts[row], texts[rep])
        console.print(table)


def _write_table(frame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    getattr(frame, f"write_{_FORMATS[out.suffix.lower()]}")(tmp)
    os.replace(tmp, out)  # never a half-written output under the final name


@app.command("classify-refusals")
def classify_refusals(
    file: Path = typer.Argument(..., help="Model answers (.csv, .jsonl or .parquet)."),
    column: str = typer.Option(..., "--column", help="The column holding the answers."),
    mode: str = typer.Option("rules", "--mode", "-m", help="rules (offline, instant), judge (an LLM "
                             "labels every answer) or rules_then_judge (the judge only where the rules are unsure)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (.csv, .jsonl or .parquet; "
                                       "default: FILE's name with -refusals added)."),
    question_column: Optional[str] = typer.Option(None, "--question-column", help="The questions: read by the rules (a plain \"No.\" answers a yes/no question) and shown "
                                                  "to the judge (judge modes)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config whose "
                                          "[target_check.judge] and [endpoints] name the judge (judge modes)."),
    explain: bool = typer.Option(False, "--explain", help="Also add refusal_rule: the rule or classifier that decided."),
) -> None:
    """Label every answer full_compliance, full_refusal or partial_refusal (or unparsed, when a
    judge's reply could not be read; missing, when a row has no answer: a null, not an empty
    string, which is a refusal): OUT has every input row plus refusal_label."""
    import polars as pl

    if mode not in ("rules", "judge", "rules_then_judge"):
        _fail(f"--mode must be rules, judge or rules_then_judge (got {mode!r})")
    out = out or file.with_name(f"{file.stem}-refusals{file.suffix}")
    if out.suffix.lower() not in _FORMATS:
        _fail(f"--out {out}: unsupported format {out.suffix!r} (use .csv, .jsonl or .parquet)")
    frame = _read_table(file)
    for name, flag in ((column, "--column"), (question_column, "--question-column")):
        if name is not None and name not in frame.columns:
            _fail(f"{flag}: {file} has no column {name!r} (columns: {', '.join(frame.columns)})")
    answers = [None if a is None else str(a) for a in frame[column].to_list()]

    if mode == "rules":
        from mossforge.filters.refusal import classify

        questions = frame[question_column].to_list() if question_column else [None] * len(answers)
        verdicts = [classify(a, question=None if q is None else str(q)) for a, q in zip(answers, questions)]
        labels, rules = [v.label for v in verdicts], [f"rules:{v.rule}" for v in verdicts]
    else:
        labels, rules = _judge_labels(frame, answers, question_column, mode, config)

    result = frame.with_columns(pl.Series("refusal_label", labels, dtype=pl.String))
    if explain:
        result = result.with_columns(pl.Series("refusal_rule", rules, dtype=pl.String))
    _write_table(result, out)
    counts = result["refusal_label"].value_counts(sort=True)
    summary = ", ".join(f"{label} {n}" for label, n in counts.iter_rows())
    console.print(f"{len(labels)} answers ({mode}): {summary} → {out}", highlight=False)
    print(out)


def _judge_labels(frame, answers: list, question_column: Optional[str], mode: str,
                  config: Optional[Path]) -> tuple[list[str], list[str]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mossforge.filters.refusal_judge import JudgeItem, classify_with_judge
    from mossforge.client import ModelClient

    try:
        cfg = load_config(config)
    except ConfigError as error:
        _fail(str(error))
    judge = cfg.target_check.judge
    if judge is None:
        _fail(f"--mode {mode} needs a judge: put a [target_check.judge] table (name, endpoint) and its "
              "[endpoints.NAME] in the file given with --config")
    questions = frame[question_column].to_list() if question_column else [None] * len(answers)
    items = [JudgeItem("(not given)" if q is None else str(q), a) for q, a in zip(questions, answers)]
    labels: list[str] = []
    rules: list[str] = []
    with ModelClient(list(cfg.endpoints.values()), cache_dir=cfg.cache_path(),
                     cache_mode=cfg.cache.mode) as client, \
            Progress(SpinnerColumn(), TextColumn("judging"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), console=console) as bars:
        task = bars.add_task("judge", total=len(items))
        for start in range(0, len(items), 64):  # chunks, so the bar moves and a failure loses little
            chunk = items[start:start + 64]
            for label, classifier, rule in classify_with_judge(
                    client, judge.endpoint, chunk, only_unsure=mode == "rules_then_judge",
                    send_image=False, system_prompt=judge.system_prompt, params=judge.params,
                    stage="classify_refusals"):
                labels.append(label)
                rules.append(classifier + (f":{rule}" if rule else ""))
            bars.advance(task, len(chunk))
    return labels, rules


# --- versions: list, diff, publish to the Hub ---------------------------------------------------

# Reports a user asked for go to stdout (progress and errors to stderr); piped, they are not cut
# to 80 columns, so ids stay whole.
stdout = Console(width=None if sys.stdout.isatty() else 200)

_OUT = typer.Option(Path("outputs"), "--out", "-o", help="Where versions are published.")
_DATASET = typer.Option(None, "--dataset", "-d", help="The dataset (needed when a version ref is ambiguous).")


def _resolve(out: Path, ref: str, dataset: Optional[str]):
    from mossforge.release.versions import VersionError, resolve_version

    try:
        return resolve_version(out, ref, dataset)
    except VersionError as error:
        _fail(str(error))


@app.command()
def versions(
    dataset: Optional[str] = typer.Argument(None, help="Dataset name (default: every dataset under --out)."),
    out: Path = _OUT,
) -> None:
    """List published versions with their numbers, ids, dates and counts, oldest first."""
    from mossforge.release.versions import all_versions

    manifests = all_versions(out, dataset)
    if not manifests:
        _fail(f"no published versions under {out / dataset if dataset else out}", code=1)
    table = Table(title=f"versions under {out}", title_justify="left")
    for column in ("dataset", "number", "id", "created", "change", "benign", "controversial",
                   "dropped", "by type", "stages not run"):
        table.add_column(column, justify="right" if column in ("benign", "controversial", "dropped") else "left",
                         no_wrap=column in ("number", "id", "created"), overflow="fold")
    for m in manifests:
        counts = m["counts"]
        table.add_row(m["dataset"], m.get("version_number", "-"), m["version"], m["created_at"],
                      (m.get("change") or {}).get("level", "-"), str(counts["benign"]),
                      str(counts.get("controversial", 0)), str(counts["dropped"]),
                      ", ".join(f"{t} {n}" for t, n in counts["by_type"].items()),
                      ", ".join(s for s, v in m.get("stages", {}).items() if v == "not_run") or "-")
    stdout.print(table)


@app.command()
def diff(
    old: str = typer.Argument(..., help="The version you have: number (1.0.0), id, or a version folder."),
    new: str = typer.Argument(..., help="The version to compare it with."),
    dataset: Optional[str] = _DATASET,
    out: Path = _OUT,
    show: int = typer.Option(20, "--show", help="How many added and removed items to list."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole diff as JSON."),
) -> None:
    """What changes from OLD to NEW: items added and removed, counts and schema.

    Items are compared by stable id; counts per type and category; columns added, removed or
    retyped per split."""
    import json

    from mossforge.release.versions import diff_versions

    _, old_manifest = _resolve(out, old, dataset)
    _, new_manifest = _resolve(out, new, dataset)
    report = diff_versions(out, old_manifest, new_manifest)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    _print_diff(report, show)


def _print_diff(report: dict, show: int) -> None:
    def name(side):
        return f"{side['version_number'] or '-'} ({side['version']}, {side['created_at']})"

    change = report["change"]
    stdout.print(f"[bold]{report['dataset']}[/]: {name(report['from'])} → {name(report['to'])}", highlight=False)
    if change["level"]:
        stdout.print(f"change: [bold]{change['level']}[/] ({'; '.join(change['reasons'])})", highlight=False)
    items = report["items"]
    stdout.print(f"items: {len(items['added'])} added, {len(items['removed'])} removed, "
                 f"{len(items['changed'])} changed (same id, different row), {items['kept']} in both"
                 + ("; the config changed" if report["config_changed"] else ""), highlight=False)
    for label, rows in (("added", items["added"]), ("removed", items["removed"])):
        if not rows:
            continue
        table = Table(title=f"{label} ({len(rows)}{', first ' + str(show) if len(rows) > show else ''})",
                      title_justify="left")
        for column in ("id", "type", "category", "split", "question"):
            table.add_column(column, no_wrap=column == "id", overflow="fold")
        for row in rows[:show]:
            table.add_row(row["id"], row.get("stimulus_type", "?"), row.get("harm_category", "?"),
                          row.get("split", "?"), row.get("question", "?"))
        stdout.print(table)
    for group, changes in report["counts"].items():
        if changes:
            table = Table(title=f"counts changed ({group.replace('_', ' ')})", title_justify="left")
            for column in ("", "before", "after", "change"):
                table.add_column(column, justify="left" if not column else "right")
            for key, (a, b, d) in changes.items():
                table.add_row(key, str(a), str(b), f"{d:+d}")
            stdout.print(table)
    schema = report["schema"]
    if schema is None:
        stdout.print("schema: not recorded in one of the manifests (published by an older mossforge)")
    elif not (schema["columns"] or schema["splits_added"] or schema["splits_removed"]):
        stdout.print("schema: unchanged")
    else:
        for split in schema["splits_added"]:
            stdout.print(f"schema: split [bold]{split}[/] added", highlight=False)
        for split in schema["splits_removed"]:
            stdout.print(f"schema: split [bold]{split}[/] removed", highlight=False)
        for split, entry in schema["columns"].items():
            for column, dtype in entry["added"].items():
                stdout.print(f"schema: {split}: column {column} added ({dtype})", highlight=False)
            for column, dtype in entry["removed"].items():
                stdout.print(f"schema: {split}: column {column} removed (was {dtype})", highlight=False)
            for column, (a, b) in entry["retyped"].items():
                stdout.print(f"schema: {split}: column {column} retyped {a} → {b}", highlight=False)


@app.command()
def publish(
    version: str = typer.Argument(..., help="The version: number (1.0.0), id, or a version folder."),
    repo: str = typer.Option(..., "--repo", help="The Hugging Face dataset repo, ORG/NAME (created if needed)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private (an existing repo keeps "
                                 "its visibility)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be uploaded; contact nothing."),
    dataset: Optional[str] = _DATASET,
    out: Path = _OUT,
) -> None:
    """Push a published version to the Hugging Face Hub and tag its commit v<number>.

    The token comes from HF_TOKEN or `hf auth login`; it is checked before anything is uploaded
    and never printed. Publishing a version the repo already has makes no new commit.
    """
    from mossforge.release.hub import HubError, push_version
    from mossforge.release.versions import VersionError

    path, _ = _resolve(out, version, dataset)
    try:
        result = push_version(path, repo, private=private, dry_run=dry_run)
    except (HubError, VersionError) as error:
        _fail(str(error), code=1)
    if result.dry_run:
        table = Table(title=f"dry run: would push {result.version_number} ({result.version}) to {repo} "
                            f"and tag it {result.tag}", title_justify="left")
        table.add_column("file")
        table.add_column("bytes", justify="right")
        for name, size in result.files:
            table.add_row(name, f"{size:,}")
        stdout.print(table)
        stdout.print(f"{len(result.files)} files, {sum(s for _, s in result.files):,} bytes; files already on "
                     "the repo's main branch that this version does not have are deleted in the same "
                     "commit. Nothing was contacted.", highlight=False)
        return
    what = "pushed" if result.created_commit else "already on the Hub (no new commit)"
    console.print(f"[bold green]{what}[/]: {result.version_number} ({result.version}) → {repo} tag "
                  f"{result.tag}" + (f", {len(result.deleted)} old files removed" if result.deleted else ""),
                  highlight=False)
    print(result.url)
    print(result.revision)





from mossforge.cli.server import server_app  # noqa: E402  (mossforge server start|stop|status)

app.add_typer(server_app, name="server")

review_app = typer.Typer(help="Human review of the judge panel's labels: export, then import.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("export")
def review_export(
    source: Path = typer.Argument(..., help="A published version folder, or a records parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for review.csv and images/."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image store root (records parquet only)."),
) -> None:
    """Write review.csv (one row per item; fill in reviewer, label, note) and the images."""
    from mossforge.release.review import export_items

    try:
        path, count = export_items(source, out, images)
    except (FileNotFoundError, ValueError, ConfigError) as error:
        _fail(str(error))
    console.print(f"{count} items to review: fill in [bold]reviewer[/], [bold]label[/] (benign, "
                  "controversial or harmful) and note; leave label empty to skip a row.", highlight=False)
    print(path)


@review_app.command("import")
def review_import(
    csv_file: Path = typer.Argument(..., help="The reviewed review.csv."),
    into: Path = typer.Option(..., "--into", help="The version folder (or records parquet) it was exported from."),
    out: Path = typer.Option(..., "--out", "-o", help="Records parquet to write, reviewers' votes included."),
    mode: str = typer.Option("override", "--mode", help="override: reviewers decide; join: one more vote each."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Rule for join (default: the version's)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image store root (records parquet only)."),
) -> None:
    """Fold reviewers' labels into the items, recorded as human:<reviewer> votes."""
    from mossforge.filters.review import ReviewFileError
    from mossforge.release.review import import_review

    if mode not in ("override", "join"):
        _fail(f"--mode must be override or join, got {mode!r}")
    try:
        cfg = load_config(config) if config else None
        result = import_review(csv_file, into, out, mode, cfg, images)
    except (FileNotFoundError, ValueError, ConfigError, ReviewFileError) as error:
        _fail(str(error))
    changes = ", ".join(f"{k}: {v}" for k, v in result["changes"].items()) or "none"
    console.print(f"{result['reviewed']} of {result['items']} items reviewed ({mode}); {changes}. To publish "
                  f"a version with these labels, set consensus.human_labels = \"{csv_file}\" and run again.",
                  highlight=False)
    print(result["out"])


@app.command()
def negate(
    folder: Path = typer.Argument(..., help="A folder of your own photos (.png, .jpg, .webp, .bmp)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the variants and manifest.jsonl."),
    slogan: Optional[str] = typer.Option(None, "--slogan", help="Banner text, e.g. '#FireSafety'."),
    seed: int = typer.Option(0, "--seed", help="Varies placement and size; same seed, same images."),
    max_side: int = typer.Option(1024, "--max-side", min=64, help="Larger photos are scaled down to this."),
) -> None:
    """Negation overlays for negated_harm: each photo with a red prohibition sign, a red X and a
    slogan banner, plus the photo itself as the harmful contrast (OUT/<name>/<variant>.png)."""
    from mossforge.generators.negation import negate_folder

    try:
        rows = negate_folder(folder, out, slogan=slogan, seed=seed, max_side=max_side)
    except FileNotFoundError as error:
        _fail(str(error))
    errors = [r for r in rows if "error" in r]
    for row in errors:
        console.print(f"[yellow]skipped[/yellow] {row['source']}: {row['error']}")
    console.print(f"{len(rows) - len(errors)} images written to {out} (manifest.jsonl lists them)")


from mossforge.cli.eval import register as _register_eval  # noqa: E402  (eval, import, export)
from mossforge.cli.local import local_app  # noqa: E402  (local-model install|start|stop|status)

app.add_typer(local_app, name="local-model")

_register_eval(app)
