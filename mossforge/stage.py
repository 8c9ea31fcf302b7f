"""The one stage shape and its runner.

A stage is a small class (as in datatrove): a `name`, a `scope` (each batch on its own, or the
whole set at once), the reason it does not run for a config (`not_run_reason`), and a `process`
that yields `Keep(record)` or `Drop(record, reason)` for what it read, and counts what else it saw
with `ctx.count(name)`. `run_stage` does the rest the same way for every stage: it reads the input
batch(es), times the work, marks the dropped records, writes the kept ones to
`<run_dir>/<stage>/<batch>.parquet` and the dropped ones to `<run_dir>/dropped/<stage>/<batch>.parquet`
(atomically), and returns those paths with the stage's funnel row (`StageReport`), every counter
included. Batches of one stage merge into one row with `merge_reports`.

A new stage is one file in `mossforge/stages/` and one entry in its `PIPELINE` list. Plain Python:
no Prefect here (flows/build.py turns each (stage, batch) into a cached Prefect task).
"""

from __future__ import annotations

import os
import re
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from mossforge import progress
from mossforge.config import Config

Scope = Literal["batch", "all"]


@dataclass
class Keep:
    """The record goes on to the next stage."""

    record: Any


@dataclass
class Drop:
    """The record stops here, for `reason` (it is written aside, with the reason, by the runner)."""

    record: Any
    reason: str


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
    details: dict[str, int] = field(default_factory=dict)  # the stage's named counters, summed on merge
    cached: bool = False  # set by the flow: every task of the stage came from Prefect's cache

    @property
    def status(self) -> str:
        return ("cached" if self.cached else "ran") if self.ran else "not_run"

    def as_dict(self) -> dict:
        return {**asdict(self), "status": self.status}


def merge_reports(stage: str, reports: Iterable[StageReport]) -> StageReport:
    """One row from the rows of a stage's batches (run side by side): counts add up."""
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
        # cached when every part that ran was (the flow marks each stage's tasks: `Run.stage`)
        cached=any(r.ran for r in reports) and all(r.cached for r in reports if r.ran),
    )


def chain_reports(stage: str, reports: Sequence[StageReport]) -> StageReport:
    """One row from stages that ran one after the other under one funnel row (render, then the
    near-duplicate image check): what entered the first, what left the last. Parts that did not
    run add nothing."""
    ran = [r for r in reports if r.ran] or list(reports[:1])
    merged = merge_reports(stage, ran)
    merged.entered, merged.kept = ran[0].entered, ran[-1].kept
    merged.note = "; ".join(r.note for r in ran if r.note)
    return merged


class StageContext:
    """What `Stage.process` gets besides the records: the run's settings, and where to count."""

    def __init__(self, config: Config, run_dir: Path, batch: str, image_root: str | None = None,
                 params: dict | None = None, row: str | None = None) -> None:
        self.config = config
        self.row = row  # the funnel row whose progress bar this call advances
        self.run_dir = Path(run_dir)
        self.batch = batch
        self.image_root = image_root
        self.params = dict(params or {})  # run-time inputs of this call (part of the task's cache key)
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()  # drops without a record to write (see `dropped`)
        self.notes: list[str] = []
        self.stats: Any = None  # anything for `Stage.summarize` (one per batch)
        self.entered: int | None = None  # default: the records read
        self.not_run: str | None = None

    def count(self, name: str, n: int = 1) -> None:
        """A named counter of the funnel row (summed over batches)."""
        if n:
            self.counters[name] += n

    def dropped(self, reason: str, n: int = 1) -> None:
        """Count `n` drops that have no record to write (e.g. model answers that never became
        candidates); records are dropped by yielding `Drop`."""
        if n:
            self.drops[reason] += n

    def note(self, text: str) -> None:
        if text:
            self.notes.append(text)

    def skip(self, reason: str) -> None:
        """The stage's own check did not run (the row says not_run, with `reason`), though the
        records still went through `process` (e.g. dedup off still applies the per-type quota)."""
        self.not_run = reason

    def advance(self, n: int) -> None:
        """Move the progress bar by `n` records: the stage's own bar, or in a refine round (whose
        batches re-run stages the main pass already finished) the refine bar."""
        progress.advance(progress_row(self.row, self.batch), n)

    def image_store(self):
        from mossforge.images import ImageStore

        return ImageStore(self.image_root)


