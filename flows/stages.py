"""The pipeline's stages as plain functions over files: batches in, batches out.

Prefect tasks in `flows/build.py` wrap these one to one; they are kept free of Prefect so that the
benchmarks can run the same work without an orchestrator and measure what Prefect itself costs.
Each stage reads parquet batches of candidate records, writes its own, and writes the records it
drops aside (with the reason) so the funnel can always be explained.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from mossforge import progress
from mossforge import code_version
from mossforge.client import ModelClient, accounting_of
from mossforge.config import Config, ConfigError
from mossforge.images import ImageStore
from mossforge.schema import Candidate, from_table, to_table

STAGES = ("plan", "generate", "dedup", "render", "target_check", "consensus_label", "publish")


@dataclass
class StageReport:
    """One row of the funnel: what entered a stage, what left it, and why."""

    stage: str
    ran: bool
    entered: int
    kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    details: dict[str, int] = field(default_factory=dict)  # stage-specific counts, summed on merge
    cached: bool = False  # set by the flow: every task of the stage came from Prefect's cache

    @property
    def status(self) -> str:
        return ("cached" if self.cached else "ran") if self.ran else "not_run"

    def as_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


def merge_reports(stage: str, reports: Iterable[StageReport]) -> StageReport:
    reports = list(reports)
    dropped: Counter[str] = Counter()
    details: Counter[str] = Counter()
    for report in reports:
        dropped.update(report.dropped)
        details.update(report.details)
    return StageReport(
        stage=stage,
        ran=any(r.ran for r in reports) if reports else False,
        entered=sum(r.entered for r in reports),
        kept=sum(r.kept for r in reports),
        dropped=dict(sorted(dropped.items())),
        seconds=round(sum(r.seconds for r in reports), 3),
        note="; ".join(sorted({r.note for r in reports if r.note})),
        details=dict(sorted(details.items())),
    )


# --- files ------------------------------------------------------------------------------------


def write_records(records: Sequence[Candidate], path: Path) -> Path:
    """Write atomically: a killed run never leaves a truncated batch under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(to_table(records), tmp)
    os.replace(tmp, path)
    return path


def read_records(paths: Iterable[str | Path]) -> list[Candidate]:
    records: list[Candidate] = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(
                f"stage output {path} is missing (was the work directory removed?); "
                "re-run with --fresh to recompute cached stages"
            )
        records.extend(from_table(pq.read_table(path)))
    return records


def batch_paths(directory: Path, count: int) -> list[Path]:
    return [directory / f"batch-{i:05d}.parquet" for i in range(count)]


def chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- plan -------------------------------------------------------------------------------------


def seed_bank():
    from mossforge.generators.seedbank import SeedBank

    return SeedBank()


def plan_stage(config: Config, run_dir: Path, draw: dict[str, int] | None = None,
               already: dict[str, int] | None = None, round_: int = 0) -> tuple[list[str], StageReport]:
    """Draw the slots of the run and write them in generation-sized batches.

    `draw`: slots per type (default: `plan.per_type` and a margin for what dedup removes, see
    `generators.plan.first_draw`); `already`: how many of each type earlier rounds drew (a larger
    draw extends a smaller one, so only the new slots are written); `round_` names the batches."""
    from mossforge.generators.plan import draw_slots, first_draw

    started = time.perf_counter()
    space = seed_bank().slot_space()
    space = {t: space[t] for t in config.plan.types}
    draw = draw or first_draw(config.plan.per_type, {t: len(v) for t, v in space.items()})
    try:
        slots = draw_slots(space, draw, config.plan.seed)
    except ValueError as error:
        raise ConfigError(f"plan.per_type: {error}") from None
    seen: Counter[str] = Counter()
    new = []
    for slot in slots:
        seen[slot.stimulus_type] += 1
        if seen[slot.stimulus_type] > (already or {}).get(slot.stimulus_type, 0):
            new.append(slot)
    prefix = f"batch-r{round_}-" if round_ else "batch-"
    out = []
    for i, chunk in enumerate(chunks(new, config.generate.batch_size)):
        path = run_dir / "plan" / f"{prefix}{i:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(pa.Table.from_pylist([asdict(s) for s in chunk]), tmp)
        os.replace(tmp, path)
        out.append(str(path))
    report = StageReport("plan", True, entered=len(new), kept=len(new),
                         seconds=time.perf_counter() - started,
                         note=f"{len(new)} slots over {len(space)} types" + (f" (top-up {round_})" if round_ else ""),
                         details={f"drawn:{t}": n - (already or {}).get(t, 0) for t, n in draw.items()})
    return out, report


