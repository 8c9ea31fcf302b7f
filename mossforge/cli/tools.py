"""Stand-alone tools over a user's own files: `mossforge dedup`, `mossforge classify-refusals` and
`mossforge negate`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from mossforge.cli.base import console
from mossforge.config import TargetCheckSection, load_config
from mossforge.errors import InputError
from mossforge.tables import FORMATS, check_not_folder, read_table

Classifier = TargetCheckSection.model_fields["classifier"].annotation  # rules | judge | rules_then_judge


def check_table_suffix(flag: str, path: Path) -> None:
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"{flag} {path}: unsupported format {path.suffix!r} (use .csv, .jsonl or .parquet)")


def check_input_file(path: Path) -> None:
    """FILE must be a table, not a folder (checked before OUT's name, which is derived from it)."""
    check_not_folder(path, "a .csv, .jsonl or .parquet file")


def check_csv_can_hold(frame, out: Path) -> None:
    """CSV cannot hold a list or an object in a cell: refuse before any work (a judge's calls) when
    `frame` has such a column and `out` is a .csv, naming the column and the formats that can."""
    import polars as pl

    if FORMATS[out.suffix.lower()] != "csv":
        return
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested() or dtype == pl.Object]
    if nested:
        raise InputError(f"--out {out}: column {nested[0]!r}" + (f" (and {', '.join(map(repr, nested[1:]))})"
                         if nested[1:] else "") + " holds nested values (lists or objects), which CSV "
                         f"cannot hold; write .jsonl or .parquet instead (e.g. --out {out.with_suffix('.jsonl')})")


def write_table(frame, out: Path) -> None:
    """`frame` to `out` in the format its suffix names, never half-written under the final name."""
    import os

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    getattr(frame, f"write_{FORMATS[out.suffix.lower()]}")(tmp)
    os.replace(tmp, out)