class Stage(ABC):
    """One step of the pipeline. Subclasses set `name` and implement `process`."""

    name: ClassVar[str]
    scope: ClassVar[Scope] = "batch"
    # The funnel row this stage's report goes to (default: its own); stages sharing a row run one
    # after the other and are chained (`chain_reports`).
    row: ClassVar[str | None] = None
    own_progress: ClassVar[bool] = False  # True: `process` advances the progress bar itself

    @property
    def funnel_row(self) -> str:
        return self.row or self.name

    def not_run_reason(self, config: Config) -> str | None:
        """Why the stage does not run for `config` (then every record passes through and the row
        says not_run with this reason), or None."""
        return None

    def batch_size(self, config: Config) -> int | None:
        """Records per batch this stage takes (the flow re-batches its input, sorted by id), or None
        to take the batches it is given."""
        return None

    def uses_models(self, config: Config) -> bool:
        """Whether the stage calls models (the flow counts a worker process's calls)."""
        return False

    def needs_gpu(self, config: Config) -> bool:
        """Whether a batch holds the GPU slot (diffusion)."""
        return False

    def cache_inputs(self, config: Config) -> dict:
        """Inputs beyond the config and the records that change the stage's result (part of its
        tasks' cache key), e.g. the other published versions dedup compares against."""
        return {}

    def read(self, paths: Sequence[str | Path]) -> list:
        return read_records(paths)

    def write(self, items: Sequence, path: Path) -> Path:
        return write_records(items, path)

    @abstractmethod
    def process(self, records: list, ctx: StageContext) -> Iterable[Keep | Drop]:
        ...

    def summarize(self, config: Config, stats: Sequence[Any], model_calls: dict | None) -> dict | None:
        """A whole-run summary from every batch's `ctx.stats` (e.g. the judge panel's), or None."""
        return None


@dataclass
class StageResult:
    """What `run_stage` returns: paths, never records."""

    kept: list[str]
    dropped: list[str]
    report: StageReport
    stats: Any = None


# --- files ------------------------------------------------------------------------------------


def write_table(table, path: Path) -> Path:
    """Write atomically: a killed run never leaves a truncated batch under the final name."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_records(records: Sequence, path: Path) -> Path:
    from mossforge.schema import to_table

    return write_table(to_table(records), Path(path))


def read_records(paths: Iterable[str | Path]) -> list:
    import pyarrow.parquet as pq

    from mossforge.schema import from_table

    records: list = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(
                f"stage output {path} is missing (was the work directory removed?); "
                "re-run with --fresh to recompute cached stages"
            )
        records.extend(from_table(pq.read_table(path)))
    return records


def files_intact(paths: Iterable[str | Path], image_root: str | Path | None) -> bool:
    """Whether every batch in `paths` exists and so does every image its records point to (under
    `image_root`): what a cached stage result needs to be handed on."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    paths = [Path(p) for p in paths]
    if not all(p.exists() for p in paths):
        return False
    if image_root is None:
        return True
    for path in paths:
        names = pq.read_schema(path).names
        columns = [c for c in ("image", "contrast") if c in names]
        if not columns:
            continue
        table = pq.read_table(path, columns=columns)
        refs = [table["image"]] if "image" in columns else []
        if "contrast" in columns and pa.types.is_struct(table["contrast"].type):
            refs.append(pc.struct_field(table["contrast"], "image"))
        for ref in refs:
            if not pa.types.is_struct(ref.type):  # all null: no image yet
                continue
            for rel in pc.struct_field(ref, "path").drop_null().to_pylist():
                if not (Path(image_root) / rel).exists():
                    return False
    return True