def slot_counts(config: Config) -> dict[str, int]:
    """How many distinct slots the generator can realise for each planned type."""
    space = seed_bank().slot_space()
    return {t: len(space[t]) for t in config.plan.types}


def survived(report: StageReport) -> dict[str, int]:
    """{type: candidates that survived dedup} from the dedup stage's funnel row."""
    return {k.split(":", 1)[1]: v for k, v in report.details.items() if k.startswith("survived:")}


def _quota(records: list[Candidate], per_type: int) -> tuple[list[Candidate], list[Candidate]]:
    """The first `per_type` records of each type (in plan order), and the rest: `plan.per_type`
    is what a run publishes at most, a margin drawn for dedup's losses is not."""
    taken: Counter[str] = Counter()
    kept, surplus = [], []
    for record in records:
        taken[record.stimulus_type] += 1
        (kept if taken[record.stimulus_type] <= per_type else surplus).append(record)
    for record in surplus:
        record.drop("dedup", "surplus")
    return kept, surplus


# --- the model client: one per run and process, shared by every batch -------------------------

_clients: dict[str, ModelClient] = {}
_clients_lock = threading.Lock()
# Optional per-call slot for this process's clients (set by flows/limits.py when tasks run in
# several processes: then a Prefect global limit, not this process's semaphore, bounds an endpoint).
call_slot = None


# A task in a worker process gets a client of its own (its scope), so its calls can be counted
# exactly and sent back to the flow (flows/monitor.py); in the flow's process the scope is "".
client_scope: ContextVar[str] = ContextVar("mossforge_client_scope", default="")


def _client_key(config: Config) -> str:
    return f"{config.config_hash()}:{config.cache_path()}:{config.cache.mode}:{client_scope.get()}"


def model_client(config: Config) -> ModelClient:
    """The run's client: its per-endpoint concurrency bound holds across all concurrent batches."""
    key = _client_key(config)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = ModelClient(list(config.endpoints.values()), cache_dir=config.cache_path(),
                                        cache_mode=config.cache.mode, call_slot=call_slot)
        return _clients[key]


def close_model_client(config: Config, extra: list[dict] = ()) -> dict | None:
    """Close the run's client and return its accounting, with `extra` tally rows of the run's
    clients in other processes (None if no model was called)."""
    with _clients_lock:
        client = _clients.pop(_client_key(config), None)
    if client is None and not extra:
        return None
    rows = [*extra]
    if client is not None:
        rows += client.tally_rows()
        client.close()
    return accounting_of(config.endpoints, config.cache.mode, rows)


def close_scoped_client(config: Config) -> list[dict]:
    """Close the current scope's client; its raw counts (empty if no model was called)."""
    with _clients_lock:
        client = _clients.pop(_client_key(config), None)
    if client is None:
        return []
    rows = client.tally_rows()
    client.close()
    return rows


# --- generate ---------------------------------------------------------------------------------


