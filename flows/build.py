"""The `build_dataset` Prefect flow: the pipeline list of `mossforge.stages` (plan → generate →
dedup → render → target check → consensus label), then publish; one cached task per stage and batch.

Tasks pass paths of parquet batches, never records or images. Each cached task's key is its
inputs (the config's content hash, the stage, its input paths, the stage's extra cache inputs, the
hash of mossforge's sources), and its result is persisted, so running the same config again reuses
every finished stage, and a killed run resumes where it stopped. `run_through` sends a subset of
records back through named stages for a round (the refinement loop uses it).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.context import FlowRunContext

from mossforge import progress, run_state, source_hash, stages
from mossforge.config import Config, config_from_dict
from mossforge.errors import shorten_own_errors_in_logs
from mossforge.flows import crash_detection, limits, monitor, runners
from mossforge.flows.gpu import ensure_gpu_limit, gpu_slot
from mossforge.generators.plan import MAX_ROUNDS, next_draw, shortfall
from mossforge.preflight import check_failures, check_not_empty, check_run
from mossforge.release.card import funnel_table, judging_section, model_call_rows, target_rows
from mossforge.release.publish import dataset_lock, publish_local
from mossforge.stage import (
    StageReport,
    StageResult,
    chain_reports,
    count_rows,
    files_intact,
    in_refine_round,
    merge_reports,
    read_records,
    rebatch,
    refine_prefix,
    run_stage,
)
from mossforge.stages.dedup import survived
from mossforge.stages.plan import drawn as plan_drawn
from mossforge.stages.plan import slot_counts
from mossforge.stages.refine import operator_rows

# The config's content hash stands for the config in the cache key (`config_key`): the fields marked
# as not affecting output (mossforge/config.py) change neither the hash nor any task's key, while
# the task still gets the whole config (where the model cache and earlier versions are).
_CACHED = {"cache_policy": (INPUTS - "config") + TASK_SOURCE, "persist_result": True}


@task(name="stage", task_run_name="{stage}-{batch}", **_CACHED)
def stage_task(stage: str, config: dict, config_key: str, in_paths: list[str], run_dir: str, batch: str,
               image_root: str, params: dict, cache_inputs: dict, code: str) -> StageResult:
    """One stage over one batch (or, for a whole-set stage, over all of them). `cache_inputs` (the
    stage's `cache_inputs(config)`) is unused here but part of the cache key."""
    cfg = config_from_dict(config)
    step = stages.by_name(stage)
    with contextlib.ExitStack() as stack:
        if step.uses_models(cfg):  # a worker process's calls are counted and sent to the flow
            stack.enter_context(monitor.worker_calls(config))
        if step.needs_gpu(cfg):  # one diffusion batch on a GPU at a time, across workers
            stack.enter_context(gpu_slot(cfg.render.diffusion.gpu_limit))
        return run_stage(step, cfg, in_paths, Path(run_dir), batch, image_root, params)


class Run:
    """One build's stages as Prefect tasks: where they write, their cache key, the funnel so far.

    `stage(...)` runs one stage (one task per batch, or one for a whole-set stage; a stage that
    does not run for the config passes its input through), `run_through(...)` a list of them."""

    def __init__(self, cfg: Config, fresh: bool = False) -> None:
        self.cfg = cfg
        self.config = cfg.model_dump(mode="json")
        self.key = cfg.config_hash()
        self.run_dir = cfg.run.work_path() / self.key
        self.image_root = str(cfg.run.work_path() / "images")
        self.code = source_hash()
        # --fresh, or a model cache set to refresh: recompute instead of reusing cached results
        self.option = {"refresh_cache": True} if fresh or cfg.cache.mode == "refresh" else {}
        self.timings: dict[str, float] = {}
        self.stats: dict[str, list] = {}  # stage -> each batch's stats (for Stage.summarize)
        self.refined: dict | None = None  # what the refinement loop did (Run.refine)

    def timed(self, row: str, fn, total=None):
        """The one clock of a funnel row: bars, funnel and manifest agree."""
        progress.event("stage_start", stage=row, total=total)
        t0 = time.perf_counter()
        result = fn()
        self.timings[row] = round(self.timings.get(row, 0.0) + time.perf_counter() - t0, 3)
        return result

    def stage(self, step, in_paths: Sequence[str], prefix: str = "", params: dict | None = None,
              ) -> tuple[list[str], list[str], StageReport]:
        """Run `step` over `in_paths`; its kept paths, dropped paths and funnel row. Batch names
        (and the files under `<run_dir>/<stage>/`) start with `prefix` (a round)."""
        cfg, in_paths = self.cfg, [str(p) for p in in_paths]
        total = count_rows(in_paths) if in_paths else None
        if step.scope == "all" or step.not_run_reason(cfg) is not None:  # (not run: all pass through)
            batches = [(prefix + "all", in_paths)]
        else:
            size = step.batch_size(cfg)
            inputs = (rebatch(in_paths, size, self.run_dir / "batches" / step.name, prefix)
                      if size and in_paths else in_paths)
            batches = [(Path(p).stem, [p]) for p in inputs]
        extra = step.cache_inputs(cfg)
        task_fn = stage_task.with_options(name=step.name, **self.option)
        calls = [{"stage": step.name, "config": self.config, "config_key": self.key, "in_paths": paths,
                  "run_dir": str(self.run_dir), "batch": batch, "image_root": self.image_root,
                  "params": params or {}, "cache_inputs": extra, "code": self.code} for batch, paths in batches]

        def run():
            with runners.gpu_request(cfg) if step.needs_gpu(cfg) else contextlib.nullcontext():
                results = _map(task_fn, calls, step.name)
                # Prefect's cache outlives the files its results name (its records live under
                # PREFECT_HOME, batches and images under the work folder): a cached batch whose
                # files or images were deleted since (`rm -rf outputs`) is computed again.
                gone = [i for i, (r, hit) in enumerate(zip(results, monitor.cache_hits(step.name)))
                        if hit and not files_intact([*r.kept, *r.dropped], self.image_root)]
                if gone:
                    again = _map(task_fn.with_options(refresh_cache=True), [calls[i] for i in gone], step.name)
                    for i, result in zip(gone, again):
                        results[i] = result
                return results

        # A refine round's batches are the refine row's work (its clock and bar), not a second pass of the row
        results = run() if in_refine_round(prefix) else self.timed(step.funnel_row, run, total)
        self.stats.setdefault(step.name, []).extend(r.stats for r in results if r.report.ran)
        report = merge_reports(step.funnel_row, (r.report for r in results))
        # Read now: a refine round runs the same stages again before this row is closed.
        report.cached = report.ran and monitor.all_cached(step.name)
        return [p for r in results for p in r.kept], [p for r in results for p in r.dropped], report

    def run_through(self, names: Sequence[str], paths: Sequence[str], round: int = 0, params: dict | None = None,
                    ) -> tuple[list[str], list[str], list[StageReport]]:
        """Send the records of `paths` through the named stages in pipeline order, for round
        `round` (its batches are named `r<round>-...`; round 0: the main pass). Returns the kept
        paths, the dropped paths and one funnel row per row name (stages that share a row are
        chained), each marked cached when every task of it came from Prefect's cache."""
        prefix = refine_prefix(round) if round else ""
        steps = [s for s in stages.PIPELINE if s.name in set(names)]
        unknown = set(names) - {s.name for s in steps}
        if unknown:
            raise KeyError(f"run_through: no stage named {', '.join(sorted(unknown))} "
                           f"(stages: {', '.join(s.name for s in stages.PIPELINE)})")
        dropped: list[str] = []
        dropped_by: dict[str, list[str]] = {}
        rows: dict[str, list[tuple[str, StageReport]]] = {}
        closed: dict[str, StageReport] = {}
        params = {**(params or {}), **({"round": round} if round else {})}
        for n, step in enumerate(steps):
            if getattr(step, "routes_through", None):  # a loop stage (refine): rounds of its own
                paths, gone, report = self.refine(step, paths, dropped_by.get(step.refines, []))
            else:
                paths, gone, report = self.stage(step, paths, prefix, params)
            dropped += gone
            dropped_by[step.name] = gone
            rows.setdefault(step.funnel_row, []).append((step.name, report))
            if n + 1 == len(steps) or steps[n + 1].funnel_row != step.funnel_row:  # the row is complete
                closed[step.funnel_row] = self.close(step.funnel_row, rows[step.funnel_row], main=not round)
        return list(paths), dropped, list(closed.values())

    def refine(self, step, kept: list[str], near_misses: list[str]) -> tuple[list[str], list[str], StageReport]:
        """The refinement loop: each round, `step` proposes variants of what its `refines` stage
        dropped, and they go through `step.routes_through` (dedup against what is kept so far,
        render, the target check); what the target check keeps joins the kept records, what it
        drops is the next round's parents. Stops after `refine.rounds`, when a round proposes
        nothing, or when the budget (variants, rewriter calls, seconds) is spent. One funnel row:
        entered = what the target check kept, kept = that plus the refined survivors."""
        cfg = self.cfg
        entered = count_rows(kept) if kept else 0
        if step.not_run_reason(cfg) is not None:
            return kept, [], StageReport(step.funnel_row, False, entered, entered, note=step.not_run_reason(cfg))
        settings = cfg.refine
        progress.event("stage_start", stage=step.funnel_row, total=None)  # (its rounds advance its bar)
        started = time.perf_counter()
        kept, dropped, parents = list(kept), [], list(near_misses)
        checked = kept + parents  # every record the target check saw (for the yield and transfer figures)
        seen = sorted({r.id for r in read_records(kept + parents)})
        variants, calls, rounds, counters, cached = 0, 0, [], Counter(), []
        drop_reasons: Counter = Counter()
        for round_ in range(1, settings.rounds + 1):
            if not parents or variants >= settings.max_variants or (
                    settings.max_seconds and time.perf_counter() - started >= settings.max_seconds):
                break
            left = {"round": round_, "seen": seen, "variants_left": settings.max_variants - variants,
                    "calls_left": max(0, settings.max_calls - calls)}
            if settings.max_seconds:
                left["seconds_left"] = max(0.0, settings.max_seconds - (time.perf_counter() - started))
            children, _, report = self.stage(step, parents, refine_prefix(round_), left)
            cached.append(report.cached)
            counters.update(report.details)
            stats = self.stats.get(step.name, [])[-1] if self.stats.get(step.name) else {}
            variants += report.kept
            calls += int(report.details.get("calls", 0))
            if not report.kept:
                rounds.append({"round": round_, "near_misses": report.details.get("near_misses", 0),
                               "proposed": 0, "kept": 0, "spent": stats.get("spent")})
                break
            survivors, gone, rows = self.run_through(step.routes_through, children, round_, {"against": kept})
            cached += [r.cached for r in rows if r.ran]
            by_row = {r.stage: r for r in rows}
            for r in rows:
                for reason, n in r.dropped.items():
                    drop_reasons[f"{r.stage}:{reason}"] += n
                for name, n in r.details.items():
                    if name.startswith(("asked:", "full_refusal:", "partial_refusal:", "full_compliance:")):
                        counters[f"r{round_}.{name}"] += n
            rounds.append({"round": round_, "near_misses": report.details.get("near_misses", 0),
                           "proposed": report.kept, "rendered": by_row["render"].kept if "render" in by_row else None,
                           "kept": by_row["target_check"].kept,  # refused as the keep rule counts
                           "spent": stats.get("spent")})
            kept += survivors
            dropped += gone
            parents = [p for p in gone if Path(p).parent.name == "target_check"]
            checked += survivors + parents
            seen = sorted(set(seen) | {r.id for r in read_records(children)})
        added = sum(r["kept"] for r in rounds)
        report = StageReport(step.funnel_row, True, entered, entered + added, dropped=dict(sorted(drop_reasons.items())),
                             seconds=round(time.perf_counter() - started, 3),
                             note=f"{len(rounds)} round{'' if len(rounds) == 1 else 's'}, {variants} variants, {added} refined items kept"
                                  + (f", {calls} rewriter calls" if calls else ""),
                             details={k: v for k, v in sorted(counters.items()) if not k.startswith("near_misses")})
        report.details["variants"] = variants
        self.timings[step.funnel_row] = report.seconds
        self.refined = {"rounds": rounds, "variants": variants, "calls": calls,
                        "operators": operator_rows(self.stats.get(step.name, [])),
                        "cached": bool(cached) and all(cached), "checked": checked}
        report.cached = self.refined["cached"]
        return kept, dropped, report

    def close(self, row: str, parts: list[tuple[str, StageReport]], main: bool = True) -> StageReport:
        """The funnel row of `parts` (stage name, report) run one after the other; for the main pass
        (not a refine round's), on the row's clock, and its bar stops."""
        report = chain_reports(row, [r for _, r in parts]) if len(parts) > 1 else parts[0][1]
        if main:
            report.seconds = self.timings.get(row, report.seconds)
            progress.event("stage_done", stage=row, status=report.status, seconds=report.seconds,
                           entered=report.entered, kept=report.kept)
        return report

    def top_up(self) -> tuple[list[str], list[str], list[StageReport], dict[str, int]]:
        """The pipeline up to dedup (plan → generate → dedup), topped up until `plan.per_type` of
        each type survive dedup (or the generator has no more): a larger draw extends a smaller one,
        earlier batches stay cached. Returns dedup's kept paths, the dropped paths, the rows, and
        the shortfall per type."""
        pipeline = list(stages.PIPELINE)
        names = [s.name for s in pipeline]
        plan, dedup = pipeline[names.index("plan")], pipeline[names.index("dedup")]
        middle = pipeline[names.index("plan") + 1:names.index("dedup")]  # generate (per batch, accumulated)
        reports: dict[str, list[StageReport]] = {s.name: [] for s in [plan, *middle]}
        made: list[str] = []
        kept_dropped: list[str] = []  # drops of the per-batch stages, every round
        draw, drawn, available = None, {}, None
        for round_ in range(MAX_ROUNDS):
            prefix = f"t{round_}-" if round_ else ""
            slots, _, report = self.stage(plan, [], prefix, {"draw": draw, "already": drawn, "round": round_})
            reports["plan"].append(report)
            new = slots
            for step in middle:
                new, gone, step_report = self.stage(step, new, prefix)
                reports[step.name].append(step_report)
                kept_dropped += gone
            made += new
            unique, dedup_dropped, dedup_report = self.stage(dedup, made, prefix)
            drawn = {t: drawn.get(t, 0) + n for t, n in plan_drawn(report).items()}
            available = available or slot_counts(self.cfg)
            draw = next_draw(self.cfg.plan.per_type, drawn, survived(dedup_report), available)
            if draw is None:
                break
        short = shortfall(self.cfg.plan.per_type, survived(dedup_report))
        if short:
            dedup_report.note = "; ".join(filter(None, [dedup_report.note, "the generator has no more: " + ", ".join(
                f"{t} {self.cfg.plan.per_type - n} of {self.cfg.plan.per_type}" for t, n in short.items())]))
        rows = [self.close(s.name, [(s.name, merge_reports(s.funnel_row, reports[s.name]))]) for s in [plan, *middle]]
        rows.append(self.close(dedup.funnel_row, [(dedup.name, dedup_report)]))
        return unique, kept_dropped + dedup_dropped, rows, short

    def after(self, name: str) -> list[str]:
        """The names of the pipeline's stages after `name`."""
        names = [s.name for s in stages.PIPELINE]
        return names[names.index(name) + 1:]

    def summaries(self, model_calls: dict | None) -> dict[str, dict]:
        """Each stage's whole-run summary (`Stage.summarize`) from its batches' stats."""
        out = {}
        for step in stages.PIPELINE:
            if self.stats.get(step.name):
                summary = step.summarize(self.cfg, self.stats[step.name], model_calls)
                if summary is not None:
                    out[step.name] = summary
        return out


@task(name="publish")
def publish_task(config: dict, paths: list[str], dropped_paths: list[str], funnel: list[dict],
                 image_root: str, model_calls: dict | None = None, consensus: dict | None = None,
                 refine: dict | None = None) -> dict:
    started = time.perf_counter()
    cfg = config_from_dict(config)
    records = read_records(paths)
    dropped = read_records(p for p in dropped_paths if Path(p).exists())
    for record in records:
        record.status = "accepted"
    report = StageReport("publish", True, len(records), len(records))
    version = publish_local(records, dropped, cfg, [*funnel, report.as_dict()], Path(image_root),
                            model_calls, consensus=consensus, refine=refine)
    report.seconds = time.perf_counter() - started
    report.note = f"version {version.version}" + (" (already published)" if version.reused else "")
    return {"path": str(version.path), "version": version.version, "reused": version.reused,
            "version_number": version.manifest.get("version_number"),
            "counts": version.manifest["counts"], "publish": report.as_dict()}


@task(name="push_to_hub")
def push_task(path: str, repo_id: str, private: bool) -> dict:
    """Push the published version to the Hub (no new commit when the repo already has it). The
    token is read inside the task from the environment or the saved login, never passed in:
    task parameters are recorded by Prefect."""
    from mossforge.release.hub import HubError, push_version

    try:
        result = push_version(Path(path), repo_id, private=private)
    except HubError as error:
        raise HubError(f"{error}\nThe version is published locally at {path}; push it again with "
                       f"`mossforge publish {Path(path).name} --repo {repo_id}`.") from None
    return {"repo": repo_id, "url": result.url, "tag": result.tag, "revision": result.revision,
            "created_commit": result.created_commit}


def _map(task_fn, calls: list[dict[str, Any]], stage: str) -> list:
    """Submit one task run per batch to the flow's (bounded) task runner and wait for all,
    with a progress artifact in the UI; a failure names the stage, the batch and the reason."""
    futures = [task_fn.submit(**kwargs) for kwargs in calls]
    return monitor.wait_with_progress(futures, stage)


@flow(name="build_dataset", task_runner=runners.StoppingThreadPoolTaskRunner(max_workers=2),
      flow_run_name=monitor.initial_run_name)
def build_dataset(config: dict | None = None, fresh: bool = False, preflight: bool = False) -> dict:
    """Build one dataset version from `config` (a dict of the TOML config; offline defaults if None).

    `fresh` recomputes every stage instead of reusing cached results. `preflight` first checks the
    folders and every endpoint the config uses (mossforge/preflight.py; `mossforge run` checks
    before it starts Prefect, served runs here). One run at a time per dataset folder: a second
    waits for the first (or fails at once with run.wait_for_lock = false).
    """
    with crash_detection.heartbeats():  # (a killed run is marked Crashed when they stop)
        cfg = config_from_dict(config or {})
        if not runners.runner_matches(cfg, FlowRunContext.get().task_runner):  # a served/deployed run
            summary = build_dataset.with_options(task_runner=runners.make_task_runner(cfg))(config, fresh, preflight)
            monitor.rename_run(monitor.run_name(summary["dataset"], summary["version"]))
            return summary
        if preflight:  # a run with no CLI around it (served): its log is where errors are read
            shorten_own_errors_in_logs()
        with _local_model_servers(cfg) if preflight else contextlib.nullcontext():
            if preflight:
                check_run(cfg)
            with dataset_lock(Path(cfg.run.out_dir), cfg.dataset.name, cfg.run.wait_for_lock, notify=_notify):
                return _build(cfg, fresh)


@contextlib.contextmanager
def _local_model_servers(cfg: Config):
    """The config's [local_models] servers, for a run with no CLI around it (a served run): `mossforge
    run` starts them before the flow, and a served run's preflight found none answering."""
    if not cfg.local_models:
        yield
        return
    from mossforge.local_model import Servers

    servers = Servers(cfg, progress=lambda line: _notify(f"local model: {line}"))
    try:
        yield
    finally:
        servers.stop()


def _notify(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _build(cfg: Config, fresh: bool) -> dict:
    run_state.resume_work()  # (a run in this process was stopped before: a notebook's next build works)
    run = Run(cfg, fresh)
    started = time.perf_counter()
    limit_slots = limits.ensure_run_limits(cfg)  # before any task runs
    progress.event("flow_run", id=str(FlowRunContext.get().flow_run.id), name=FlowRunContext.get().flow_run.name)
    if runners.needs_gpu(cfg):  # before any render task asks for it (strictly)
        ensure_gpu_limit(cfg.render.diffusion.gpu_limit, cfg.render.diffusion.gpu_slots)

    # The pipeline: plan → generate → dedup (topped up), then every later stage of the list.
    paths, dropped, funnel, short = run.top_up()
    paths, more_dropped, rows = run.run_through(run.after("dedup"), paths)
    dropped += more_dropped
    funnel += rows

    # Every model stage has finished: the accounting is complete (zero calls for cached stages).
    # (with calls made in worker processes, Dask or Ray, counted there and collected here)
    model_calls = run_state.close_model_client(cfg, monitor.collect_worker_calls(cfg))
    check_failures(model_calls, cfg.run.max_failed_share)  # a stage whose calls failed publishes nothing
    check_not_empty(funnel[-1].kept, cfg.run.allow_empty, cfg.dataset.name, [r.as_dict() for r in funnel])
    consensus = run.summaries(model_calls).get("consensus_label")
    refined = None
    if run.refined is not None:  # refinement ran: its rounds, yield, transfer and benign check
        from mossforge.stages.refine import summary as refine_summary

        refined = refine_summary(cfg, run.refined, [r.as_dict() for r in funnel], read_records(run.refined["checked"]),
                                 read_records(paths), read_records(p for p in dropped if Path(p).exists()))
    result = run.timed("publish", lambda: publish_task(
        run.config, paths, dropped, [r.as_dict() for r in funnel], run.image_root, model_calls, consensus,
        refined))
    progress.event("published", version=result["version"], path=result["path"])  # (a signal from here on: it is)
    timings = run.timings
    hub = None
    if cfg.dataset.hub_repo:
        hub = run.timed("push_to_hub", lambda: push_task(result["path"], cfg.dataset.hub_repo, cfg.dataset.hub_private))
    rows = [r.as_dict() for r in funnel] + [{**result["publish"], "seconds": timings["publish"]}]
    for row in rows:
        row["wall_seconds"] = row["seconds"]  # the same figure (kept for readers of the old key)

    summary = {
        "dataset": cfg.dataset.name,
        "version": result["version"],
        "version_number": result["version_number"],
        "path": result["path"],
        "hub": hub,
        "reused": result["reused"],
        "counts": result["counts"],
        "funnel": rows,
        "seconds": round(time.perf_counter() - started, 3),
        "config_hash": cfg.config_hash(),
        "shortfall": short,  # {type: how many short of plan.per_type}: the generator had no more
        "model_calls": model_calls,
        "consensus": consensus,
        "refine": refined,
        "task_runner": cfg.run.task_runner,
        "limits": limit_slots,
    }
    _artifacts(summary)
    monitor.publish_artifacts(summary)
    return summary


def _artifacts(summary: dict) -> None:
    """The funnel as a table and a markdown summary, visible on the flow run in the Prefect UI."""
    create_table_artifact(
        key="funnel",
        table=[{k: (", ".join(f"{a}: {b}" for a, b in v.items()) if isinstance(v, dict) else v)
                for k, v in row.items()} for row in summary["funnel"]],
        description=f"{summary['dataset']} {summary['version']}: items in and out of each stage",
    )
    if summary["model_calls"]:
        create_table_artifact(key="model-calls", table=model_call_rows(summary["model_calls"]),
                              description="model calls per endpoint and stage (cache hits make no call)")
    if refused := target_rows(summary["funnel"]):
        create_table_artifact(key="target-refusals", table=refused,
                              description="how each target answered the candidates it was asked")
    counts = summary["counts"]
    by_type = "\n".join(f"- {t}: {n}" for t, n in counts["by_type"].items())
    create_markdown_artifact(
        key="build-summary",
        markdown=f"""# {summary['dataset']} version `{summary['version']}`

Published to `{summary['path']}`{' (this content was already published)' if summary['reused'] else ''}.

**{counts['benign']} items** ({counts['dropped']} dropped) in {summary['seconds']:.1f} s.

{by_type}
{judging_section(summary["consensus"]) if summary.get("consensus") else ""}
## Funnel

{funnel_table(summary['funnel'])}
""",
        description="build summary",
    )


def run_build(cfg: Config, fresh: bool = False, preflight: bool = False) -> dict:
    """Run the flow with the config's task runner (what `mossforge run` calls): a bounded thread
    pool by default, Dask or Ray as `run.task_runner` says (flows/runners.py)."""
    runner = runners.make_task_runner(cfg)
    return build_dataset.with_options(task_runner=runner)(config=cfg.model_dump(mode="json"), fresh=fresh,
                                                                   preflight=preflight)
