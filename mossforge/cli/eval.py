"""`mossforge eval`, `mossforge import mossbench|csv` and `mossforge export mossbench|csv`:
score models on a version, and move datasets in and out of other benchmarks' formats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from mossforge.cli.base import DEFAULT_OUTPUTS, console, local_servers
from mossforge.config import CacheSection, TargetCheckSection, load_config
from mossforge.errors import InputError, MossforgeError
from mossforge.schema import HarmCategory, ItemType
from mossforge.tables import read_table

CacheMode = CacheSection.model_fields["mode"].annotation  # use | refresh | off
Classifier = TargetCheckSection.model_fields["classifier"].annotation  # rules | judge | rules_then_judge
Split = Literal["benign", "contrast", "all"]

import_app = typer.Typer(help="Read an existing benchmark into a mossforge dataset folder.", no_args_is_help=True)
export_app = typer.Typer(help="Write a dataset version in another benchmark's format.", no_args_is_help=True)

VERSION = "A dataset version: its folder, or DATASET (its newest version), DATASET/VERSION, a number or an id under --outputs."
OUTPUTS = typer.Option(DEFAULT_OUTPUTS, "--outputs", help="The outputs root, where DATASET/VERSION names are looked up.")


def eval_command(
    dataset: str = typer.Argument(..., help=VERSION),
    target: list[str] = typer.Option([], "--target", "-t", help="A target declared in the config's "
                                     "\\[\\[targets]]; repeatable (default: every target)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML config with \\[endpoints], "
                                          "\\[\\[targets]] and \\[target_check] (classifier, judge, count_partial)."),
    split: Split = typer.Option("all", "--split", help="benign (over-refusal), contrast (safety) or all."),
    answers: Path | None = typer.Option(None, "--answers", help="Score answers collected elsewhere "
                                           "(.jsonl, .csv or .parquet with question_id, model, answer; "
                                           "optional split) instead of asking targets."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default: "
                                       "<outputs>/evals/<dataset>-<version>)."),
    outputs: Path = OUTPUTS,
    classifier: Classifier | None = typer.Option(None, "--classifier", help="rules, judge or rules_then_judge "
                                                    "(default: the config's target_check.classifier)."),
    cache: CacheMode | None = typer.Option(None, "--cache", help="Model-call cache: use, refresh or off."),
    id_column: str = typer.Option("question_id", "--id-column", help="--answers: the item id column."),
    model_column: str = typer.Option("model", "--model-column", help="--answers: the model column."),
    answer_column: str = typer.Option("answer", "--answer-column", help="--answers: the answer column."),
) -> None:
    """Ask targets every query of a version (or score a file of answers), label the answers, and
    report refusal rates per stimulus type with 95% intervals: answers.parquet/.csv, summary.csv,
    leaderboard.md and plot.png (over-refusal against safety) in the report folder."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # the plot is written to a file; never open a window
    from mossforge.release import evaluate
    from mossforge.release.dataset_io import read_items
    from mossforge.release.versions import resolve_version

    overrides = {}
    if classifier is not None:
        overrides["target_check.classifier"] = classifier
    if cache is not None:
        overrides["cache.mode"] = cache
    cfg = load_config(config, overrides)
    folder, manifest = resolve_version(outputs, dataset)
    splits = ("benign", "contrast") if split == "all" else (split,)
    items = [item for s in splits for item in read_items(folder, s)]
    name = f"{manifest.get('dataset', folder.parent.name)}/{manifest.get('version', folder.name)}"
    out = out or outputs / "evals" / name.replace("/", "-")
    settings = cfg.target_check
    judge = settings.judge
    if settings.classifier != "rules" and judge is None:
        raise InputError(f"classifier {settings.classifier!r} needs a judge: a [target_check.judge] table "
                         "(name, endpoint) and its [endpoints.NAME] in --config")
    from mossforge.client import ModelClient

    external, targets = None, []
    if answers is not None:  # checked before any server starts
        if target:
            raise InputError("--answers scores answers collected elsewhere: give no --target")
        frame = read_table(answers)
        missing = [c for c in (id_column, model_column, answer_column) if c not in frame.columns]
        if missing:
            raise InputError(f"--answers {answers} has no column {missing[0]!r} (columns: {', '.join(frame.columns)}); "
                             "name yours with --id-column, --model-column, --answer-column")
        has_split = "split" in frame.columns
        external = [evaluate.ExternalAnswer(str(r[id_column]), str(r[model_column]),
                                            None if r[answer_column] is None else str(r[answer_column]),
                                            (r["split"] if has_split else None) or (split if split != "all" else None))
                    for r in frame.to_dicts()]
    else:
        declared = [t.name for t in cfg.targets]
        if not declared:
            raise InputError("no targets: declare [[targets]] (name, endpoint) and [endpoints] in the file given "
                             "with --config, or score a file of answers with --answers")
        unknown = [t for t in target if t not in declared]
        if unknown:
            raise InputError(f"--target {unknown[0]!r} is not declared in the config's [[targets]] "
                             f"(declared: {', '.join(declared)})")
        targets = [t for t in cfg.targets if not target or t.name in target]
    needs_client = external is None or (judge is not None and settings.classifier != "rules")
    servers = local_servers(cfg)  # the config's [local_models], stopped below
    client = None
    try:
        if needs_client:
            from mossforge.preflight import check_endpoints, model_uses

            # A wrong key or a closed port: one line and exit 3 now, not hundreds of failed calls
            checked = check_endpoints(cfg, uses=model_uses(cfg, targets, judged=settings.classifier != "rules"))
            console.print(f"preflight: {', '.join(checked)} answered", highlight=False)
            client = ModelClient(list(cfg.endpoints.values()), cache_dir=cfg.cache_path(), cache_mode=cfg.cache.mode)
        if external is not None:
            try:
                rows = evaluate.score_answers(external, items, settings, client, judge)
            except ValueError as error:  # an id or a split the version does not have
                raise InputError(f"--answers {answers}: {error}") from error
            models = {r["target"]: r["model_id"] for r in rows}
            _say_coverage(rows, items)
        else:
            console.print(f"asking {len(targets)} targets {len(items)} queries each ({name}, split {split})…",
                          highlight=False)
            rows = evaluate.evaluate_targets(client, targets, items, settings, judge)
            models = {t.name: cfg.endpoints[t.endpoint].model for t in targets}
        if servers.failures():
            raise MossforgeError("eval stopped: " + "; ".join(servers.failures()))
        if client is not None:  # rates over the few answers that came back would mislead
            from mossforge.preflight import check_failures

            check_failures(client.accounting(), cfg.run.max_failed_share, "eval failed, no report was written")
        report = evaluate.write_report(rows, out, dataset=name, models=models,
                                       count_partial=settings.count_partial, classifier=settings.classifier)
        accounting = client.accounting() if client is not None else None
    finally:
        servers.stop()
        if client is not None:
            client.close()
    _print_eval_summary(report, accounting)
    print(out)


