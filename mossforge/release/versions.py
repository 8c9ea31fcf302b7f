"""Version numbers, verification and diffs of published versions.

Each version has two names: its content id (a hash of what a user gets: `publish.content_version_id`)
and a semantic version number given when it is first published, from the dataset's previous
version in the same output folder:

| change from the previous version                                   | bump  |
|--------------------------------------------------------------------|-------|
| items removed, or a column added, removed or retyped (any split)    | major |
| items added, or an existing item's row changed (same id)           | minor |
| same items and rows: only metadata changed (licence, description)   | patch |

The first version of a dataset is 1.0.0. Items are compared by their stable id (a hash of type,
question and image description) and by a digest of their row, so the rule needs only the two
manifests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mossforge.errors import InputError
from mossforge.release.layout import ITEM_SPLITS, MANIFEST, SHARD, list_versions, sha256_file


class VersionError(InputError):
    """A version that cannot be found, is ambiguous, or does not match its manifest."""


# --- the version-number rule ------------------------------------------------------------------


def flatten_features(features) -> dict[str, str]:
    """`datasets.Features` as {"column.sub[].leaf": dtype}: what a loader sees, comparable by key."""
    flat: dict[str, str] = {}

    def walk(feature, key: str) -> None:
        if isinstance(feature, dict):
            for name, sub in feature.items():
                walk(sub, f"{key}.{name}" if key else name)
        elif hasattr(feature, "feature"):  # List / LargeList / Sequence
            walk(feature.feature, f"{key}[]")
        elif hasattr(feature, "dtype") and type(feature).__name__ == "Value":
            flat[key] = feature.dtype
        else:
            flat[key] = type(feature).__name__  # Image, ClassLabel, ...

    walk(dict(features), "")
    return flat


def schema_changes(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]) -> dict:
    """Per split: columns added, removed and retyped; and splits added or removed."""
    changes: dict[str, Any] = {"splits_added": sorted(set(new) - set(old)),
                               "splits_removed": sorted(set(old) - set(new)), "columns": {}}
    for split in sorted(set(old) & set(new)):
        a, b = old[split], new[split]
        entry = {
            "added": {k: b[k] for k in sorted(set(b) - set(a))},
            "removed": {k: a[k] for k in sorted(set(a) - set(b))},
            "retyped": {k: [a[k], b[k]] for k in sorted(set(a) & set(b)) if a[k] != b[k]},
        }
        if any(entry.values()):
            changes["columns"][split] = entry
    return changes


def _has_column_changes(changes: dict) -> bool:
    # A split that appears or disappears (e.g. the first controversial items) is a change of
    # items, counted by ids; only columns of splits present in both make a schema change.
    return bool(changes["columns"])


def parse_number(number: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in number.removeprefix("v").split("."))
    return major, minor, patch


def change_level(previous: dict, items: dict[str, str | None], features: dict) -> tuple[str, list[str]]:
    """("major" | "minor" | "patch", reasons) for a version with `items` and `features` after
    `previous` (a manifest)."""
    before = manifest_items(previous)
    removed = set(before) - set(items)
    added = set(items) - set(before)
    changed = {i for i in set(items) & set(before)
               if before[i] is not None and items[i] is not None and before[i] != items[i]}
    schema = schema_changes(previous.get("features") or {}, features) if previous.get("features") else None
    reasons = []
    if removed:
        reasons.append(f"{len(removed)} items removed")
    if schema and _has_column_changes(schema):
        reasons.append("columns changed in " + ", ".join(schema["columns"]))
    if reasons:
        return "major", reasons
    if added:
        reasons.append(f"{len(added)} items added")
    if changed:
        reasons.append(f"{len(changed)} items changed")
    if reasons:
        return "minor", reasons
    return "patch", ["same items; metadata changed"]


def next_number(previous: dict | None, items: dict[str, str | None], features: dict) -> tuple[str, dict]:
    """The version number after `previous` (None: the first version) and why."""
    if previous is None or not previous.get("version_number"):
        return "1.0.0", {"level": "initial", "reasons": ["first version"], "previous": None}
    level, reasons = change_level(previous, items, features)
    major, minor, patch = parse_number(previous["version_number"])
    number = {"major": f"{major + 1}.0.0", "minor": f"{major}.{minor + 1}.0",
              "patch": f"{major}.{minor}.{patch + 1}"}[level]
    return number, {"level": level, "reasons": reasons,
                    "previous": {"version": previous["version"],
                                 "version_number": previous["version_number"]}}


def unique_number(number: str, taken: set[str]) -> str:
    """`number`, or the next one at the same level that no other version of the dataset has (two
    versions are never given one number, even by runs that raced before publishing was locked)."""
    major, minor, patch = parse_number(number)
    while f"{major}.{minor}.{patch}" in taken:
        if patch:
            patch += 1
        elif minor:
            minor += 1
        else:
            major += 1
    return f"{major}.{minor}.{patch}"


def tag_for(manifest: dict) -> str:
    """The git tag of a version on the Hub: "v" + its number."""
    return f"v{manifest['version_number']}"


# --- reading published versions ---------------------------------------------------------------


def version_path(out_dir: Path, manifest: dict) -> Path:
    return Path(out_dir) / manifest["dataset"] / manifest["version"]


def manifest_items(manifest: dict, out_dir: Path | None = None) -> dict[str, str | None]:
    """{item id: row digest} of a version; ids only (digest None) for manifests written before
    item digests were recorded, read from the version's parquet files."""
    if "items" in manifest:
        return manifest["items"]
    if out_dir is None:
        return {}
    items: dict[str, str | None] = {}
    for split in ITEM_SPLITS:
        shard = version_path(out_dir, manifest) / "data" / split / SHARD
        if shard.is_file():
            items.update({i: None for i in pq.read_table(shard, columns=["id"])["id"].to_pylist()})
    return items