def generate_batch(config: Config, slots_path: str, out_path: str) -> tuple[str, StageReport]:
    from mossforge.generators.plan import Slot

    started = time.perf_counter()
    slots = [Slot(**row) for row in pq.read_table(slots_path).to_pylist()]
    config_hash, version = config.config_hash(), code_version()
    dropped: dict[str, int] = {}
    if config.generate.generator == "llm":
        from mossforge.generators.llm import LLMGenerator

        settings = config.generate
        generator = LLMGenerator(
            model_client(config), settings.endpoint, candidates_per_call=settings.candidates_per_call,
            temperature=settings.temperature, few_shot=settings.few_shot,
            avoid_recent=settings.avoid_recent, structured=settings.structured, repair=settings.repair,
            calls_in_flight=settings.calls_in_flight)
        records, stats = generator.generate(slots, seed=config.plan.seed, config_hash=config_hash,
                                            code_version=version)
        dropped = dict(stats.dropped)
        note = f"llm via endpoint {settings.endpoint!r} ({config.endpoints[settings.endpoint].model})"
    else:
        bank = seed_bank()
        records = [bank.generate(slot, seed=config.plan.seed, config_hash=config_hash, code_version=version)
                   for slot in slots]
        note = "seed bank"
    write_records(records, Path(out_path))
    progress.advance("generate", len(slots))
    return out_path, StageReport("generate", True, entered=len(slots), kept=len(records),
                                 dropped=dropped, seconds=time.perf_counter() - started, note=note)


# --- dedup ------------------------------------------------------------------------------------


