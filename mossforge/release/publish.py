"""Local publishing: an immutable, content-addressed dataset version under `<out>/<dataset>/<id>/`.

A version is written into a hidden temporary folder and renamed into place only when complete
(manifest last), so a crash never leaves a half-written folder that looks like a version. The id
is a hash of the published content: the same content always gets the same id, and publishing it
again reuses the folder that is already there.

Layout of a version (loadable with `datasets.load_dataset(<folder>)`):

    README.md                         dataset card with Hugging Face YAML (configs, features)
    manifest.json                     config, hashes, counts, funnel, checksums of every file
    data/benign/test-00000-of-00001.parquet     the dataset (images embedded)
    data/contrast/test-00000-of-00001.parquet   harmful contrasts, for safety sanity checks
    data/controversial/test-00000-of-00001.parquet  items the judges found controversial (only
                                      when there are any: records whose consensus is "controversial")
    dropped.parquet                   every dropped candidate with its stage and reason
    images/<sha256>.png               the images, as files
    report/                           index.html and PNG plots (mossforge/release/report.py)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import pyarrow.parquet as pq

from mossforge import code_version, package_versions
from mossforge.config import PUBLISH_TARGET_KEYS, Config
from mossforge.errors import LockBusyError
from mossforge.images import ImageStore
from mossforge.release.card import render_card

# The layout's names are also importable from here (they lived here before layout.py).
from mossforge.release.layout import (  # noqa: F401
    ITEM_SPLITS,
    LOCK,
    MANIFEST,
    PUBLISH_LOCK,
    SHARD,
    list_versions,
    read_manifest,
    sha256_file,
)
from mossforge.release.manifest import Manifest
from mossforge.release.report import write_version_report
from mossforge.release.versions import flatten_features, next_number, unique_number
from mossforge.schema import SCHEMA_VERSION, Candidate, dataset_features, has_lineage, to_table


@dataclass
class PublishedVersion:
    path: Path
    version: str
    reused: bool  # True when this exact content had been published before
    manifest: dict


def _row_json(record: Candidate) -> bytes:
    """A record as the version id sees it: everything but the code version."""
    row = record.model_dump(mode="json", exclude={"provenance": {"code_version"}})
    return json.dumps(row, sort_keys=True, ensure_ascii=False).encode()


def _dataset_metadata(config: Config) -> dict:
    # Where a version is pushed is not part of what it is: the same content pushed to two repos
    # (or not at all) is one version.
    return config.dataset.model_dump(mode="json", exclude=set(PUBLISH_TARGET_KEYS))


def content_version_id(records: Sequence[Candidate], config: Config,
                       contrast_only: Sequence[Candidate] = ()) -> str:
    """Hash of what a user gets: the rows (minus the code version) and the card's metadata."""
    digest = hashlib.sha256()
    digest.update(f"schema:{SCHEMA_VERSION}\n".encode())
    digest.update(json.dumps(_dataset_metadata(config), sort_keys=True).encode())
    for n, group in enumerate((records, contrast_only)):
        if n and group:
            digest.update(b"contrast_only\n")
        for record in sorted(group, key=lambda r: r.id):
            digest.update(_row_json(record))
            digest.update(b"\n")
    return digest.hexdigest()[:12]


def item_digests(records: Sequence[Candidate]) -> dict[str, str]:
    """{stable id: digest of the row}: lets a later version tell added, removed and changed items
    apart from its previous version's manifest alone."""
    return {r.id: hashlib.sha256(_row_json(r)).hexdigest()[:16] for r in sorted(records, key=lambda r: r.id)}


# --- reading what is published ----------------------------------------------------------------


def published_questions(out_dir: Path, dataset: str) -> Iterator[tuple[str, str, str]]:
    """(version, item id, question) of every item in every published version of `dataset`."""
    for manifest in list_versions(out_dir, dataset):
        for split in ITEM_SPLITS:
            shard = Path(out_dir) / dataset / manifest["version"] / "data" / split / SHARD
            if not shard.is_file():
                continue
            table = pq.read_table(shard, columns=["id", "question"])
            for item_id, question in zip(table["id"].to_pylist(), table["question"].to_pylist()):
                yield manifest["version"], item_id, question


# --- writing a version ------------------------------------------------------------------------


