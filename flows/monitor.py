"""What a user sees of a build in the Prefect UI, beyond the task runs themselves.

- the flow run's name: `<dataset>-cfg-<config hash>` while it runs, `<dataset>-<version>` once
  the version it builds is known (a content hash: it exists only after the last stage);
- a progress artifact per batch stage, moved as batches finish (for every task runner: it is
  updated from the flow's own process, not from the tasks);
- a failure that names the stage, the batch and the reason;
- a gallery of accepted items (question beside a small thumbnail) and a link to the published
  version's report.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mossforge.client import MissingApiKeyError
from mossforge.config import Config, ConfigError, config_from_dict
from mossforge.errors import MossforgeError

GALLERY_ITEMS = 6
THUMBNAIL = 96  # px: small enough that a gallery of data URLs stays a few tens of KB


_USER_ERRORS = (ConfigError, MissingApiKeyError)


class StageBatchFailed(MossforgeError, RuntimeError):
    """A batch task failed; the message names the stage, the batch and the reason."""

    wrapper = True  # the CLI reports a wrapped mossforge error itself; anything else with a log


def initial_run_name() -> str:
    from prefect.runtime import flow_run

    try:
        cfg = config_from_dict(flow_run.parameters.get("config") or {})
        return f"{cfg.dataset.name}-cfg-{cfg.config_hash()}"
    except Exception:  # a bad config fails in the flow with its own clear message
        return "build_dataset"


def run_name(dataset: str, version: str) -> str:
    return f"{dataset}-{version}"


def rename_run(name: str) -> None:
    """Rename the current flow run (to the dataset and the version it built)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name)


def _key(stage: str) -> str:
    return "progress-" + stage.replace("_", "-")


# (flow run id, stage) -> whether each of the stage's task runs was a cache hit
_cache_hits: dict[tuple[str, str], list[bool]] = {}


def _hits_key(stage: str) -> tuple[str, str]:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return (str(context.flow_run.id) if context and context.flow_run else "", stage)


def _note_cached(stage: str, states) -> None:
    _cache_hits[_hits_key(stage)] = [getattr(s, "name", None) == "Cached" for s in states]


def cache_hits(stage: str) -> list[bool]:
    """Whether each task run of `stage`'s last wait came from Prefect's cache, in submission order."""
    return list(_cache_hits.get(_hits_key(stage), []))


def all_cached(stage: str) -> bool:
    """Whether every task run of `stage` in the current flow run came from Prefect's cache."""
    hits = _cache_hits.pop(_hits_key(stage), [])
    return bool(hits) and all(hits)


def wait_with_progress(futures: list, stage: str) -> list:
    """Results of `futures` in submission order; a progress artifact moves as they finish."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.futures import as_completed

    total = len(futures)
    artifact = create_progress_artifact(progress=0.0, key=_key(stage),
                                        description=f"{stage}: batches finished of {total}") if total else None
    index = {id(f): i for i, f in enumerate(futures)}
    results: list[Any] = [None] * total
    done = 0
    for future in as_completed(futures):
        i = index[id(future)]
        try:
            results[i] = future.result()
        except Exception as error:
            where = f"stage {stage}, batch {i} of {total}"
            if isinstance(error, _USER_ERRORS):  # already names the key to fix: keep its type
                error.add_note(f"in {where}")
                raise
            raise StageBatchFailed(f"{where} failed: {type(error).__name__}: {error}") from error
        done += 1
        update_progress_artifact(artifact, progress=round(100.0 * done / total, 1))
    _note_cached(stage, [f.state for f in futures])
    return results


def _calls_dir(cfg: Config, flow_run_id) -> Path:
    return cfg.run.work_path() / "calls" / str(flow_run_id)


@contextlib.contextmanager
def worker_calls(config: dict) -> Iterator[None]:
    """Around a model-calling task. In the flow's process: nothing (the run's client counts).
    In a worker process (Dask, Ray): the task gets a client of its own, whose calls hold the
    endpoints' global slots, and whose counts are left in a file the flow collects."""
    from prefect.context import TaskRunContext

    from mossforge import run_state
    from mossforge.flows import limits

    if limits.in_flow_process():
        yield
        return
    limits.install_call_slots()
    task_run = TaskRunContext.get().task_run
    cfg = config_from_dict(config)
    with run_state.client_scope(str(task_run.id)):
        try:
            yield
        finally:
            rows = run_state.close_scoped_client(cfg)
            if rows:
                folder = _calls_dir(cfg, task_run.flow_run_id)
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{task_run.id}.tmp"
                tmp.write_text(json.dumps(rows), encoding="utf-8")
                os.replace(tmp, folder / f"{task_run.id}.json")


def collect_worker_calls(cfg: Config) -> list[dict]:
    """The counts of this flow run's tasks that ran in worker processes (cached tasks made none)."""
    from prefect.runtime import flow_run

    folder = _calls_dir(cfg, flow_run.id)
    if not folder.is_dir():
        return []
    rows = [row for path in sorted(folder.glob("*.json")) for row in json.loads(path.read_text())]
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def _thumbnail(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def gallery_markdown(version_path: Path, limit: int = GALLERY_ITEMS) -> str:
    """A markdown table of accepted items: thumbnail beside question (from the published shard)."""
    import pyarrow.parquet as pq

    from mossforge.release.publish import SHARD

    shard = Path(version_path) / "data" / "benign" / SHARD
    if not shard.exists():
        return "_no accepted items_"
    rows = pq.read_table(shard, columns=["stimulus_type", "question", "image_info"]).slice(0, limit).to_pylist()
    if not rows:
        return "_no accepted items_"
    lines = ["| image | stimulus type | question |", "|---|---|---|"]
    for row in rows:
        image = Path(version_path) / "images" / f"{row['image_info']['sha256']}.png" if row["image_info"] else None
        cell = f"![thumbnail]({_thumbnail(image)})" if image and image.exists() else "-"
        question = row["question"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {cell} | {row['stimulus_type']} | {question} |")
    return "\n".join(lines)


def publish_artifacts(summary: dict) -> None:
    """After publishing: rename the run, a gallery, the link to the version and its report."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    rename_run(run_name(summary["dataset"], summary["version"]))
    path = Path(summary["path"]).resolve()
    report = path / "report" / "index.html"
    create_link_artifact(
        key="published-version", link=report.as_uri() if report.exists() else path.as_uri(),
        link_text=f"{summary['dataset']} {summary['version']} ({path})",
        description="the published version: its report (HTML, plots, gallery); the folder beside it")
    create_markdown_artifact(
        key="gallery",
        markdown=f"# Accepted items of {summary['dataset']} `{summary['version']}`\n\n"
                 f"{gallery_markdown(path)}\n\nThe full report: `{report}`\n",
        description="a few accepted items, question beside its image")
