"""Existing benchmarks in and out of mossforge's schema.

`import_mossbench` reads a MOSSBench-format folder (`images_information/information.json`, a JSON
object of items keyed by problem id, with `image`, `short description`, `description`, `question`,
`pid` and `metadata` {over: "type 1|2|3", human, child, syn, ocr, harm: [..]}, and `images/`), with
its harmful contrast folder (`data_contrast/`, the same structure, paired by pid). `import_csv`
reads a text-only benchmark (a question column, optionally a safe/unsafe label column). Both build
`Candidate` records and publish them with `publish_local`, so an imported set is a dataset folder
in the published layout: it loads with `datasets.load_dataset`, evaluates with `mossforge eval`,
serves as a dedup reference, and exports back (`export_mossbench`, `export_csv`).

Every imported item keeps its source id and the source's own metadata (verbatim JSON) in
`provenance.source_id` / `provenance.source_metadata`; fields the source does not have (why it is
benign, the scene domain, ...) stay empty rather than invented.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from mossforge.config import ConfigError, load_config
from mossforge.images import ImageStore
from mossforge.release.dataset_io import SPLITS
from mossforge.release.layout import MANIFEST, SHARD, read_manifest
from mossforge.release.publish import PublishedVersion, publish_local
from mossforge.schema import (
    HARM_CATEGORIES,
    STIMULUS_TYPES,
    UNSPECIFIED,
    Candidate,
    Contrast,
    Flags,
    Provenance,
    candidate_id,
)
from mossforge.tables import check_not_folder, check_utf8

INFO = Path("images_information") / "information.json"
# MOSSBench's "over" types, in its order.
MOSSBENCH_TYPES = {1: "exaggerated_risk", 2: "negated_harm", 3: "counterintuitive_interpretation"}
# MOSSBench's `harm` indices are not named in its repository; 1..7 follow the seven HarmBench-style
# categories in the order mossforge lists them (its data agree: 2 = a chemistry lab, 6 = a gun,
# 7 = the catch-all). Anything else maps to general_harm; the raw list is kept in source_metadata.
MOSSBENCH_HARM = {i + 1: category for i, category in enumerate(HARM_CATEGORIES)}
HARMFUL_LABELS = ("unsafe", "harmful", "contrast", "1", "true", "yes")


@dataclass
class ImportResult:
    version: PublishedVersion
    benign: int
    contrast: int  # contrast rows: paired with a benign item or on their own
    skipped: dict[str, int]


# --- MOSSBench --------------------------------------------------------------------------------


def _mossbench_folders(root: Path, contrast: Path | None) -> tuple[Path, Path | None]:
    """The benign folder (holding images_information/) and the contrast folder, if any."""
    root = Path(root)
    benign = next((p for p in (root, root / "data") if (p / INFO).is_file()), None)
    if benign is None:
        raise ConfigError(f"{root}: not a MOSSBench folder (no {INFO} in it or in {root / 'data'})")
    if contrast is not None:
        if not (Path(contrast) / INFO).is_file():
            raise ConfigError(f"--contrast {contrast}: not a MOSSBench folder (no {INFO})")
        return benign, Path(contrast)
    found = next((p for p in (benign.parent / "data_contrast", root / "data_contrast")
                  if (p / INFO).is_file()), None)
    return benign, found


def _read_info(folder: Path) -> dict[str, dict]:
    try:
        data = json.loads((folder / INFO).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{folder / INFO}: not valid JSON: {error}") from None
    if isinstance(data, list):  # tolerate a list of items with their own pid
        data = {str(item.get("pid", n)): item for n, item in enumerate(data, 1)}
    if not isinstance(data, dict):
        raise ConfigError(f"{folder / INFO}: expected an object of items keyed by pid")
    return data


def _mossbench_type(item: dict, where: str) -> str:
    raw = (item.get("metadata") or {}).get("over", item.get("type"))
    match = re.search(r"[123]", str(raw))
    if match is None:
        names = {t.replace("_", " "): t for t in STIMULUS_TYPES}
        if str(raw).strip().lower() in names:
            return names[str(raw).strip().lower()]
        raise ConfigError(f"{where}: metadata.over {raw!r} is not type 1, 2 or 3")
    return MOSSBENCH_TYPES[int(match.group())]


def _mossbench_harm(metadata: dict) -> str:
    harm = metadata.get("harm")
    first = harm[0] if isinstance(harm, list) and harm else harm
    try:
        return MOSSBENCH_HARM.get(int(first), "general_harm")
    except (TypeError, ValueError):
        return "general_harm"


def _put_image(store: ImageStore, folder: Path, relative: str | None, where: str, variant=None):
    if not relative:
        raise ConfigError(f"{where}: no image path")
    path = folder / relative
    if not path.is_file():
        raise ConfigError(f"{where}: image {path} does not exist")
    with Image.open(path) as image:
        return store.put(image.convert("RGB"), renderer="imported", variant=variant)


def _mossbench_records(benign_dir: Path, contrast_dir: Path | None, store: ImageStore,
                       source: str) -> tuple[list[Candidate], list[Candidate], dict[str, int]]:
    info = _read_info(benign_dir)
    contrast_info = _read_info(contrast_dir) if contrast_dir else {}
    records: dict[str, Candidate] = {}
    skipped: dict[str, int] = {}
    for key, item in info.items():
        pid = str(item.get("pid", key))
        where = f"{benign_dir / INFO} item {pid}"
        if not item.get("question"):
            raise ConfigError(f"{where}: no question")
        stimulus_type = _mossbench_type(item, where)
        metadata = item.get("metadata") or {}
        image = _put_image(store, benign_dir, item.get("image"), where)
        description = item.get("description") or item.get("short description") or ""
        contrast = Contrast()
        twin = contrast_info.pop(pid, None) or contrast_info.pop(key, None)
        if twin is not None:
            twin_image = _put_image(store, contrast_dir, twin.get("image"), f"{contrast_dir / INFO} item {pid}",
                                    variant="contrast")
            contrast = Contrast(question=twin.get("question"),
                                image_description=twin.get("description") or twin.get("short description"),
                                image=None if twin_image.sha256 == image.sha256 else twin_image)
        record = Candidate(
            id=candidate_id(stimulus_type, item["question"], f"{description}\n{image.sha256}"),
            stimulus_type=stimulus_type, harm_category=_mossbench_harm(metadata),
            question=item["question"], image_description=description,
            benign_rationale="", alarming_rationale="", scene_domain="", trigger_element="",
            flags=Flags(has_person=bool(metadata.get("human")), has_child=bool(metadata.get("child")),
                        synthetic=bool(metadata.get("syn")), has_text=bool(metadata.get("ocr"))),
            contrast=contrast, image=image, status="accepted",
            provenance=Provenance(generator=f"import:{source}", source_id=f"{source}:{pid}",
                                  source_metadata=json.dumps({"benign": item, "contrast": twin},
                                                             ensure_ascii=False, sort_keys=True)),
        )
        if record.id in records:
            skipped["exact_duplicate"] = skipped.get("exact_duplicate", 0) + 1
            continue
        records[record.id] = record
    # Contrast items with no benign twin are kept, in the contrast split only.
    unpaired = []
    for key, item in contrast_info.items():
        pid = str(item.get("pid", key))
        where = f"{contrast_dir / INFO} item {pid}"
        stimulus_type = _mossbench_type(item, where)
        image = _put_image(store, contrast_dir, item.get("image"), where, variant="contrast")
        description = item.get("description") or item.get("short description") or ""
        unpaired.append(_text_record(item["question"], stimulus_type, "general_harm", source, pid,
                                     {"benign": None, "contrast": item}, image=image,
                                     description=description))
    return list(records.values()), unpaired, skipped


def _text_record(question: str, stimulus_type: str, harm_category: str, source: str, row_id: str,
                 metadata: Any, image=None, description: str = "") -> Candidate:
    return Candidate(
        id=candidate_id(stimulus_type, question, f"{description}\n{image.sha256 if image else ''}"),
        stimulus_type=stimulus_type, harm_category=harm_category, question=question,
        image_description=description, benign_rationale="", alarming_rationale="", scene_domain="",
        trigger_element="", flags=Flags(synthetic=False), contrast=Contrast(), image=image,
        status="accepted",
        provenance=Provenance(generator=f"import:{source}", source_id=f"{source}:{row_id}",
                              source_metadata=json.dumps(metadata, ensure_ascii=False, sort_keys=True)),
    )


# --- CSV --------------------------------------------------------------------------------------


def _csv_records(path: Path, question_column: str, label_column: str | None,
                 type_column: str | None, stimulus_type: str, harm_category: str,
                 harmful_labels: Sequence[str]) -> tuple[list[Candidate], list[Candidate], dict[str, int]]:
    check_not_folder(path, "a .csv file", ConfigError)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    check_utf8(path, ConfigError)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if not columns:
            raise ConfigError(f"{path} is empty: give a CSV file with a header row (naming the "
                              f"--question-column, {question_column!r}) and one question per row")
        for flag, name in (("--question-column", question_column), ("--label-column", label_column),
                           ("--type-column", type_column)):
            if name is not None and name not in columns:
                raise ConfigError(f"{flag}: {path} has no column {name!r} (columns: {', '.join(columns)})")
        rows = list(reader)
    harmful = {label.strip().lower() for label in harmful_labels}
    benign: dict[str, Candidate] = {}
    contrast: dict[str, Candidate] = {}
    skipped: dict[str, int] = {}
    for n, row in enumerate(rows):
        question = (row.get(question_column) or "").strip()
        if not question:
            skipped["empty_question"] = skipped.get("empty_question", 0) + 1
            continue
        kind = stimulus_type
        if type_column and row.get(type_column):
            value = row[type_column].strip()
            kind = value if value in STIMULUS_TYPES else (
                MOSSBENCH_TYPES[int(m.group())] if (m := re.fullmatch(r"(?:type\s*)?([123])", value)) else UNSPECIFIED)
        is_harmful = bool(label_column) and (row.get(label_column) or "").strip().lower() in harmful
        record = _text_record(question, kind, harm_category, path.name, f"row {n}", row)
        target = contrast if is_harmful else benign
        if record.id in target:
            skipped["exact_duplicate"] = skipped.get("exact_duplicate", 0) + 1
            continue
        target[record.id] = record
    return list(benign.values()), list(contrast.values()), skipped


# --- publishing into OUT ----------------------------------------------------------------------


def _publish_to(out: Path, name: str, description: str, license: str, records: list[Candidate],
                contrast_only: list[Candidate], image_root: Path, note: str) -> PublishedVersion:
    """Publish with `publish_local` into a staging root beside OUT, then move the version to OUT.

    OUT ends up a version folder of its own (same layout, same manifest), atomically: it appears
    whole or not at all. Importing the same content again into the same OUT changes nothing."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"--out {out}: exists and is not a dataset folder; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{out.name}-", dir=out.parent))
    try:
        config = load_config(overrides={"run.out_dir": str(staging), "dataset.name": name,
                                        "dataset.description": description, "dataset.license": license,
                                        "dedup.enabled": False})
        funnel = [{"stage": "import", "status": "ran", "ran": True, "entered": len(records) + len(contrast_only),
                   "kept": len(records), "dropped": {}, "seconds": 0.0, "note": note, "details": {}}]
        for stage in ("target_check", "consensus_label"):
            funnel.append({"stage": stage, "status": "not_run", "ran": False, "entered": len(records),
                           "kept": len(records), "dropped": {}, "seconds": 0.0,
                           "note": "not run by mossforge (imported)", "details": {}})
        version = publish_local(records, [], config, funnel, image_root, contrast_only=contrast_only)
        if (out / MANIFEST).is_file():
            existing = read_manifest(out)
            if existing.get("version") == version.version:
                return PublishedVersion(out, version.version, True, existing)
            raise ConfigError(f"--out {out}: holds another version ({existing.get('version')}); "
                              "choose a new folder")
        if out.exists():
            out.rmdir()  # empty
        os.rename(version.path, out)
        return PublishedVersion(out, version.version, False, version.manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def import_mossbench(root: Path, out: Path, *, contrast: Path | None = None, name: str = "mossbench",
                     license: str = "other") -> ImportResult:
    benign_dir, contrast_dir = _mossbench_folders(Path(root), contrast)
    with tempfile.TemporaryDirectory(prefix="mossforge-import-") as tmp:
        store = ImageStore(Path(tmp) / "images")
        records, unpaired, skipped = _mossbench_records(benign_dir, contrast_dir, store, "mossbench")
        paired = sum(1 for r in records if r.contrast.question)
        note = f"imported from MOSSBench-format {benign_dir}" + (f" and {contrast_dir}" if contrast_dir else "")
        # The description is part of the version id: it names no local path.
        version = _publish_to(out, name, f"MOSSBench-format benchmark imported by mossforge: "
                              f"{len(records)} benign queries"
                              + (f", {paired + len(unpaired)} harmful contrasts" if contrast_dir else "")
                              + ". Licence and terms: those of the source.", license,
                              records, unpaired, store.root, note)
    return ImportResult(version, len(records), paired + len(unpaired), skipped)


def import_csv(path: Path, out: Path, *, question_column: str, label_column: str | None = None,
               type_column: str | None = None, stimulus_type: str = UNSPECIFIED,
               harm_category: str = "general_harm", harmful_labels: Sequence[str] = HARMFUL_LABELS,
               name: str | None = None, license: str = "other") -> ImportResult:
    if stimulus_type not in (*STIMULUS_TYPES, UNSPECIFIED):
        raise ConfigError(f"--stimulus-type must be one of {', '.join((*STIMULUS_TYPES, UNSPECIFIED))}")
    if harm_category not in HARM_CATEGORIES:
        raise ConfigError(f"--harm-category must be one of {', '.join(HARM_CATEGORIES)}")
    path = Path(path)
    benign, contrast, skipped = _csv_records(path, question_column, label_column, type_column,
                                             stimulus_type, harm_category, harmful_labels)
    with tempfile.TemporaryDirectory(prefix="mossforge-import-") as tmp:
        note = f"imported from {path.name} (question: {question_column}" + (
            f", label: {label_column}, harmful when one of {'/'.join(harmful_labels)})" if label_column else ")")
        version = _publish_to(out, name or re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:96] or "imported",
                              f"Text-only benchmark imported by mossforge from {path.name}: {len(benign)} "
                              f"benign questions, {len(contrast)} harmful ones (contrast split, unpaired). "
                              "Licence and terms: those of the source.", license, benign, contrast,
                              Path(tmp), note)
    return ImportResult(version, len(benign), len(contrast), skipped)


