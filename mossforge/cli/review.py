"""`mossforge review export|import`: the human review round trip over the judge panel's labels."""

from __future__ import annotations

from pathlib import Path

import typer

from mossforge.cli.base import console
from mossforge.config import ConsensusSection, load_config
from mossforge.errors import InputError, MossforgeError

ReviewMode = ConsensusSection.model_fields["human_mode"].annotation  # override | join

review_app = typer.Typer(help="Human review of the judge panel's labels: export, then import.",
                         no_args_is_help=True)

IMAGES = typer.Option(None, "--images", help="Image store root (records parquet only).")


@review_app.command("export")
def review_export(
    source: Path = typer.Argument(..., help="A published version folder, or a records parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for review.csv and images/."),
    images: Path | None = IMAGES,
) -> None:
    """Write review.csv (one row per item; fill in reviewer, label, note) and the images."""
    from mossforge.release.review import export_items

    try:
        path, count = export_items(source, out, images)
    except MossforgeError:
        raise
    except (FileNotFoundError, ValueError) as error:  # no such folder, an unreadable parquet: bad input
        raise InputError(str(error)) from error
    console.print(f"{count} items to review: fill in [bold]reviewer[/], [bold]label[/] (benign, "
                  "controversial or harmful) and note; leave label empty to skip a row.", highlight=False)
    print(path)


@review_app.command("import")
def review_import(
    csv_file: Path = typer.Argument(..., help="The reviewed review.csv."),
    into: Path = typer.Option(..., "--into", help="The version folder (or records parquet) it was exported from."),
    out: Path = typer.Option(..., "--out", "-o", help="Records parquet to write, reviewers' votes included."),
    mode: ReviewMode = typer.Option("override", "--mode", help="override: reviewers decide; join: one more vote each."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Rule for join (default: the version's)."),
    images: Path | None = IMAGES,
) -> None:
    """Fold reviewers' labels into the items, recorded as human:<reviewer> votes."""
    from mossforge.release.review import import_review

    cfg = load_config(config) if config else None
    try:
        result = import_review(csv_file, into, out, mode, cfg, images)
    except MossforgeError:  # a ReviewFileError names the row and column
        raise
    except (FileNotFoundError, ValueError) as error:
        raise InputError(str(error)) from error
    changes = ", ".join(f"{k}: {v}" for k, v in result["changes"].items()) or "none"
    console.print(f"{result['reviewed']} of {result['items']} items reviewed ({mode}); {changes}. To publish "
                  f"a version with these labels, set consensus.human_labels = \"{csv_file}\" and run again.",
                  highlight=False)
    print(result["out"])