def count_rows(paths: Iterable[str | Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in paths)


def rebatch(paths: Sequence[str | Path], size: int, directory: Path, prefix: str = "") -> list[str]:
    """The rows of `paths` in batches of `size` (sorted by id when they have one, else in order),
    written as `<directory>/<prefix><i>.parquet`. No rows: one empty batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in paths]
    full = [t for t in tables if t.num_rows] or tables[:1]
    if not full:
        raise ValueError("rebatch: no input batches")
    # (refined records carry a `lineage` column the others lack: missing columns become nulls)
    table = pa.concat_tables(full, promote_options="default") if len(full) > 1 else full[0]
    if "id" in table.column_names:
        table = table.sort_by("id")
    parts = [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table]
    return [str(write_table(part, Path(directory) / f"{prefix}{i}.parquet")) for i, part in enumerate(parts)]


def kept_path(run_dir: Path, stage: str, batch: str) -> Path:
    return Path(run_dir) / stage / f"{batch}.parquet"


def dropped_path(run_dir: Path, stage: str, batch: str) -> Path:
    return Path(run_dir) / "dropped" / stage / f"{batch}.parquet"


# --- the runner -------------------------------------------------------------------------------


REFINE_ROW = "refine"


def refine_prefix(round: int) -> str:
    """The start of the batch names of refine round `round` (its files and tasks): `r1-0`, `r1-all`."""
    return f"r{round}-"


def in_refine_round(batch: str) -> bool:
    """Whether `batch` (a batch name or prefix) belongs to a refine round (not the main pass, nor a
    top-up round's `t1-...`)."""
    return re.match(r"r\d+-", batch) is not None


def progress_row(row: str | None, batch: str) -> str | None:
    """The bar a call advances: its row's, or the refine bar for a batch of a refine round."""
    return REFINE_ROW if in_refine_round(batch) else row


def run_stage(stage: Stage, config: Config, in_paths: Sequence[str | Path], run_dir: Path, batch: str,
              image_root: str | None = None, params: dict | None = None) -> StageResult:
    """Run `stage` over one batch (`scope = "batch"`) or the whole set (`"all"`): read, time,
    process, mark and write what it dropped, write what it kept, and build the funnel row."""
    row = stage.funnel_row
    reason = stage.not_run_reason(config)
    if reason is not None:
        count = count_rows(in_paths)
        if not stage.own_progress:
            progress.advance(progress_row(row, batch), count)
        return StageResult([str(p) for p in in_paths], [], StageReport(row, False, count, count, note=reason))

    started = time.perf_counter()
    records = stage.read(in_paths)
    ctx = StageContext(config, run_dir, batch, image_root, params, row)
    kept: list = []
    dropped: list = []
    reasons: Counter[str] = Counter()
    for outcome in stage.process(records, ctx):
        if isinstance(outcome, Keep):
            kept.append(outcome.record)
        elif isinstance(outcome, Drop):
            outcome.record.drop(row, outcome.reason)
            dropped.append(outcome.record)
            reasons[outcome.reason] += 1
        else:
            raise TypeError(f"stage {stage.name}: process must yield Keep or Drop, got {type(outcome).__name__}")
    reasons.update(ctx.drops)
    out = [str(stage.write(kept, kept_path(run_dir, stage.name, batch)))]
    gone = [str(write_records(dropped, dropped_path(run_dir, stage.name, batch)))] if dropped else []
    entered = len(records) if ctx.entered is None else ctx.entered
    if not stage.own_progress:
        ctx.advance(len(records))
    report = StageReport(row, ctx.not_run is None, entered, len(kept), dropped=dict(sorted(reasons.items())),
                         seconds=round(time.perf_counter() - started, 3),
                         note="; ".join(([ctx.not_run] if ctx.not_run else []) + ctx.notes),
                         details=dict(sorted(ctx.counters.items())))
    return StageResult(out, gone, report, ctx.stats)
