"""The on-disk layout of published versions: file names, and reading what is there.

    <outputs>/<dataset>/<version>/manifest.json         the version's manifest (written last)
    <outputs>/<dataset>/<version>/data/<split>/<SHARD>  one parquet shard per split

A small module of its own so that publishing, the card, the report, versions, the Hub and the
importers all share these names without importing one another (no import cycles).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST = "manifest.json"
SHARD = "test-00000-of-00001.parquet"
ITEM_SPLITS = ("benign", "controversial")  # the splits whose rows are items (contrast mirrors them)
LOCK = ".lock"  # held by a run for its whole length: one run at a time per dataset folder
PUBLISH_LOCK = ".publish.lock"  # held while a version's number is chosen and its folder renamed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict:
    """The manifest of the version in `folder`, validated (`mossforge.release.manifest.Manifest`)
    and returned as the plain dict it was written as. Raises `ManifestError` naming the file."""
    from mossforge.release.manifest import load_manifest

    return load_manifest(Path(folder) / MANIFEST).to_dict()


def list_versions(out_dir: Path, dataset: str) -> list[dict]:
    """Manifests of the complete versions of `dataset`, oldest first."""
    root = Path(out_dir) / dataset
    if not root.is_dir():
        return []
    manifests = []
    for child in root.iterdir():
        if child.name.startswith(".") or not (child / MANIFEST).is_file():
            continue  # temporary folders of a publish in progress (or killed) are not versions
        manifests.append(read_manifest(child))
    return sorted(manifests, key=_publication_order)


def _publication_order(manifest: dict) -> tuple:
    # created_at has one-second resolution: the version number orders versions of one second
    number = manifest.get("version_number")
    return manifest["created_at"], tuple(int(p) for p in number.split(".")) if number else ()