def _say_coverage(rows: list[dict], items: list) -> None:
    """--answers: a model's rate over a few items of a split reads like one over all of them."""
    from collections import Counter

    per_split = Counter(item.split for item in items)
    answered = Counter((r["target"], r["split"]) for r in rows)
    for (model, split), count in sorted(answered.items()):
        if count < per_split[split]:
            console.print(f"[yellow]note:[/] {model} has answers to {count} of the {per_split[split]} {split} "
                          "items of this version: its rates cover those only", highlight=False)


def _print_eval_summary(report: dict, accounting: dict | None) -> None:
    from mossforge.release import evaluate

    table = Table(title="refusal rates (95% Wilson intervals)", title_justify="left")
    for column in ("target", "split", "type", "refused", "decided", "undecided", "rate", "95% CI"):
        # Figures whole, names folded: in an 80-column log the intervals were cut to "12.5%–5…"
        text = column in ("target", "split", "type")
        table.add_column(column, justify="left" if text else "right", no_wrap=not text, overflow="fold")
    for row in report["summary"]:
        decided = row["decided"] > 0
        table.add_row(row["target"], row["split"], row["stimulus_type"], str(row["refused"]), str(row["decided"]),
                      str(row["undecided"]), f"{row['rate']:.1%}" if decided else "-",
                      f"{row['ci_low']:.1%}–{row['ci_high']:.1%}" if decided else "-")
    console.print(table)
    console.print(evaluate.describe(report["correlation"]), highlight=False)
    if accounting:
        total = accounting["total"]
        console.print(f"model calls: {total['calls']} made, {total['cache_hits']} from the cache",
                          highlight=False)


# --- import / export --------------------------------------------------------------------------


