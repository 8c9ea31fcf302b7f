"""The `build_dataset` Prefect flow: plan → generate → dedup → render → target check →
consensus label → publish, one task per stage and batch.

Tasks pass paths of parquet batches, never records or images. Each cached task's key is its
inputs (the config, its input paths, the hash of mossforge's sources), and its result is
persisted, so running the same config again reuses every finished stage, and a killed run
resumes where it stopped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from mossforge.flows import limits
from mossforge.flows import monitor
from mossforge import progress
from mossforge.flows import runners
from mossforge.flows import stages
from mossforge.release.card import funnel_table, judging_section, model_call_rows, target_rows
from mossforge.flows.gpu import ensure_gpu_limit, gpu_slot
from mossforge.release.publish import dataset_lock, list_versions, publish_local
from mossforge.generators.plan import MAX_ROUNDS, next_draw, shortfall
from mossforge import source_hash
from mossforge.config import PUBLISH_TARGET_KEYS, RUN_POLICY_KEYS, Config, config_from_dict
from mossforge.preflight import check_failures, check_not_empty, check_run

_CACHED = {"cache_policy": INPUTS + TASK_SOURCE, "persist_result": True}


@task(name="plan", **_CACHED)
def plan_task(config: dict, run_dir: str, code: str, draw: dict | None = None, drawn: dict | None = None,
              round_: int = 0):
    return stages.plan_stage(config_from_dict(config), Path(run_dir), draw, drawn, round_)


@task(name="generate", task_run_name="generate-{batch}", **_CACHED)
def generate_task(config: dict, slots_path: str, out_path: str, batch: int, code: str):
    with monitor.worker_calls(config):
        return stages.generate_batch(config_from_dict(config), slots_path, out_path)


@task(name="dedup", **_CACHED)
def dedup_task(config: dict, paths: list[str], run_dir: str, published: list[str], code: str):
    # `published` (ids of other versions) is unused here but part of the cache key: a cached
    # result is not reused after a version it should be deduplicated against appears.
    return stages.dedup_stage(config_from_dict(config), paths, Path(run_dir))


@task(name="render", task_run_name="render-{batch}", **_CACHED)
def render_task(config: dict, in_path: str, out_path: str, image_root: str, batch: int, code: str):
    cfg = config_from_dict(config)
    with monitor.worker_calls(config):  # the image_api renderer calls models
        if cfg.render.renderer == "diffusion":  # one diffusion batch on a GPU at a time, across workers
            with gpu_slot(cfg.render.diffusion.gpu_limit):
                return stages.render_batch(cfg, in_path, out_path, image_root)
        return stages.render_batch(cfg, in_path, out_path, image_root)


@task(name="image_dedup", **_CACHED)
def image_dedup_task(config: dict, paths: list[str], run_dir: str, code: str):
    return stages.image_dedup_stage(config_from_dict(config), paths, Path(run_dir))


@task(name="target_check", task_run_name="target_check-{batch}", **_CACHED)
def target_check_task(config: dict, in_path: str, out_path: str, dropped_path: str, image_root: str,
                      batch: int, code: str):
    with monitor.worker_calls(config):
        return stages.target_check_batch(config_from_dict(config), in_path, out_path, dropped_path,
                                         image_root)


def _target_check(cfg: Config, config: dict, paths: list[str], run_dir: Path, image_root: str,
                  code: str, option: dict) -> tuple[list[str], list[str], stages.StageReport]:
    """One target-check task per batch when targets are configured; `not_run` otherwise."""
    if not cfg.targets:
        kept, report = stages.not_run_stage("target_check", paths, "no targets configured")
        return kept, [], report
    calls = [{"config": config, "in_path": p, "out_path": str(run_dir / "target_check" / Path(p).name),
              "dropped_path": str(run_dir / "dropped" / f"target_check-{Path(p).name}"),
              "image_root": image_root, "batch": i, "code": code} for i, p in enumerate(paths)]
    checked = _map(target_check_task.with_options(**option), calls, "target_check")
    return ([p for p, _ in checked], [c["dropped_path"] for c in calls],
            stages.merge_reports("target_check", (r for _, r in checked)))


@task(name="consensus_label")
def consensus_label_task(paths: list[str]):
    return stages.not_run_stage("consensus_label", paths, "no judges configured")


@task(name="consensus_label", task_run_name="consensus-{batch}", **_CACHED)
def consensus_batch_task(config: dict, in_path: str, run_dir: str, image_root: str, batch: int, code: str,
                         human_labels: str | None):
    # `human_labels` (the reviewed CSV's sha256) is unused here but part of the cache key.
    with monitor.worker_calls(config):
        return stages.consensus_batch(config_from_dict(config), in_path, Path(run_dir), image_root)


def _consensus(cfg: Config, config: dict, paths: list[str], run_dir: Path, image_root: str, code: str,
               option: dict) -> tuple[list[str], list[str], stages.StageReport, list[dict] | None]:
    """The judge panel over every batch, or `not_run` when no judges are configured. Returns the
    survivors' paths (controversial ones included when that split is configured), the dropped
    items' paths, the funnel row and each batch's panel statistics."""
    if not cfg.judges:
        labelled, report = consensus_label_task(paths)
        return labelled, [], report, None
    batches = stages._rebatch(stages.read_records(paths), run_dir / "consensus_in", cfg.consensus.batch_size)
    digest = stages.human_labels_digest(cfg)
    results = _map(consensus_batch_task.with_options(**option), [
        {"config": config, "in_path": p, "run_dir": str(run_dir), "image_root": image_root, "batch": i,
         "code": code, "human_labels": digest} for i, p in enumerate(batches)], "consensus_label")
    return ([r["path"] for r in results], [r["dropped"] for r in results],
            stages.merge_reports("consensus_label", (r["report"] for r in results)), [r["stats"] for r in results])


@task(name="publish")
def publish_task(config: dict, paths: list[str], dropped_paths: list[str], funnel: list[dict],
                 image_root: str, model_calls: dict | None = None, consensus: dict | None = None) -> dict:
    started = time.perf_counter()
    cfg = config_from_dict(config)
    records = stages.read_records(paths)
    dropped = stages.read_records(p for p in dropped_paths if Path(p).exists())
    for record in records:
        record.status = "accepted"
    report = stages.StageReport("publish", True, len(records), len(records))
    version = publish_local(records, dropped, cfg, [*funnel, report.as_dict()], Path(image_root),
                            model_calls, consensus=consensus)
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


def _call(task_fn, stage: str, *args):
    """Run one task in the flow's thread; whether Prefect took its result from the cache is noted."""
    return monitor.result_of(task_fn(*args, return_state=True), stage)