def _read_question_file(path: str, column: str) -> list[str]:
    """Questions from a csv, jsonl, parquet or plain-text (one per line) reference file."""
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"dedup.reference_files: {path} does not exist")
    from mossforge.release.dataset_io import dataset_questions, is_dataset_folder

    if is_dataset_folder(file):  # a published or imported version: its benign questions
        return dataset_questions(file)
    suffix = file.suffix.lower()
    if suffix == ".txt":
        return [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffix == ".csv":
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    elif suffix in (".jsonl", ".ndjson"):
        rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif suffix == ".parquet":
        rows = pq.read_table(file).to_pylist()
    else:
        raise ConfigError(f"dedup.reference_files: {path}: unsupported format {suffix!r} "
                          "(use .csv, .jsonl, .parquet or .txt)")
    if rows and column not in rows[0]:
        raise ConfigError(f"dedup.reference_files: {path} has no column {column!r} "
                          f"(columns: {', '.join(rows[0])})")
    return [str(row[column]) for row in rows if row.get(column)]


def load_references(config: Config) -> list[tuple[str, str, str | None]]:
    """(question, source, item id or None) for every reference the run dedups against."""
    from mossforge.release.publish import published_questions

    references: list[tuple[str, str, str | None]] = []
    if config.dedup.against_published:
        for version, item_id, question in published_questions(Path(config.run.out_dir),
                                                               config.dataset.name):
            references.append((question, f"version:{version}", item_id))
    for ref in config.dedup.reference_files:
        references.extend((q, f"file:{Path(ref.path).name}", None)
                          for q in _read_question_file(ref.path, ref.column))
    return references


def dedup_stage(config: Config, paths: Sequence[str], run_dir: Path) -> tuple[list[str], StageReport]:
    """Drop exact and near-duplicate questions within each type, and of the references.

    An item that is *the same item* as one in an earlier version (same id) is not a duplicate of
    it: it keeps its id across versions.
    """
    from mossforge.filters.dedup import find_duplicates
    from mossforge.filters.embeddings import MiniLMEmbedder

    started = time.perf_counter()
    records = read_records(paths)
    if not config.dedup.enabled:
        counts = Counter(r.stimulus_type for r in records)
        kept, surplus = _quota(records, config.plan.per_type)
        write_records(surplus, run_dir / "dropped" / "dedup.parquet")
        return _rebatch(kept, run_dir / "dedup", config.render.batch_size), StageReport(
            "dedup", False, len(records), len(kept), dropped={"surplus": len(surplus)} if surplus else {},
            note="dedup.enabled = false", details={f"survived:{t}": n for t, n in counts.items()})

    references = load_references(config)
    embedder = MiniLMEmbedder()
    kept: list[Candidate] = []
    dropped: list[Candidate] = []
    by_type: dict[str, list[Candidate]] = {}
    for record in records:
        by_type.setdefault(record.stimulus_type, []).append(record)
    for stimulus_type, group in by_type.items():
        ids = {r.id for r in group}
        refs = [r for r in references if r[2] not in ids]  # the same item is not its own duplicate
        outcome = find_duplicates(
            [r.question for r in group],
            config.dedup.threshold_for(stimulus_type),
            embedder=embedder,
            references=[q for q, _, _ in refs],
        )
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
                result.reason = "earlier_version" if source.startswith("version:") else "reference"
                result.cluster_id = result.duplicate_of = item_id or f"ref:{source}:{question[:60]}"
            record.drop("dedup", result.reason)
            dropped.append(record)
    unique = Counter(r.stimulus_type for r in kept)
    kept, surplus = _quota(kept, config.plan.per_type)
    dropped += surplus
    write_records(dropped, run_dir / "dropped" / "dedup.parquet")
    progress.advance("dedup", len(records))
    report = StageReport("dedup", True, len(records), len(kept),
                         dropped=dict(Counter(r.drop_reason for r in dropped)),
                         seconds=time.perf_counter() - started,
                         note=f"{len(references)} references" if references else "",
                         details={f"survived:{t}": n for t, n in unique.items()})
    return _rebatch(kept, run_dir / "dedup", config.render.batch_size), report


def _rebatch(records: Sequence[Candidate], directory: Path, size: int) -> list[str]:
    parts = chunks(sorted(records, key=lambda r: r.id), size) or [[]]
    return [str(write_records(part, path)) for part, path in zip(parts, batch_paths(directory, len(parts)))]


# --- render -----------------------------------------------------------------------------------


def render_batch(config: Config, in_path: str, out_path: str, image_root: str) -> tuple[str, StageReport]:
    from mossforge.generators.render_offline import OfflineRenderer

    if config.render.renderer != "offline":
        return render_model_batch(config, in_path, out_path, image_root)
    from mossforge.generators.render_pool import render_offline

    started = time.perf_counter()
    OfflineRenderer(size=config.render.size)  # a bad size fails here, with its message
    records = read_records([in_path])
    refs = render_offline(records, config.render.size, image_root, config.run.cpu_workers,
                          done=lambda n: progress.advance("render", n))  # over every core
    for record, (image, contrast) in zip(records, refs):
        record.image, record.contrast.image = image, contrast
        record.flags.synthetic = True
        record.flags.has_text = True  # every offline scene card carries typeset text
    write_records(records, Path(out_path))
    return out_path, StageReport("render", True, len(records), len(records),
                                 seconds=time.perf_counter() - started,
                                 note=f"offline Pillow renderer, {config.render.size}px")


def render_dropped_path(out_path: str | Path) -> Path:
    """Where a render batch writes the candidates it dropped (run_dir/dropped/render-<batch>)."""
    out = Path(out_path)
    return out.parent.parent / "dropped" / f"render-{out.name}"


def _import_callable(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"render.diffusion.nsfw_checker: cannot import {spec!r}: {error}") from None


def image_provider(config: Config):
    """The configured model renderer: a diffusion pipeline (loaded once per process) or an API."""
    r = config.render
    if r.renderer == "diffusion":
        from mossforge.generators.diffusion import DiffusionRenderer

        d = r.diffusion
        return DiffusionRenderer(
            d.model, device=d.device, dtype=d.dtype, steps=d.steps, guidance=d.guidance,
            width=d.width or r.size, height=d.height or r.size, scheduler=d.scheduler,
            negative_prompt=d.negative_prompt, batch_size=d.batch_size,
            max_rerenders=d.max_rerenders, blank_std=d.blank_std,
            nsfw_check=_import_callable(d.nsfw_checker) if d.nsfw_checker else None)
    from mossforge.generators.image_api import ImageApiRenderer

    return ImageApiRenderer(model_client(config), r.endpoint, size=r.image_api.size or f"{r.size}x{r.size}",
                            params=r.image_api.params, blank_std=r.image_api.blank_std)


def render_model_batch(config: Config, in_path: str, out_path: str,
                       image_root: str) -> tuple[str, StageReport]:
    """Render a batch with diffusion or an image API; flagged, blank or refused images are dropped."""
    from mossforge.generators.render_images import render_candidates

    started = time.perf_counter()
    provider = image_provider(config)
    template = (config.render.diffusion if config.render.renderer == "diffusion"
                else config.render.image_api).prompt_template
    records = read_records([in_path])
    outcome = render_candidates(records, ImageStore(image_root), provider, prompt_template=template)
    kept = [r for r in records if r.status != "dropped"]
    write_records([r for r in records if r.status == "dropped"], render_dropped_path(out_path))
    write_records(kept, Path(out_path))
    progress.advance("render", len(records))
    details = {"rendered": outcome.rendered, "render_cache_hits": outcome.cache_hits,
               **outcome.provider_stats}
    return out_path, StageReport("render", True, len(records), len(kept), dropped=dict(outcome.dropped),
                                 seconds=time.perf_counter() - started, note=provider.note,
                                 details=details)


def image_dedup_stage(config: Config, paths: Sequence[str], run_dir: Path) -> tuple[list[str], dict]:
    """Perceptual-hash near-duplicates among all rendered images (across batches).

    Always counted; dropped (all but the first by id) when render.near_duplicate_images = "drop".
    """
    from mossforge.filters.image_dedup import near_duplicates

    records = sorted(read_records(paths), key=lambda r: r.id)
    matches = near_duplicates([r.image.phash if r.image else None for r in records],
                              config.render.phash_distance)
    found = sum(m is not None for m in matches)
    result = {"near_duplicate_images": found, "mode": config.render.near_duplicate_images,
              "distance": config.render.phash_distance}
    if config.render.near_duplicate_images != "drop" or not found:
        return list(paths), result
    dropped = []
    for record, match in zip(records, matches):
        if match is not None:
            record.drop("render", "near_duplicate_image")
            dropped.append(record)
    write_records(dropped, run_dir / "dropped" / "render-near-duplicates.parquet")
    kept = [r for r in records if r.status != "dropped"]
    return _rebatch(kept, run_dir / "render-dedup", config.render.batch_size), result


def with_image_dedup(report: StageReport, result: dict | None) -> StageReport:
    """The render row of the funnel, with the near-duplicate images found (and dropped)."""
    if not result:
        return report
    found = result["near_duplicate_images"]
    if result["mode"] == "drop" and found:
        report.kept -= found
        report.dropped = dict(sorted({**report.dropped, "near_duplicate_image": found}.items()))
    action = "dropped" if result["mode"] == "drop" else "kept (report only)"
    extra = f"{found} near-duplicate images (pHash distance <= {result['distance']}), {action}"
    report.note = f"{report.note}; {extra}" if report.note else extra
    return report


# --- target check ---------------------------------------------------------------------------


def target_check_batch(config: Config, in_path: str, out_path: str, dropped_path: str,
                       image_root: str) -> tuple[str, StageReport]:
    """Ask every target every query of the batch; keep what at least k of n refuse."""
    from mossforge.filters.targets import Query, ask_targets, decide, label_answers

    started = time.perf_counter()
    settings = config.target_check
    store = ImageStore(image_root)
    records = read_records([in_path])
    queries = [Query(r.question, store.path(r.image) if r.image else None, r.image_description) for r in records]
    client = model_client(config)
    answers = ask_targets(client, config.targets, queries)
    labelled = {
        target.name: label_answers(client, target, config.endpoints[target.endpoint].model, queries,
                                   answers[target.name], settings, settings.judge)
        for target in config.targets
    }
    kept, dropped = [], []
    details: Counter[str] = Counter()
    for n, record in enumerate(records):
        results = [labelled[t.name][n] for t in config.targets]
        decision = decide(results, settings)
        record.target_check = decision.check
        for result in results:
            details[f"asked:{result.target}"] += 1
            details[f"{result.label}:{result.target}"] += 1
        if decision.keep:
            details[f"tier:{decision.check.tier}"] += 1
            kept.append(record)
        else:
            record.drop("target_check", decision.drop_reason)
            dropped.append(record)
    write_records(kept, Path(out_path))
    write_records(dropped, Path(dropped_path))
    progress.advance("target_check", len(records))
    rule = (f"keep if >= {settings.min_refusals} of {len(config.targets)} targets refuse"
            f" ({'full or partial' if settings.count_partial else 'full only'}; {settings.classifier})")
    return out_path, StageReport("target_check", True, len(records), len(kept),
                                 dropped=dict(Counter(r.drop_reason for r in dropped)),
                                 seconds=time.perf_counter() - started, note=rule, details=dict(details))


# --- consensus label: wired in, given models by a later issue --------------------------------


def not_run_stage(stage: str, paths: Sequence[str], reason: str) -> tuple[list[str], StageReport]:
    """A stage with nothing configured: every item passes through with the stage `not_run`."""
    count = sum(pq.read_metadata(p).num_rows for p in paths)
    progress.advance(stage, count)
    return list(paths), StageReport(stage, False, count, count, note=reason)


# --- consensus label: the judge panel -----------------------------------------------------------


def human_labels_digest(config: Config) -> str | None:
    """sha256 of the reviewed CSV the config names (part of the consensus task's cache key)."""
    from mossforge.release.publish import sha256_file

    path = config.consensus.human_labels
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"consensus.human_labels: {path} does not exist")
    return sha256_file(Path(path))


