"""Human review round trip over files: items from a published version (or a stage's records
parquet) out to a CSV plus images, reviewers' labels back in.

The labels can be applied two ways: `import_review` writes the items with the reviewers' votes
folded in (a records parquet, to inspect or hand on), and `consensus.human_labels = "<csv>"` in a
config makes the next `mossforge run` apply them in the consensus stage and publish a new version
(the panel's answers come from the model-call cache, so no judge is asked again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from mossforge.config import Config, config_from_dict
from mossforge.filters.consensus import Rule
from mossforge.filters.review import apply_human_labels, export_review, read_review
from mossforge.images import ImageStore
from mossforge.release.layout import MANIFEST, SHARD, read_manifest
from mossforge.schema import Candidate, arrow_schema
from mossforge.stage import read_records, write_records

SPLITS = ("benign", "controversial")


def load_items(source: Path, images: Path | None = None
               ) -> tuple[list[Candidate], Callable[[Candidate], Path | None], Config | None]:
    """The items of `source` (a version folder: its benign and controversial splits; or a records
    parquet with `images` the image store's root), how to find each image, and the config that
    built them (a version's; None for a parquet)."""
    source = Path(source)
    if source.is_dir():
        if not (source / MANIFEST).is_file():
            raise FileNotFoundError(f"{source} is not a published version (no {MANIFEST})")
        manifest = read_manifest(source)
        columns = [name if name != "image" else "image_info" for name in arrow_schema().names]
        records = []
        for split in SPLITS:
            shard = source / "data" / split / SHARD
            if shard.is_file():
                for row in pq.read_table(shard, columns=columns).to_pylist():
                    row["image"] = row.pop("image_info")
                    records.append(Candidate.model_validate(row))

        def image_path(record: Candidate) -> Path | None:
            return source / "images" / f"{record.image.sha256}.png" if record.image else None

        return records, image_path, config_from_dict(manifest["config"], str(source / MANIFEST))
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file or version folder")
    if images is None:
        raise ValueError("a records parquet needs --images (the image store's root)")
    store = ImageStore(images)
    return read_records([source]), (lambda r: store.path(r.image) if r.image else None), None


def export_items(source: Path, out_dir: Path, images: Path | None = None) -> tuple[Path, int]:
    records, image_path, _ = load_items(source, images)
    return export_review(records, image_path, out_dir), len(records)


def import_review(csv_path: Path, source: Path, out: Path, mode: str = "override",
                  config: Config | None = None, images: Path | None = None) -> dict:
    """Fold the reviewed CSV into the items of `source` and write them to `out` (records parquet).
    `join` aggregates with the consensus rule of `config`, else of the version's own config."""
    records, _, built_with = load_items(source, images)
    cfg = config or built_with or config_from_dict({})
    labels = read_review(csv_path, known_ids={r.id for r in records})
    rule = Rule.from_settings(cfg.consensus)
    weights = {j.name: j.weight for j in cfg.judges}
    changes: Counter[str] = Counter()
    for record in records:
        before = record.consensus_label.consensus
        apply_human_labels(record.consensus_label, labels.get(record.id, []), mode, rule, weights)
        if record.id in labels:
            after = record.consensus_label.consensus
            if after is None:  # (it said "confirmed None"): join with too few votes for the rule
                changes["no label (too few votes for the consensus rule; --mode override lets reviewers decide)"] += 1
            else:
                changes[f"{before or 'none'}->{after}" if before != after else f"confirmed {after}"] += 1
    write_records(records, Path(out))
    return {"items": len(records), "reviewed": len(labels), "changes": dict(sorted(changes.items())),
            "out": str(out)}
