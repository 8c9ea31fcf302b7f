"""dedup: near-duplicate questions within a type, against earlier published versions and against
reference sets a user supplies. Before images, so no GPU time goes to duplicates."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mossforge.config import Config, ConfigError
from mossforge.stage import Drop, Keep, Stage, StageContext, StageReport


def survived(report: StageReport) -> dict[str, int]:
    """{type: candidates that survived dedup} from the dedup stage's funnel row."""
    return {k.split(":", 1)[1]: v for k, v in report.details.items() if k.startswith("survived:")}


def read_question_file(path: str, column: str, where: str = "dedup.reference_files") -> list[str]:
    """Questions from a csv, jsonl, parquet or plain-text (one per line) reference file; errors
    begin with `where` (the config key, or the command line's flag)."""
    import pyarrow.parquet as pq

    from mossforge.tables import check_utf8

    file = Path(path)
    if not file.exists():
        raise ConfigError(f"{where}: {path} does not exist")
    from mossforge.release.dataset_io import dataset_questions, is_dataset_folder

    if is_dataset_folder(file):  # a published or imported version: its benign questions
        return dataset_questions(file)
    suffix = file.suffix.lower()
    if suffix in (".txt", ".csv", ".jsonl", ".ndjson"):
        check_utf8(file, ConfigError)
    if suffix == ".txt":
        return [line.strip() for line in file.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if suffix == ".csv":
        with file.open(newline="", encoding="utf-8-sig") as handle:  # (-sig: Excel's "CSV UTF-8" starts with a BOM)
            rows = list(csv.DictReader(handle))
    elif suffix in (".jsonl", ".ndjson"):
        rows = [json.loads(line) for line in file.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    elif suffix == ".parquet":
        rows = pq.read_table(file).to_pylist()
    else:
        raise ConfigError(f"{where}: {path}: unsupported format {suffix!r} "
                          "(use .csv, .jsonl, .parquet or .txt)")
    if rows and column not in rows[0]:
        raise ConfigError(f"{where}: {path} has no column {column!r} "
                          f"(columns: {', '.join(rows[0])})")
    return [str(row[column]) for row in rows if row.get(column)]


def load_references(config: Config) -> list[tuple[str, str, str | None]]:
    """(question, source, item id or None) for every reference the run dedups against."""
    from mossforge.release.publish import published_questions

    references: list[tuple[str, str, str | None]] = []
    if config.dedup.against_published:
        for version, item_id, question in published_questions(Path(config.run.out_dir), config.dataset.name):
            references.append((question, f"version:{version}", item_id))
    for ref in config.dedup.reference_files:
        references.extend((q, f"file:{Path(ref.path).name}", None)
                          for q in read_question_file(ref.path, ref.column))
    return references


def quota(records: list, per_type: int) -> tuple[list, list]:
    """The first `per_type` records of each type (in plan order), and the rest: `plan.per_type`
    is what a run publishes at most, a margin drawn for dedup's losses is not."""
    taken: Counter[str] = Counter()
    kept, surplus = [], []
    for record in records:
        taken[record.stimulus_type] += 1
        (kept if taken[record.stimulus_type] <= per_type else surplus).append(record)
    return kept, surplus


class DedupStage(Stage):
    """Drop exact and near-duplicate questions within each type, and of the references; then keep
    at most `plan.per_type` of each type (the rest: `surplus`).

    An item that is *the same item* as one in an earlier version (same id) is not a duplicate of
    it: it keeps its id across versions."""

    name = "dedup"
    scope = "all"

    def cache_inputs(self, config: Config) -> dict:
        # Versions this same config published hold the same items (same ids), which dedup never
        # counts against themselves: only other versions can change its result (and its cache key).
        from mossforge.release.layout import list_versions

        return {"published": [m["version"] for m in list_versions(Path(config.run.out_dir), config.dataset.name)
                              if m["config_hash"] != config.config_hash()]}

    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        config = ctx.config
        if not config.dedup.enabled:
            ctx.skip("dedup.enabled = false")
            unique, dropped = records, []
        else:
            unique, dropped = self._dedup(records, ctx)
        for t, n in Counter(r.stimulus_type for r in unique).items():
            ctx.count(f"survived:{t}", n)
        if ctx.params.get("round"):  # refine's variants: no per-type quota (the keep rule decides)
            kept, surplus = unique, []
        else:
            kept, surplus = quota(unique, config.plan.per_type)
        yield from (Keep(r) for r in kept)
        yield from (Drop(r, reason) for r, reason in dropped)
        yield from (Drop(r, "surplus") for r in surplus)

    def _dedup(self, records: list, ctx: StageContext) -> tuple[list, list]:
        from mossforge.filters.dedup import find_duplicates
        from mossforge.filters.embeddings import MiniLMEmbedder

        config = ctx.config
        references = load_references(config)
        if ctx.params.get("against"):  # refine: the run's candidates kept so far
            from mossforge.stage import read_records

            references += [(r.question, "run", r.id) for r in read_records(ctx.params["against"])]
        if references:
            ctx.note(f"{len(references)} references")
        embedder = MiniLMEmbedder()
        kept, dropped = [], []
        by_type: dict[str, list] = {}
        for record in records:
            by_type.setdefault(record.stimulus_type, []).append(record)
        for stimulus_type, group in by_type.items():
            ids = {r.id for r in group}
            refs = [r for r in references if r[2] not in ids]  # the same item is not its own duplicate
            outcome = find_duplicates([r.question for r in group], config.dedup.threshold_for(stimulus_type),
                                      embedder=embedder, references=[q for q, _, _ in refs])
            for i, record in enumerate(group):
                rep = int(outcome.representative[i])
                result = record.dedup
                result.similarity = round(float(outcome.similarity[i]), 4)
                if not outcome.is_duplicate[i]:
                    result.decision, result.cluster_id = "kept", record.id
                    kept.append(record)
                    continue
                result.decision, result.reason = "duplicate", outcome.reason[i]
                if rep >= 0:
                    result.cluster_id = result.duplicate_of = group[rep].id
                else:
                    question, source, item_id = refs[int(outcome.reference_match[i])]
                    result.reason = ("earlier_version" if source.startswith("version:")
                                     else "kept_candidate" if source == "run" else "reference")
                    result.cluster_id = result.duplicate_of = item_id or f"ref:{source}:{question[:60]}"
                dropped.append((record, result.reason))
        return kept, dropped