@flow(name="build_dataset", task_runner=ThreadPoolTaskRunner(max_workers=2),
      flow_run_name=monitor.initial_run_name)
def build_dataset(config: dict | None = None, fresh: bool = False, preflight: bool = False) -> dict:
    """Build one dataset version from `config` (a dict of the TOML config; offline defaults if None).

    `fresh` recomputes every stage instead of reusing cached results. `preflight` first checks the
    folders and every endpoint the config uses (mossforge/preflight.py; `mossforge run` checks
    before it starts Prefect, served runs here). One run at a time per dataset folder: a second
    waits for the first (or fails at once with run.wait_for_lock = false).
    """
    cfg = config_from_dict(config or {})
    if not runners.runner_matches(cfg, FlowRunContext.get().task_runner):  # a served/deployed run
        summary = build_dataset.with_options(task_runner=runners.make_task_runner(cfg))(config, fresh, preflight)
        monitor.rename_run(monitor.run_name(summary["dataset"], summary["version"]))
        return summary
    if preflight:
        check_run(cfg)
    with dataset_lock(Path(cfg.run.out_dir), cfg.dataset.name, cfg.run.wait_for_lock, notify=_notify):
        return _build(cfg, fresh)


def _notify(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _build(cfg: Config, fresh: bool) -> dict:
    # What tasks receive is part of their cache key: leave out what cannot change a result.
    # Nor where the version is pushed: setting a Hub repo must not recompute any stage.
    config = cfg.model_dump(mode="json", exclude={"run": set(runners.RUNNER_KEYS) | set(RUN_POLICY_KEYS), "dataset": set(PUBLISH_TARGET_KEYS)})
    work = cfg.run.work_path()
    run_dir = work / cfg.config_hash()
    image_root = str(work / "images")
    code = source_hash()
    option = {"refresh_cache": True} if fresh else {}
    started = time.perf_counter()
    funnel: list[stages.StageReport] = []
    timings: dict[str, float] = {}
    limit_slots = limits.ensure_run_limits(cfg)  # before any task runs
    progress.event("flow_run", id=str(FlowRunContext.get().flow_run.id), name=FlowRunContext.get().flow_run.name)

    def timed(stage, fn, total=None):  # the one clock of a stage: bars, funnel and manifest agree
        progress.event("stage_start", stage=stage, total=total)
        t0 = time.perf_counter()
        result = fn()
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - t0, 3)
        return result

    def close(report: stages.StageReport) -> None:
        report.seconds = timings.get(report.stage, report.seconds)
        report.cached = report.ran and monitor.all_cached(report.stage)
        funnel.append(report)
        progress.event("stage_done", stage=report.stage, status=report.status, seconds=report.seconds,
                       entered=report.entered, kept=report.kept)

    # Versions this same config published hold the same items (same ids), which dedup never
    # counts against themselves: only other versions can change its result (and its cache key).
    published = [m["version"] for m in list_versions(Path(cfg.run.out_dir), cfg.dataset.name)
                 if m["config_hash"] != cfg.config_hash()]
    # plan → generate → dedup, topped up until plan.per_type of each type survive dedup (or the
    # generator has no more): a larger draw extends a smaller one, earlier batches stay cached.
    plans, generated, draw, drawn, available = [], [], None, {}, None
    for round_ in range(MAX_ROUNDS):
        slot_paths, report = timed("plan", lambda: _call(plan_task.with_options(**option), "plan",
                                                         config, str(run_dir), code, draw, drawn, round_))
        plans.append(report)
        generated += timed("generate", lambda: _map(generate_task.with_options(**option), [
            {"config": config, "slots_path": p, "out_path": str(run_dir / "generate" / Path(p).name),
             "batch": len(generated) + i, "code": code} for i, p in enumerate(slot_paths)], "generate"),
            total=sum(r.kept for r in plans))
        unique_paths, dedup_report = timed("dedup", lambda: _call(dedup_task.with_options(**option), "dedup",
            config, [p for p, _ in generated], str(run_dir), published, code),
            total=sum(r.kept for _, r in generated))
        drawn = {k.split(":", 1)[1]: drawn.get(k.split(":", 1)[1], 0) + v
                 for k, v in report.details.items() if k.startswith("drawn:")}
        available = available or stages.slot_counts(cfg)
        draw = next_draw(cfg.plan.per_type, drawn, stages.survived(dedup_report), available)
        if draw is None:
            break
    short = shortfall(cfg.plan.per_type, stages.survived(dedup_report))
    if short:
        dedup_report.note = "; ".join(filter(None, [dedup_report.note, "the generator has no more: " + ", ".join(
            f"{t} {cfg.plan.per_type - n} of {cfg.plan.per_type}" for t, n in short.items())]))
    for merged in (stages.merge_reports("plan", plans), stages.merge_reports("generate", (r for _, r in generated)),
                   dedup_report):
        close(merged)

    if cfg.render.renderer == "diffusion":  # before any render task asks for it (strictly)
        ensure_gpu_limit(cfg.render.diffusion.gpu_limit, cfg.render.diffusion.gpu_slots)

    def render():
        with runners.gpu_request(cfg):  # diffusion tasks ask the runner for a GPU
            rendered = _map(render_task.with_options(**option), [
                {"config": config, "in_path": p, "out_path": str(run_dir / "render" / Path(p).name),
                 "image_root": image_root, "batch": i, "code": code}
                for i, p in enumerate(unique_paths)
            ], "render")
        if cfg.render.renderer == "offline":  # offline scene cards share layouts by design: not checked
            return rendered, [p for p, _ in rendered], None
        return rendered, *image_dedup_task.with_options(**option)(config, [p for p, _ in rendered],
                                                                  str(run_dir), code)

    rendered, render_paths, near_duplicates = timed("render", render, total=funnel[-1].kept)
    close(stages.with_image_dedup(stages.merge_reports("render", (r for _, r in rendered)), near_duplicates))

    checked, target_dropped, report = timed("target_check", lambda: _target_check(
        cfg, config, render_paths, run_dir, image_root, code, option), total=funnel[-1].kept)
    close(report)
    labelled, judge_dropped, report, panel = timed("consensus_label", lambda: _consensus(
        cfg, config, checked, run_dir, image_root, code, option), total=report.kept)
    close(report)

    # Every model stage has finished: the accounting is complete (zero calls for cached stages).
    # (with calls made in worker processes, Dask or Ray, counted there and collected here)
    model_calls = stages.close_model_client(cfg, monitor.collect_worker_calls(cfg))
    check_failures(model_calls, cfg.run.max_failed_share)  # a stage whose calls failed publishes nothing
    check_not_empty(funnel[-1].kept, cfg.run.allow_empty, cfg.dataset.name, [r.as_dict() for r in funnel])
    consensus = stages.consensus_summary(cfg, panel, model_calls) if panel is not None else None
    dropped_paths = [str(run_dir / "dropped" / f"{s}.parquet") for s in stages.STAGES] + target_dropped
    dropped_paths += judge_dropped
    dropped_paths += [str(stages.render_dropped_path(p)) for p, _ in rendered]
    dropped_paths.append(str(run_dir / "dropped" / "render-near-duplicates.parquet"))
    result = timed("publish", lambda: publish_task(
        config, labelled, dropped_paths, [r.as_dict() for r in funnel], image_root, model_calls, consensus))
    hub = None
    if cfg.dataset.hub_repo:
        hub = timed("push_to_hub", lambda: push_task(result["path"], cfg.dataset.hub_repo, cfg.dataset.hub_private))
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
