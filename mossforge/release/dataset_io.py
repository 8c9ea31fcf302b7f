"""Reading published dataset folders: their splits, their questions.

(A version is named, by folder, number, id, `DATASET` or `DATASET/VERSION`, with
`mossforge.release.versions.resolve_version`.) Rows are read with pyarrow straight from the
parquet shards, so no `datasets` import is needed to evaluate or dedup against a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from mossforge.config import ConfigError
from mossforge.release.layout import ITEM_SPLITS, SHARD

SPLITS = ("benign", "contrast")


@dataclass(frozen=True)
class Item:
    """One query of a published version, as a target is asked it."""

    split: str  # "benign" or "contrast"
    id: str
    stimulus_type: str
    harm_category: str
    question: str
    image: bytes | None  # the embedded PNG, or None for text-only items
    description: str | None = None  # what the image shows (for text-only targets), where known


def is_dataset_folder(path: Path) -> bool:
    return (Path(path) / "data" / "benign" / SHARD).is_file()


def read_items(folder: Path, split: str) -> list[Item]:
    """Every row of one split, in file order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    shard = Path(folder) / "data" / split / SHARD
    if not shard.is_file():
        raise ConfigError(f"{folder}: no {split} split ({shard} is missing)")
    table = pq.read_table(shard, columns=["id", "stimulus_type", "harm_category", "question", "image"])
    descriptions = _descriptions(Path(folder), split)
    items = []
    for row in table.to_pylist():
        image = (row["image"] or {}).get("bytes")
        items.append(Item(split, row["id"], row["stimulus_type"], row["harm_category"],
                          row["question"], image, descriptions.get(row["id"])))
    return items


def _descriptions(folder: Path, split: str) -> dict[str, str]:
    """Image descriptions by item id, from the benign split (which carries the item's own and its
    contrast's); a contrast that changed only the question shows the item's own image."""
    shard = folder / "data" / "benign" / SHARD
    names = set(pq.read_schema(shard).names) if shard.is_file() else set()
    if "image_description" not in names:
        return {}
    columns = ["id", "image_description"] + (["contrast"] if "contrast" in names else [])
    out = {}
    for row in pq.read_table(shard, columns=columns).to_pylist():
        own = row["image_description"]
        if split == "contrast":
            own = ((row.get("contrast") or {}).get("image_description")) or own
        if own:
            out[row["id"]] = own
    return out


def dataset_questions(folder: Path, splits: tuple[str, ...] = ITEM_SPLITS) -> list[str]:
    """The questions of a version's items (benign, and controversial where there is such a split):
    a reference set for dedup."""
    questions: list[str] = []
    for split in splits:
        shard = Path(folder) / "data" / split / SHARD
        if not shard.is_file():
            continue
        questions += [q for q in pq.read_table(shard, columns=["question"])["question"].to_pylist() if q]
    return questions