def consensus_batch(config: Config, in_path: str, run_dir: Path, image_root: str) -> dict:
    """Label one batch with the judge panel. Survivors (benign, and controversial when
    `consensus.controversial_split` is set: publishing puts those in their own split) and dropped
    items go to their own files. Returns their paths, the funnel row and the batch's panel
    statistics (Fleiss rows, contrast check, abstentions) for `consensus_summary`."""
    from mossforge.filters.consensus import Rule, aggregate, count_row
    from mossforge.filters.judges import Panel
    from mossforge.filters.review import apply_human_labels, read_review

    started = time.perf_counter()
    settings = config.consensus
    rule = Rule.from_settings(settings)
    weights = {j.name: j.weight for j in config.judges}
    store = ImageStore(image_root)
    records = read_records([in_path])
    humans = read_review(Path(settings.human_labels)) if settings.human_labels else {}

    def image(ref):
        return store.path(ref) if ref is not None else None

    panel = Panel(model_client(config), config.judges)
    queries = [(r.question, image(r.image)) for r in records]
    contrasts = [(r.contrast.question or r.question, image(r.contrast.image or r.image)) for r in records]
    with ThreadPoolExecutor(max_workers=2) as pool:  # items and contrasts in flight together
        item_votes = pool.submit(panel.judge, queries, "consensus_label")
        contrast_votes = (pool.submit(panel.judge, contrasts, "consensus_contrast")
                          if settings.contrast_check else None)
        item_votes = item_votes.result()
        contrast_votes = contrast_votes.result() if contrast_votes else [[] for _ in records]

    kept, dropped = [], []
    controversial = 0
    fleiss_rows, abstentions, labels, contrast_labels = [], Counter(), Counter(), Counter()
    for record, votes, c_votes in zip(records, item_votes, contrast_votes):
        outcome = aggregate(votes, rule, weights)
        label = record.consensus_label
        label.votes, label.rule, label.valid_votes = votes, settings.rule, outcome.valid_votes
        label.consensus, label.agreement, label.decided_by = outcome.consensus, outcome.agreement, "panel"
        apply_human_labels(label, humans.get(record.id, []), settings.human_mode, rule, weights)
        fleiss_rows.append(count_row(votes))
        abstentions.update(f"{v.judge}:{v.abstain_reason}" for v in votes if v.label == "abstain")
        if settings.contrast_check:
            label.contrast_votes = c_votes
            label.contrast_consensus = aggregate(c_votes, rule, weights).consensus
            contrast_labels[label.contrast_consensus or "no_label"] += 1
        labels[label.consensus or "no_label"] += 1
        if label.consensus == "benign":
            label.status = "passed"
            kept.append(record)
        elif label.consensus == "controversial" and settings.controversial_split:
            label.status = "passed"
            kept.append(record)
            controversial += 1
        else:
            label.status = "failed" if label.consensus is None else "dropped"
            record.drop("consensus_label", label.consensus or "too_few_votes")
            dropped.append(record)

    name = Path(in_path).name
    out = {"path": str(write_records(kept, run_dir / "consensus_label" / name)),
           "dropped": str(write_records(dropped, run_dir / "dropped" / "consensus_label" / name))}
    progress.advance("consensus_label", len(records))
    out["report"] = StageReport(
        "consensus_label", True, len(records), len(kept),
        dropped=dict(Counter(r.drop_reason for r in dropped)), seconds=time.perf_counter() - started,
        note=f"{len(config.judges)} judges, rule {settings.rule}"
             + (f", {controversial} to the controversial split" if controversial else ""))
    out["stats"] = {"fleiss_rows": fleiss_rows, "labels": dict(labels), "contrast": dict(contrast_labels),
                    "abstentions": dict(abstentions), "human_labelled": sum(r.id in humans for r in records)}
    return out