def _image_cell(store: ImageStore, ref, target: Path) -> dict | None:
    """A `datasets.Image` cell with the bytes embedded, and a copy under images/."""
    if ref is None:
        return None
    data = store.path(ref).read_bytes()
    relative = f"images/{ref.sha256}.png"
    out = target / relative
    if not out.exists():
        out.write_bytes(data)
    return {"bytes": data, "path": relative}


def _published_image_path(info: dict | None, target: Path) -> None:
    """An image reference as the version holds it: `images/<sha256>.png` inside the version folder
    when the image is published there, else an empty path (the sha256 still names it)."""
    if info is not None:
        relative = f"images/{info['sha256']}.png"
        info["path"] = relative if (target / relative).is_file() else ""


def _benign_rows(records, store, target):
    for record in records:
        row = record.model_dump(mode="json")
        row["image_info"] = row.pop("image")
        row["image"] = _image_cell(store, record.image, target)
        row["contrast_image"] = _image_cell(store, record.contrast.image, target)
        _published_image_path(row["image_info"], target)  # not the run's store layout (`ab/abcd….png`)
        _published_image_path(row["contrast"]["image"], target)
        yield row


def _contrast_rows(records, store, target):
    """The harmful counterpart of each item: its contrast question on its contrast image, using
    the item's own question or image where the contrast changes only the other."""
    for record in records:
        if not (record.contrast.question or record.contrast.image):
            continue  # no contrast (e.g. an imported item without one): never the benign query itself
        image = record.contrast.image or record.image
        yield {
            "id": record.id,
            "stimulus_type": record.stimulus_type,
            "harm_category": record.harm_category,
            "question": record.contrast.question or record.question,
            "image": _image_cell(store, image, target),
            "changed": "image" if record.contrast.image else "question",
        }


def _unpaired_contrast_rows(records, store, target):
    """Harmful items with no benign twin (e.g. the unsafe rows of an imported text benchmark)."""
    for record in records:
        yield {"id": record.id, "stimulus_type": record.stimulus_type,
               "harm_category": record.harm_category, "question": record.question,
               "image": _image_cell(store, record.image, target), "changed": "unpaired"}


def _contrast_features():
    import datasets

    return datasets.Features({
        "id": datasets.Value("string"),
        "stimulus_type": datasets.Value("string"),
        "harm_category": datasets.Value("string"),
        "question": datasets.Value("string"),
        "image": datasets.Image(),
        "changed": datasets.Value("string"),
    })


def _write_split(rows, features, path: Path) -> int:
    import datasets

    datasets.disable_progress_bars()  # one bar per small write is noise next to the run's own

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    table = datasets.Dataset.from_list(rows, features=features) if rows else \
        datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    table.to_parquet(str(path))
    return len(rows)


def _published_refs(records: Sequence[Candidate], target: Path) -> list[Candidate]:
    """Copies of `records` whose image paths point inside the version folder (or are empty)."""
    out = []
    for record in records:
        copy = record.model_copy(deep=True)
        for ref in (copy.image, copy.contrast.image):
            if ref is not None:
                relative = f"images/{ref.sha256}.png"
                ref.path = relative if (target / relative).is_file() else ""
        out.append(copy)
    return out


def published_config(config: Config) -> dict:
    """The config as a published file shows it: nothing local. Where and how the run executed
    (`run`, `cache`) is left out (a reader gets the defaults back), and a local file the config
    names (a reference file, reviewed labels, a diffusion model folder) is shown by its name."""
    data = config.model_dump(mode="json", exclude={"run": True, "cache": True})
    for ref in data["dedup"]["reference_files"]:
        ref["path"] = Path(ref["path"]).name
    if data["consensus"].get("human_labels"):
        data["consensus"]["human_labels"] = Path(data["consensus"]["human_labels"]).name
    model = data["render"]["diffusion"].get("model")
    if model and (Path(model).is_absolute() or Path(model).exists() or model.startswith(".")):
        data["render"]["diffusion"]["model"] = f"(local folder) {Path(model).name}"
    return data