def _datasets(out_dir: Path) -> list[str]:
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(p.name for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def all_versions(out_dir: Path, dataset: str | None = None) -> list[dict]:
    """Manifests of every complete version (of `dataset`, or of every dataset), oldest first."""
    names = [dataset] if dataset else _datasets(out_dir)
    return [m for name in names for m in list_versions(Path(out_dir), name)]


VERSION_FORMS = ("its number (1.2.0), its id (or its first 4+ characters), DATASET (its newest version), "
                 "DATASET/VERSION, or its folder")


def resolve_version(out_dir: str | Path, ref: str | Path, dataset: str | None = None) -> tuple[Path, dict]:
    """The folder and manifest of a version, however a user names it (the one resolver every
    command uses):

    - the path of a version folder (or of any folder in the published layout; one without a
      manifest gives {} as its manifest);
    - under `out_dir`: `DATASET` (its newest version) or `DATASET/REF`, where DATASET has versions;
    - REF: a content id or a unique prefix of 4+ characters, a number ("1.2.0" or "v1.2.0"), or
      "latest" (with `dataset`); `dataset` narrows any REF to that dataset.

    A `VersionError` says what was not found, or how to tell ambiguous versions apart."""
    out_dir = Path(out_dir)
    as_path = Path(ref)
    if (as_path / MANIFEST).is_file():
        return as_path, json.loads((as_path / MANIFEST).read_text())
    if (as_path / "data" / "benign" / SHARD).is_file():
        return as_path, {}
    ref = str(ref).strip("/")
    if dataset is None:
        head, _, tail = ref.rpartition("/")
        if head and list_versions(out_dir, head):
            dataset, ref = head, tail
        elif not head and list_versions(out_dir, ref):
            dataset, ref = ref, "latest"
    manifests = all_versions(out_dir, dataset)
    if ref == "latest":
        if not dataset:
            raise VersionError("'latest' needs a dataset (--dataset NAME, or DATASET/latest)")
        matches = manifests[-1:]
    else:
        number = ref.removeprefix("v")
        matches = [m for m in manifests if m.get("version_number") == number]
        if not matches and len(ref) >= 4:
            matches = [m for m in manifests if m["version"].startswith(ref)]
    where = f"{out_dir}/{dataset}" if dataset else str(out_dir)
    if not matches:
        raise VersionError(f"no version {ref!r} under {where} (`mossforge versions` lists them); name a "
                           f"version by {VERSION_FORMS}")
    if len(matches) > 1:
        found = ", ".join(f"{m['dataset']}/{m['version']}" for m in matches)
        datasets = sorted({m["dataset"] for m in matches})
        if len(datasets) > 1:  # advice that works as printed: naming the dataset resolves it
            advice = "name the dataset: " + " or ".join(f"--dataset {d}" for d in datasets)
        else:  # one dataset, two versions under one name: only an id tells them apart
            advice = "name the version by its id: " + " or ".join(m["version"] for m in matches)
        raise VersionError(f"{ref!r} is ambiguous under {where}: {found}; {advice}")
    return version_path(out_dir, matches[0]), matches[0]


def verify_version(path: Path) -> dict:
    """The manifest of the version at `path`, after checking every file against its checksum
    (and that no file was added): a tampered or damaged version is never pushed."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise VersionError(f"{path} is not a published version (no {MANIFEST})")
    manifest = json.loads((path / MANIFEST).read_text())
    expected = manifest.get("files", {})
    present = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()} - {MANIFEST}
    problems = [f"missing: {name}" for name in sorted(set(expected) - present)]
    problems += [f"not in the manifest: {name}" for name in sorted(present - set(expected))]
    problems += [f"checksum mismatch: {name}" for name in sorted(set(expected) & present)
                 if sha256_file(path / name) != expected[name]]
    if problems:
        raise VersionError(f"version {path} does not match its manifest:\n  " + "\n  ".join(problems))
    return manifest


# --- diff ---------------------------------------------------------------------------------------


def _item_rows(out_dir: Path, manifest: dict) -> dict[str, dict]:
    """{id: {question, stimulus_type, harm_category, split}} of a version's items."""
    rows: dict[str, dict] = {}
    for split in ITEM_SPLITS:
        shard = version_path(out_dir, manifest) / "data" / split / SHARD
        if shard.is_file():
            table = pq.read_table(shard, columns=["id", "stimulus_type", "harm_category", "question"])
            for row in table.to_pylist():
                rows[row["id"]] = {**row, "split": split}
    return rows


def _count_changes(old: dict[str, int], new: dict[str, int]) -> dict[str, list[int]]:
    return {k: [old.get(k, 0), new.get(k, 0), new.get(k, 0) - old.get(k, 0)]
            for k in sorted(set(old) | set(new)) if old.get(k, 0) != new.get(k, 0)}


def diff_versions(out_dir: Path, old: dict, new: dict) -> dict:
    """What changes for a user who moves from version `old` to `new` (two manifests)."""
    old_items, new_items = manifest_items(old, out_dir), manifest_items(new, out_dir)
    old_rows, new_rows = _item_rows(out_dir, old), _item_rows(out_dir, new)
    added = sorted(set(new_items) - set(old_items))
    removed = sorted(set(old_items) - set(new_items))
    changed = sorted(i for i in set(new_items) & set(old_items)
                     if old_items[i] is not None and new_items[i] is not None and old_items[i] != new_items[i])
    old_counts, new_counts = old["counts"], new["counts"]
    totals = {k: old_counts.get(k, 0) for k in ("benign", "contrast", "controversial", "dropped")}
    new_totals = {k: new_counts.get(k, 0) for k in totals}
    level, reasons = change_level(old, new_items, new.get("features") or {}) \
        if old.get("version_number") else (None, [])
    return {
        "dataset": new["dataset"],
        "from": {"version": old["version"], "version_number": old.get("version_number"),
                 "created_at": old["created_at"]},
        "to": {"version": new["version"], "version_number": new.get("version_number"),
               "created_at": new["created_at"]},
        "change": {"level": level, "reasons": reasons},
        "items": {
            "added": [{"id": i, **{k: v for k, v in new_rows.get(i, {}).items() if k != "id"}} for i in added],
            "removed": [{"id": i, **{k: v for k, v in old_rows.get(i, {}).items() if k != "id"}} for i in removed],
            "changed": changed,
            "kept": len(set(new_items) & set(old_items)),
        },
        "counts": {
            "total": _count_changes(totals, new_totals),
            "by_type": _count_changes(old_counts["by_type"], new_counts["by_type"]),
            "by_category": _count_changes(old_counts["by_category"], new_counts["by_category"]),
        },
        "schema": schema_changes(old.get("features") or {}, new.get("features") or {})
        if old.get("features") and new.get("features") else None,
        "config_changed": old.get("config_hash") != new.get("config_hash"),
    }