@import_app.command("mossbench")
def import_mossbench_command(
    folder: Path = typer.Argument(..., help="A MOSSBench-format folder (holding images_information/ and "
                                  "images/, or the repository root holding data/ and data_contrast/)."),
    out: Path = typer.Option(..., "--out", "-o", help="The dataset folder to write (published layout)."),
    contrast: Path | None = typer.Option(None, "--contrast", help="The harmful contrast folder "
                                            "(default: data_contrast beside the data folder, if present)."),
    name: str = typer.Option("mossbench", "--name", help="Dataset name in the card and manifest."),
    license: str = typer.Option("other", "--license", help="The source's licence id, for the card."),
) -> None:
    """Import MOSSBench (or a set in its format): types 1/2/3 become the three stimulus types, its
    flags (human, child, syn, ocr) the record's flags, its raw metadata is kept; contrasts pair by pid."""
    from mossforge.release.importers import import_mossbench

    _print_import(import_mossbench(folder, out, contrast=contrast, name=name, license=license))


@import_app.command("csv")
def import_csv_command(
    file: Path = typer.Argument(..., help="A CSV with one question per row (e.g. XSTest)."),
    question_column: str = typer.Option(..., "--question-column", help="The column holding the question."),
    out: Path = typer.Option(..., "--out", "-o", help="The dataset folder to write (published layout)."),
    label_column: str | None = typer.Option(None, "--label-column", help="A safe/unsafe column: harmful "
                                               "rows go to the contrast split."),
    harmful: str = typer.Option(",".join(("unsafe", "harmful", "contrast", "1", "true", "yes")), "--harmful",
                                help="Comma-separated label values that mean harmful (case-insensitive)."),
    type_column: str | None = typer.Option(None, "--type-column", help="A column naming the stimulus "
                                              "type (a type name or 1/2/3); others are 'unspecified'."),
    stimulus_type: ItemType = typer.Option("unspecified", "--stimulus-type", help="The type of every row "
                                      "without a type column."),
    harm_category: HarmCategory = typer.Option("general_harm", "--harm-category", help="The apparent harm category of every row."),
    name: str | None = typer.Option(None, "--name", help="Dataset name (default: the file's name)."),
    license: str = typer.Option("other", "--license", help="The source's licence id, for the card."),
) -> None:
    """Import a text-only benchmark: benign rows to the benign split, harmful ones (by --label-column)
    to the contrast split; every row's original columns are kept in its provenance."""
    from mossforge.release.importers import import_csv

    result = import_csv(file, out, question_column=question_column, label_column=label_column,
                        type_column=type_column, stimulus_type=stimulus_type, harm_category=harm_category,
                        harmful_labels=[h for h in harmful.split(",") if h.strip()], name=name,
                        license=license)
    _print_import(result)


def _print_import(result) -> None:
    skipped = ", ".join(f"{k}: {v}" for k, v in result.skipped.items())
    reused = " (same content was already there)" if result.version.reused else ""
    console.print(f"imported {result.benign} benign and {result.contrast} contrast queries"
                      + (f", skipped {skipped}" if skipped else "") + f"{reused} → version "
                      f"{result.version.version}", highlight=False)
    print(result.version.path)


@export_app.command("mossbench")
def export_mossbench_command(
    dataset: str = typer.Argument(..., help=VERSION),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write data/ and data_contrast/ into."),
    outputs: Path = OUTPUTS,
) -> None:
    """Write a version in MOSSBench's format (information.json + images, benign and contrast)."""
    from mossforge.release.importers import export_mossbench
    from mossforge.release.versions import resolve_version

    counts = export_mossbench(resolve_version(outputs, dataset)[0], out)
    console.print(f"exported {counts['benign']} benign and {counts['contrast']} contrast items", highlight=False)
    print(out)


@export_app.command("csv")
def export_csv_command(
    dataset: str = typer.Argument(..., help=VERSION),
    out: Path = typer.Option(..., "--out", "-o", help="CSV file to write."),
    outputs: Path = OUTPUTS,
) -> None:
    """Write every query of a version as CSV: id, split, label (safe/unsafe), type, category, question."""
    from mossforge.release.importers import export_csv
    from mossforge.release.versions import resolve_version

    n = export_csv(resolve_version(outputs, dataset)[0], out)
    console.print(f"exported {n} rows", highlight=False)
    print(out)
