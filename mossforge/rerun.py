"""A re-run with nothing to do: `mossforge run` of a config whose version is already published.

After `mossforge run` publishes, it writes a receipt under the work folder
(`<work>/receipts/<key>.json`). The key is a hash of everything that decides what the flow would
publish: the config's content hash, the hash of mossforge's own sources (seed bank included), each
stage's extra cache inputs (the other versions dedup compares against, the reviewed labels), the
size and modification time of every local file or folder the config names (reference sets, a
local diffusion model, ...), and where it publishes. The next `mossforge run` with the same key,
without `--fresh` or `cache.mode = "refresh"` and without a Hub push to make, finds the receipt,
checks the version it names (every file against the manifest's checksums) and prints that
version instead of starting a Prefect flow run whose every task would come from the cache.

A version that is missing, incomplete or damaged, a receipt that cannot be read, or any change to
the key means no shortcut: the flow runs as it always did. A run that failed writes no receipt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mossforge.config import Config

RECEIPTS = "receipts"
MAX_FILES = 2000


def why_not(cfg: Config, fresh: bool) -> str | None:
    """Why this run cannot be answered from an earlier one (None: it can, if a receipt exists)."""
    if fresh:
        return "--fresh"
    if cfg.cache.mode == "refresh":
        return "cache.mode = refresh"
    if cfg.dataset.hub_repo:
        return "the run pushes to the Hub"
    return None


def _local_inputs(value, found: dict[str, list]) -> None:
    """(size, mtime) of every file under each existing local path the config names (a folder of
    more than MAX_FILES files counts as changed on every run: no shortcut)."""
    if isinstance(value, dict):
        for item in value.values():
            _local_inputs(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _local_inputs(item, found)
    elif isinstance(value, str) and 0 < len(value) < 1024 and "\n" not in value and value not in (".", ".."):
        path = Path(value).expanduser()
        try:
            if path.is_file():
                files = [path]
            elif path.is_dir():
                files = []
                for p in path.rglob("*"):
                    if len(files) > MAX_FILES:
                        found[value] = [os.urandom(8).hex()]
                        return
                    if p.is_file():
                        files.append(p)
                files.sort()
            else:
                return
            found[value] = [(p.relative_to(path).as_posix() if p != path else "", p.stat().st_size,
                             p.stat().st_mtime_ns) for p in files]
        except (OSError, ValueError):
            found[value] = [os.urandom(8).hex()]  # cannot tell: never the same key twice


def run_key(cfg: Config) -> str:
    """The hash of everything that decides what a run of `cfg` publishes (module docstring)."""
    from mossforge import source_hash, stages

    inputs: dict[str, list] = {}
    _local_inputs(cfg.content_dict(), inputs)
    key = {
        "config": cfg.config_hash(),
        "code": source_hash(),
        "stages": {s.name: s.cache_inputs(cfg) for s in stages.PIPELINE if s.not_run_reason(cfg) is None},
        "files": inputs,
        "out": str(Path(cfg.run.out_dir).resolve() / cfg.dataset.name),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _receipt_path(cfg: Config, key: str) -> Path:
    return cfg.run.work_path() / RECEIPTS / f"{key}.json"


def clean(summary: dict) -> bool:
    """True when no model call of the run failed (a run that published despite some failures
    is not remembered: the next run tries those calls again)."""
    from mossforge.preflight import _NOT_FAILURES

    for tally in ((summary.get("model_calls") or {}).get("stages") or {}).values():
        if any(v for k, v in (tally.get("failures") or {}).items() if k not in _NOT_FAILURES):
            return False
    return True


def write_receipt(cfg: Config, key: str, summary: dict) -> None:
    """Remember that the run with `key` published `summary['path']` (atomically: a receipt is
    whole or absent)."""
    manifest = Path(summary["path"]) / "manifest.json"
    receipt = {"key": key, "dataset": summary["dataset"], "path": str(Path(summary["path"]).resolve()),
               "version": summary["version"], "version_number": summary.get("version_number"),
               "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
               "counts": summary["counts"], "config_hash": summary["config_hash"]}
    path = _receipt_path(cfg, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(receipt, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def published(cfg: Config, key: str) -> dict | None:
    """The receipt of the complete, intact version an earlier run with `key` published, or None."""
    from mossforge.release.versions import verify_version

    try:
        receipt = json.loads(_receipt_path(cfg, key).read_text(encoding="utf-8"))
        path = Path(receipt["path"])
        if receipt.get("key") != key or path.parent != Path(cfg.run.out_dir).resolve() / cfg.dataset.name:
            return None
        if hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest() != receipt["manifest_sha256"]:
            return None
        manifest = verify_version(path)  # every file against its checksum, nothing added
    except Exception:  # noqa: BLE001 (no receipt, or any doubt about it: the flow runs)
        return None
    if manifest.get("version") != receipt["version"] or manifest.get("config_hash") != cfg.config_hash():
        return None
    return receipt