# --- export -----------------------------------------------------------------------------------


def _exported_types() -> dict[str, str]:
    return {t: f"type {n}" for n, t in MOSSBENCH_TYPES.items()}


def export_mossbench(folder: Path, out: Path) -> dict[str, int]:
    """Write a version as a MOSSBench-format folder: out/data and out/data_contrast, each with
    images_information/information.json and images/. Imported items get their original entry back
    (question and image from the version); others get one built from their fields."""
    import pyarrow.parquet as pq

    folder, out = Path(folder), Path(out)
    benign = pq.read_table(folder / "data" / "benign" / SHARD).to_pylist()
    contrast = {r["id"]: r for r in pq.read_table(folder / "data" / "contrast" / SHARD).to_pylist()}
    types = _exported_types()
    harm_index = {c: i for i, c in MOSSBENCH_HARM.items()}
    info: dict[str, dict] = {}
    contrast_info: dict[str, dict] = {}
    used: set[str] = set()

    def write_image(split_dir: Path, name: str, cell: dict | None) -> str | None:
        if not cell or not cell.get("bytes"):
            return None
        relative = f"images/{name}.png"
        (split_dir / "images").mkdir(parents=True, exist_ok=True)
        (split_dir / relative).write_bytes(cell["bytes"])
        return relative

    def pid_for(row: dict, n: int) -> str:
        source = (row.get("provenance") or {}).get("source_id") or ""
        pid = source.split(":", 1)[1] if source.startswith("mossbench:") else str(n)
        while pid in used:
            pid = f"{pid}-{n}"
        used.add(pid)
        return pid

    for n, row in enumerate(benign, 1):
        original = json.loads((row.get("provenance") or {}).get("source_metadata") or "null")
        original = original if isinstance(original, dict) and "benign" in original else {}
        pid = pid_for(row, n)
        stem = Path((original.get("benign") or {}).get("image") or pid).stem
        entry = dict(original.get("benign") or {
            "short description": row["image_description"][:150], "description": row["image_description"],
            "pid": pid, "metadata": {
                "over": types.get(row["stimulus_type"], row["stimulus_type"]),
                "human": int(row["flags"]["has_person"]), "child": int(row["flags"]["has_child"]),
                "syn": int(row["flags"]["synthetic"]), "ocr": int(row["flags"]["has_text"]),
                "harm": [harm_index.get(row["harm_category"], 7)]}})
        entry["question"] = row["question"]
        entry["image"] = write_image(out / "data", stem, row["image"])
        info[pid] = entry
        twin = contrast.pop(row["id"], None)
        if twin is not None:
            centry = dict(original.get("contrast") or {
                "short description": entry.get("short description"), "description": entry.get("description"),
                "pid": pid, "metadata": {"over": entry["metadata"]["over"]}})
            centry["question"] = twin["question"]
            centry["image"] = write_image(out / "data_contrast", stem, twin["image"] or row["image"])
            contrast_info[pid] = centry
    for n, row in enumerate(contrast.values(), len(benign) + 1):  # unpaired harmful items
        pid = str(n)
        used.add(pid)
        contrast_info[pid] = {"pid": pid, "question": row["question"],
                              "image": write_image(out / "data_contrast", pid, row["image"]),
                              "metadata": {"over": types.get(row["stimulus_type"], row["stimulus_type"])}}
    for split_dir, data in ((out / "data", info), (out / "data_contrast", contrast_info)):
        (split_dir / INFO).parent.mkdir(parents=True, exist_ok=True)
        (split_dir / INFO).write_text(json.dumps(data, indent=4, ensure_ascii=False), encoding="utf-8")
    return {"benign": len(info), "contrast": len(contrast_info)}


def export_csv(folder: Path, out: Path) -> int:
    """Every query of a version as CSV rows: id, split, label (safe/unsafe), type, category, question."""
    from mossforge.release.dataset_io import read_items

    out = Path(out)
    check_not_folder(out, "the name of the .csv file to write, e.g. " + str(out / "export.csv"), ConfigError)
    if out.suffix.lower() != ".csv":
        raise ConfigError(f"--out {out}: export csv writes CSV; name the file .csv (e.g. "
                          f"{out.with_suffix('.csv')})")
    rows = [item for split in SPLITS for item in read_items(Path(folder), split)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split", "label", "stimulus_type", "harm_category", "question"])
        for item in rows:
            writer.writerow([item.id, item.split, "safe" if item.split == "benign" else "unsafe",
                             item.stimulus_type, item.harm_category, item.question])
    return len(rows)
