"""`mossforge versions`, `mossforge diff` and `mossforge publish`: published versions, what changes
between two, and pushing one to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mossforge.cli.base import console, old_out_option, outputs_option, outputs_root, stdout
from mossforge.errors import InputError, MossforgeError

DATASET = typer.Option(None, "--dataset", "-d", help="The dataset (needed when a version ref is ambiguous).")
VERSION_FORMS = "number (1.0.0), id (or its first 4+ characters), DATASET, DATASET/VERSION, or a version folder"


def versions(
    dataset: str | None = typer.Argument(None, help="Dataset name (default: every dataset under --outputs)."),
    outputs: Path | None = outputs_option(),
    old_out: Path | None = old_out_option(),
) -> None:
    """List published versions with their numbers, ids, dates and counts, oldest first."""
    from mossforge.release.versions import all_versions

    root = outputs_root(outputs, old_out)
    manifests = all_versions(root, dataset)
    if not manifests:
        raise InputError(f"no published versions under {root / dataset if dataset else root}")
    table = Table(title=f"versions under {root}", title_justify="left")
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


def diff(
    old: str = typer.Argument(..., help=f"The version you have: {VERSION_FORMS}."),
    new: str = typer.Argument(..., help="The version to compare it with."),
    dataset: str | None = DATASET,
    outputs: Path | None = outputs_option(),
    old_out: Path | None = old_out_option(),
    show: int = typer.Option(20, "--show", help="How many added and removed items to list."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole diff as JSON."),
) -> None:
    """What changes from OLD to NEW: items added and removed, counts and schema.

    Items are compared by stable id; counts per type and category; columns added, removed or
    retyped per split."""
    import json

    from mossforge.release.versions import diff_versions, resolve_version

    root = outputs_root(outputs, old_out)
    old_folder, old_manifest = resolve_version(root, old, dataset)
    new_folder, new_manifest = resolve_version(root, new, dataset)
    if old_folder.resolve() == new_folder.resolve():  # (it said "patch: metadata changed")
        raise InputError(f"{old} and {new} are the same version ({old_folder}): name two versions to compare")
    report = diff_versions(root, old_manifest, new_manifest)
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


def publish(
    version: str = typer.Argument(..., help=f"The version: {VERSION_FORMS}."),
    repo: str = typer.Option(..., "--repo", help="The Hugging Face dataset repo, ORG/NAME (created if needed)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private (an existing repo keeps "
                                 "its visibility)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be uploaded; contact nothing."),
    dataset: str | None = DATASET,
    outputs: Path | None = outputs_option(),
    old_out: Path | None = old_out_option(),
) -> None:
    """Push a published version to the Hugging Face Hub and tag its commit v<number>.

    The token comes from HF_TOKEN or `hf auth login`; it is checked before anything is uploaded
    and never printed. Publishing a version the repo already has makes no new commit.
    """
    from mossforge.release.hub import push_version, repo_id_problem
    from mossforge.release.versions import VersionError, resolve_version

    problem = repo_id_problem(repo)  # before --dry-run says "would push" to a name the Hub refuses
    if problem:
        raise InputError(f"--repo {repo!r} is not a Hugging Face repo id ORG/NAME ({problem})")
    path, _ = resolve_version(outputs_root(outputs, old_out), version, dataset)
    try:
        result = push_version(path, repo, private=private, dry_run=dry_run)
    except VersionError as error:  # the version does not match its manifest: nothing to push (exit 1)
        raise MossforgeError(str(error)) from None
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