def write_jsonl_with(source: Path, out: Path, added: dict[str, list]) -> bool:
    """JSONL in, JSONL out: each input line's object, exactly as it was, plus the `added` columns.
    (Through a DataFrame, a column holding 1 on one row and "x" on another came back as "1", and
    keys a row did not have came back as nulls.) False, writing nothing, when the lines are not
    one object each in the order read."""
    import json
    import os

    try:  # (split on "\n" only: U+2028 and its kin may stand unescaped inside a JSON string)
        rows = [json.loads(line) for line in source.read_text(encoding="utf-8-sig").split("\n") if line.strip()]
    except json.JSONDecodeError:
        return False
    if not all(isinstance(row, dict) for row in rows) or any(len(v) != len(rows) for v in added.values()):
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for n, row in enumerate(rows):
            handle.write(json.dumps({**row, **{k: v[n] for k, v in added.items()}}, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return True


def dedup(
    file: Path = typer.Argument(..., help="Questions to deduplicate (.csv, .jsonl or .parquet)."),
    column: str = typer.Option(..., "--column", help="The column holding the text."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (.csv, .jsonl or .parquet; "
                                    "default: FILE's name with -dedup added)."),
    threshold: float = typer.Option(0.9, "--threshold", "-t", min=0.0, max=1.0,
                                    help="Cosine similarity at or above which two texts are duplicates."),
    reference: list[Path] = typer.Option([], "--reference", "-r",
                                         help="A file of texts to dedup against (same column name; or .txt, "
                                         "one text per line), or a dataset folder (its benign questions); repeatable."),
    show: int = typer.Option(5, "--show", help="How many of the least similar duplicates to print (for tuning)."),
) -> None:
    """Mark exact and near-duplicate rows: OUT has every input row plus dup_cluster and is_duplicate.

    dup_cluster is the row number (0-based) of the row each row's cluster kept, or -1 when the row
    duplicates a reference.
    """
    import polars as pl

    check_input_file(file)
    out = out or file.with_name(f"{file.stem}-dedup{file.suffix}")
    check_table_suffix("--out", out)
    if threshold <= 0:
        raise InputError("--threshold must be above 0")
    frame = read_table(file)
    if column not in frame.columns:
        raise InputError(f"{file} has no column {column!r} (columns: {', '.join(frame.columns)})")
    check_csv_can_hold(frame, out)
    texts = [("" if t is None else str(t)) for t in frame[column].to_list()]
    if blank := sum(1 for t in texts if not t.strip()):  # (they embed alike: duplicates of each other)
        console.print(f"[yellow]note:[/] {blank} row(s) have no text in column {column!r} (null or empty); they are "
                      "compared as empty texts, so all but the first are marked duplicates", highlight=False)
    references: list[str] = []
    for ref in reference:
        from mossforge.release.dataset_io import dataset_questions, is_dataset_folder

        if is_dataset_folder(ref):  # a published or imported version: its benign questions
            references += dataset_questions(ref)
            continue
        if ref.suffix.lower() == ".txt":  # one text per line, as dedup.reference_files reads it
            from mossforge.stages.dedup import read_question_file

            references += read_question_file(str(ref), column, where="--reference")
            continue
        ref_frame = read_table(ref)
        if column not in ref_frame.columns:
            raise InputError(f"{ref} has no column {column!r}")
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
    write_table(result, out)

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


ANSWER_COLUMNS = ("answer", "response", "completion", "output")
QUESTION_COLUMNS = ("question", "prompt")


def _first_present(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in columns), None)


def classify_refusals(
    file: Path = typer.Argument(..., help="Model answers (.csv, .jsonl or .parquet)."),
    column: str | None = typer.Option(None, "--column", help="The column holding the answers (default: the "
                                      f"first of {', '.join(ANSWER_COLUMNS)} the file has)."),
    mode: Classifier = typer.Option("rules", "--mode", "-m", help="rules (offline, instant), judge (an LLM "
                                    "labels every answer) or rules_then_judge (the judge only where the rules are unsure)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output file (.csv, .jsonl or .parquet; "
                                       "default: FILE's name with -refusals added)."),
    question_column: str | None = typer.Option(None, "--question-column", help="The questions: read by the rules (a plain \"No.\" answers a yes/no question) and shown "
                                                  f"to the judge (judge modes). Default: the first of {', '.join(QUESTION_COLUMNS)} "
                                                  "the file has; \"\" for none."),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML config whose "
                                          "\\[target_check.judge] and \\[endpoints] name the judge (judge modes)."),
    explain: bool = typer.Option(False, "--explain", help="Also add refusal_rule: the rule or classifier that decided."),
) -> None:
    """Label every answer full_compliance, full_refusal or partial_refusal (or unparsed, when a
    judge's reply could not be read; missing, when a row has no answer: a null, not an empty
    string, which is a refusal): OUT has every input row plus refusal_label."""
    import polars as pl

    check_input_file(file)
    out = out or file.with_name(f"{file.stem}-refusals{file.suffix}")
    check_table_suffix("--out", out)
    frame = read_table(file)
    check_csv_can_hold(frame, out)
    for name, flag in ((column, "--column"), (question_column or None, "--question-column")):
        if name is not None and name not in frame.columns:
            raise InputError(f"{flag}: {file} has no column {name!r} (columns: {', '.join(frame.columns)})")
    column = column or _first_present(frame.columns, ANSWER_COLUMNS)
    if column is None:
        raise InputError(f"{file}: which column holds the answers? Name it with --column (columns: "
                         f"{', '.join(frame.columns)})")
    # the rules read the question where the label depends on it ("No." to "Can I ...?"); a file that has
    # them should not be labelled without them because a flag was left out
    question_column = _first_present(frame.columns, QUESTION_COLUMNS) if question_column is None else question_column or None
    console.print(f"answers: column {column!r}; questions: "
                  + (f"column {question_column!r}" if question_column else "none"), highlight=False)
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
    added = {"refusal_label": labels, **({"refusal_rule": rules} if explain else {})}
    both_jsonl = FORMATS[file.suffix.lower()] == FORMATS[out.suffix.lower()] == "ndjson"
    if not (both_jsonl and write_jsonl_with(file, out, added)):
        write_table(result, out)
    counts = result["refusal_label"].value_counts(sort=True)
    summary = ", ".join(f"{label} {n}" for label, n in counts.iter_rows())
    console.print(f"{len(labels)} answers ({mode}): {summary} → {out}", highlight=False)
    print(out)


def _judge_labels(frame, answers: list, question_column: str | None, mode: str,
                  config: Path | None) -> tuple[list[str], list[str]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mossforge.client import ModelClient
    from mossforge.filters.refusal_judge import JudgeItem, classify_with_judge

    cfg = load_config(config)
    judge = cfg.target_check.judge
    if judge is None:
        raise InputError(f"--mode {mode} needs a judge: put a [target_check.judge] table (name, endpoint) and its "
                         "[endpoints.NAME] in the file given with --config")
    questions = frame[question_column].to_list() if question_column else [None] * len(answers)
    items = [JudgeItem("(not given)" if q is None else str(q), a) for q, a in zip(questions, answers)]
    from mossforge.preflight import check_endpoints, check_failures, model_uses

    check_endpoints(cfg, uses=model_uses(cfg, judged=True))  # a wrong key: exit 3 before any answer
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
        # a failed call is no label ("unparsed" is a reply that could not be read): too many, no file
        check_failures(client.accounting(), cfg.run.max_failed_share, "labelling failed, nothing was written")
    return labels, rules


def negate(
    folder: Path = typer.Argument(..., help="A folder of your own photos (.png, .jpg, .webp, .bmp)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the variants and manifest.jsonl."),
    slogan: str | None = typer.Option(None, "--slogan", help="Banner text, e.g. '#FireSafety'."),
    seed: int = typer.Option(0, "--seed", help="Varies placement and size; same seed, same images."),
    max_side: int = typer.Option(1024, "--max-side", min=64, help="Larger photos are scaled down to this."),
) -> None:
    """Negation overlays for negated_harm: each photo with a red prohibition sign, a red X and a
    slogan banner, plus the photo itself as the harmful contrast (OUT/<name>/<variant>.png)."""
    from mossforge.generators.negation import negate_folder

    try:
        rows = negate_folder(folder, out, slogan=slogan, seed=seed, max_side=max_side)
    except FileNotFoundError as error:  # no such folder, or no photos in it
        raise InputError(str(error)) from error
    errors = [r for r in rows if "error" in r]
    for row in errors:
        console.print(f"[yellow]skipped[/yellow] {row['source']}: {row['error']}")
    if errors and len(errors) == len(rows):  # (it said "0 images written", exit 0)
        raise InputError(f"none of the {len(rows)} images in {folder} could be read (each is listed above); "
                         "nothing was written but the manifest")
    console.print(f"{len(rows) - len(errors)} images written to {out} (manifest.jsonl lists them)")