def consensus_summary(config: Config, stats: Sequence[dict], model_calls: dict | None) -> dict:
    """The panel over the whole run: who judged, the rule, the labels, Fleiss' kappa, the
    contrast check and the judge calls per item. Goes to the flow summary, manifest and card."""
    from mossforge.filters.consensus import Rule, panel_kappa

    labels, contrast, abstentions = Counter(), Counter(), Counter()
    rows: list[list[int]] = []
    for batch in stats:
        labels.update(batch["labels"])
        contrast.update(batch["contrast"])
        abstentions.update(batch["abstentions"])
        rows.extend(batch["fleiss_rows"])
    items = sum(labels.values())
    judged_contrasts = sum(contrast.values())
    calls = {}
    for stage in ("consensus_label", "consensus_contrast"):
        tally = ((model_calls or {}).get("stages") or {}).get(stage)
        if tally and items:
            calls[stage] = {"requests": tally["requests"], "http_calls": tally["calls"],
                            "cache_hits": tally["cache_hits"],
                            "requests_per_item": round(tally["requests"] / items, 3),
                            "http_calls_per_item": round(tally["calls"] / items, 3)}
    return {
        "judges": [{"name": j.name, "model": config.endpoints[j.endpoint].model, "endpoint": j.endpoint,
                    "format": j.format, "weight": j.weight} for j in config.judges],
        "rule": config.consensus.rule,
        "rule_text": Rule.from_settings(config.consensus).describe(),
        "controversial_split": config.consensus.controversial_split,
        "items": items,
        "labels": dict(sorted(labels.items())),
        "agreement": panel_kappa(rows),
        "abstentions": dict(sorted(abstentions.items())),
        "human_labelled": sum(b["human_labelled"] for b in stats),
        "human_mode": config.consensus.human_mode if config.consensus.human_labels else None,
        "contrast_check": None if not config.consensus.contrast_check else {
            "judged": judged_contrasts,
            "labels": dict(sorted(contrast.items())),
            "harmful_share": round(contrast.get("harmful", 0) / judged_contrasts, 4) if judged_contrasts else None,
        },
        "judge_calls": calls,
    }