def _remove_stale_temporaries(root: Path) -> None:
    """Remove `.tmp-*` folders left by publishes that were killed (their process is gone)."""
    for child in root.glob(".tmp-*"):
        try:
            pid = int(child.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(child, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


@contextmanager
def dataset_lock(out_dir: Path, dataset: str, wait: bool = True, notify=None) -> Iterator[None]:
    """Hold the dataset folder's run lock. When another run holds it: wait (saying so through
    `notify`, once), or raise `LockBusyError` at once when `wait` is false. The lock is a file
    lock: the operating system releases it when its process dies, so a killed run never leaves
    the folder locked."""
    from filelock import FileLock, Timeout

    root = Path(out_dir) / dataset
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise LockBusyError(f"another mossforge run is building {dataset} in {root} (it holds {root / LOCK}); "
                                "wait for it to finish, or run without --no-wait to wait for it") from None
        if notify is not None:
            notify(f"another mossforge run is building {dataset} in {root}: waiting for it to finish "
                   "(Ctrl-C to stop; --no-wait fails at once instead)…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def publish_local(
    records: Sequence[Candidate],
    dropped: Sequence[Candidate],
    config: Config,
    funnel: Sequence[dict],
    image_root: Path,
    model_calls: dict | None = None,
    contrast_only: Sequence[Candidate] = (),
    consensus: dict | None = None,
    refine: dict | None = None,
) -> PublishedVersion:
    """Write the accepted `records` as a new version, or return the existing one with that content.

    Records whose judges' consensus is "controversial" go to the `controversial` split, the rest
    to `benign`; `contrast` holds the harmful counterpart of every published item. The version
    number is the previous version's, bumped by the rule in `mossforge.release.versions`.
    `contrast_only`: harmful items without a benign twin; they go to the contrast split only.
    `consensus` is the judge panel's summary (`ConsensusLabelStage.summarize`) for the manifest
    and the card.
    """
    records = sorted(records, key=lambda r: r.id)
    contrast_only = sorted(contrast_only, key=lambda r: r.id)
    version = content_version_id(records, config, contrast_only)
    root = Path(config.run.out_dir) / config.dataset.name
    final = root / version
    if (final / MANIFEST).is_file():
        return PublishedVersion(final, version, True, read_manifest(final))

    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    tmp = root / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "images").mkdir(parents=True)
        store = ImageStore(image_root)
        features = {"benign": dataset_features(lineage=has_lineage(records)), "contrast": _contrast_features()}
        controversial = [r for r in records if _is_controversial(r)]
        _write_split(_benign_rows([r for r in records if not _is_controversial(r)], store, tmp),
                     features["benign"], tmp / "data" / "benign" / SHARD)
        if controversial:
            features["controversial"] = features["benign"]
            _write_split(_benign_rows(controversial, store, tmp), features["controversial"],
                         tmp / "data" / "controversial" / SHARD)
        contrasts = _write_split(chain(_contrast_rows(records, store, tmp),
                                       _unpaired_contrast_rows(contrast_only, store, tmp)),
                                 features["contrast"], tmp / "data" / "contrast" / SHARD)
        pq.write_table(to_table(_published_refs(dropped, tmp)), tmp / "dropped.parquet")
        manifest = build_manifest(records, dropped, config, funnel, version)
        manifest["counts"]["contrast"] = contrasts
        manifest["model_calls"] = model_calls  # accounting of this run's calls; no keys in it
        manifest["consensus"] = consensus
        if refine is not None:  # (absent unless refinement ran: earlier manifests keep their shape)
            manifest["refine"] = refine
        manifest["items"] = item_digests(records)
        manifest["features"] = {split: flatten_features(f) for split, f in features.items()}
        with _publish_lock(root):  # the number is chosen and the folder appears as one step
            if (final / MANIFEST).is_file():  # a concurrent run published the same content
                shutil.rmtree(tmp, ignore_errors=True)
                return PublishedVersion(final, version, True, read_manifest(final))
            previous = list_versions(Path(config.run.out_dir), config.dataset.name)
            manifest["version_number"], manifest["change"] = next_number(
                previous[-1] if previous else None, manifest["items"], manifest["features"])
            manifest["version_number"] = unique_number(manifest["version_number"],
                                                        {m.get("version_number") for m in previous})
            write_version_report(tmp, manifest, records, dropped)  # report/: HTML + plots (not in the id)
            (tmp / "README.md").write_text(render_card(manifest, features["benign"], features["contrast"]),
                                           encoding="utf-8")
            manifest["files"] = {
                str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
            }
            typed = Manifest.for_writing(manifest)  # what readers will see, checked before it exists
            manifest = typed.to_dict()
            (tmp / MANIFEST).write_text(typed.to_json(), encoding="utf-8")
            os.rename(tmp, final)  # atomic: the version appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PublishedVersion(final, version, False, manifest)


@contextmanager
def _publish_lock(root: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(root / PUBLISH_LOCK)):
        yield


def _is_controversial(record: Candidate) -> bool:
    return record.consensus_label.consensus == "controversial"


def build_manifest(records: Sequence[Candidate], dropped: Sequence[Candidate], config: Config,
                   funnel: Sequence[dict], version: str) -> dict:
    generators = sorted({
        json.dumps({
            "generator": r.provenance.generator,
            "model_id": r.provenance.model_id,
            "prompt_template_id": r.provenance.prompt_template_id,
            "prompt_template_hash": r.provenance.prompt_template_hash,
        }, sort_keys=True)
        for r in records
    })
    renderers = sorted({(r.image.renderer, r.image.model_id or "") for r in records if r.image})
    stage_status = {row["stage"]: row["status"] for row in funnel}
    return {
        "dataset": config.dataset.name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
        "packages": package_versions(),  # those that shape the outputs (mossforge.OUTPUT_PACKAGES)
        "config_hash": config.config_hash(),
        "config": published_config(config),
        "generators": [json.loads(g) for g in generators],
        "renderers": [{"renderer": r, "model_id": m or None} for r, m in renderers],
        "stages": stage_status,
        "funnel": list(funnel),
        "models": model_roles(records, config),
        # the pinned weights behind each managed local endpoint: upstream, quantisation, licence, hash
        "local_models": local_model_records(config),
        "counts": {
            "benign": sum(not _is_controversial(r) for r in records),
            "controversial": sum(_is_controversial(r) for r in records),
            "contrast": len(records),
            "dropped": len(dropped),
            "by_type": dict(sorted(Counter(r.stimulus_type for r in records).items())),
            "by_category": dict(sorted(Counter(r.harm_category for r in records).items())),
            "by_type_and_category": {
                f"{t}/{c}": n
                for (t, c), n in sorted(Counter((r.stimulus_type, r.harm_category) for r in records).items())
            },
            "dropped_by_reason": dict(sorted(Counter(f"{r.drop_stage}:{r.drop_reason}" for r in dropped).items())),
        },
    }


def local_model_records(config: Config) -> dict:
    from mossforge.local_model import config_records

    return config_records(config)


def _role_entry(name: str | None, endpoint: str | None, config: Config, system_prompt: str | None,
                **extra) -> dict:
    declared = config.endpoints.get(endpoint) if endpoint else None
    local = getattr(config, "local_models", {}).get(endpoint) if endpoint else None
    if local is not None:  # a managed local model: which file, by hash
        from mossforge.local_model import spec

        extra = {**extra, "local_model": {k: spec(local.model).record()[k]
                                          for k in ("model", "upstream", "quantization", "license", "sha256")}}
    return {
        "name": name, "endpoint": endpoint, "model_id": declared.model if declared else None,
        # the prompt's hash, not its text: enough to tell two setups apart
        "system_prompt_sha256": hashlib.sha256(system_prompt.encode()).hexdigest()[:16] if system_prompt else None,
        **extra,
    }


def model_roles(records: Sequence[Candidate], config: Config) -> dict:
    """Who refused and who judged: the targets and judges the config names, and those that
    answered or voted in the records (a record may carry results from a run with another config).
    Generic over the config's role entries so new role fields need no change here."""
    judges_cfg = []
    for judge in config.judges:
        entry = judge if isinstance(judge, dict) else judge.model_dump(mode="json")
        judges_cfg.append(_role_entry(entry.get("name"), entry.get("endpoint"), config,
                                      entry.get("system_prompt")))
    answered = Counter((t.target, t.model_id, t.classifier) for r in records for t in r.target_check.results)
    refused = Counter((t.target, t.model_id, t.classifier) for r in records for t in r.target_check.results
                      if t.label in ("full_refusal", "partial_refusal"))
    voted = Counter((v.judge, v.model_id) for r in records for v in r.consensus_label.votes)
    rules = sorted({r.consensus_label.rule for r in records if r.consensus_label.rule})
    return {
        "targets": [_role_entry(t.name, t.endpoint, config, t.system_prompt, params=t.params,
                                **({"image_as_text": True} if t.image_as_text else {}))
                    for t in config.targets],
        "judges": judges_cfg,
        "target_results": [{"target": t, "model_id": m, "classifier": c, "answered": n,
                            "refused": refused[(t, m, c)]} for (t, m, c), n in sorted(answered.items())],
        "judge_votes": [{"judge": j, "model_id": m, "votes": n} for (j, m), n in sorted(voted.items())],
        "consensus_rules": rules,
    }
