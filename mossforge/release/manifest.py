"""The version manifest (`manifest.json`), typed.

`publish_local` builds the manifest as a dict and validates it here before writing it
(`Manifest.for_writing`); everything that reads manifests back (versions, diff, the Hub, importers,
review, the report) goes through `load_manifest`, which names the file when it is not a manifest.

What is written does not change: `to_dict()` gives back exactly the keys that were set, with their
values (numbers keep their int or float type), so the JSON on disk is the same as before the models
existed. Reading stays compatible in both directions: fields that later versions of mossforge
added (items, features, version numbers, models, consensus, ...) are optional, and a key this code
does not know (a manifest from a newer mossforge) is kept, not rejected; only writing refuses one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mossforge.errors import InputError

# A JSON number as written: an int stays an int, a float a float (pydantic's smart union), so a
# manifest read and written back is byte-identical.
Number = int | float


class ManifestError(InputError):
    """A manifest that cannot be read or does not have a manifest's shape (names the file)."""


class _Closed(BaseModel):
    """A part whose keys mossforge fixes: an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """A part others add keys to (the stage runner's counters, role fields): unknown keys kept."""

    model_config = ConfigDict(extra="allow")


class GeneratorEntry(_Closed):
    generator: str
    model_id: str | None = None
    prompt_template_id: str | None = None
    prompt_template_hash: str | None = None


class RendererEntry(_Closed):
    renderer: str
    model_id: str | None = None


class FunnelRow(_Open):
    """One stage's row: items in and out, drops by reason, and the stage's own counters."""

    stage: str
    status: str
    entered: int
    kept: int
    dropped: dict[str, int] = {}
    note: str | None = None
    ran: bool | None = None
    cached: bool | None = None
    seconds: Number | None = None
    details: dict[str, Any] = {}


class Counts(_Closed):
    benign: int
    controversial: int = 0  # manifests before the controversial split have no such key
    contrast: int
    dropped: int
    by_type: dict[str, int]
    by_category: dict[str, int]
    by_type_and_category: dict[str, int]
    dropped_by_reason: dict[str, int]


class PreviousVersion(_Closed):
    version: str
    version_number: str


class Change(_Closed):
    """Why the version got its number (`mossforge.release.versions.next_number`)."""

    level: Literal["initial", "major", "minor", "patch"]
    reasons: list[str]
    previous: PreviousVersion | None = None


class RoleEntry(_Open):
    """A configured target or judge (plus params, image_as_text, local_model where they apply)."""

    name: str | None = None
    endpoint: str | None = None
    model_id: str | None = None
    system_prompt_sha256: str | None = None


class TargetResultRow(_Closed):
    target: str
    model_id: str | None = None
    classifier: str | None = None
    answered: int
    refused: int


class JudgeVoteRow(_Closed):
    judge: str
    model_id: str | None = None
    votes: int


class ModelRoles(_Closed):
    targets: list[RoleEntry] = []
    judges: list[RoleEntry] = []
    target_results: list[TargetResultRow] = []
    judge_votes: list[JudgeVoteRow] = []
    consensus_rules: list[str] = []


class Manifest(_Open):
    """A published version's manifest. The config, the model-call accounting and the judge panel's
    summary are kept as their producers wrote them (each has its own model or builder)."""

    dataset: str
    version: str
    created_at: str
    schema_version: str
    code_version: str
    packages: dict[str, str] = {}  # Python's and the output-shaping packages' versions (older manifests: none)
    config_hash: str
    config: dict[str, Any]
    generators: list[GeneratorEntry]
    renderers: list[RendererEntry]
    stages: dict[str, str]
    funnel: list[FunnelRow]
    counts: Counts
    models: ModelRoles | None = None
    local_models: dict[str, Any] = {}
    model_calls: dict[str, Any] | None = None
    consensus: dict[str, Any] | None = None
    refine: dict[str, Any] | None = None  # target-aware refinement: rounds, yield, transfer (when it ran)
    items: dict[str, str | None] | None = None  # stable id -> row digest
    features: dict[str, dict[str, str]] | None = None  # split -> flattened features
    version_number: str | None = None
    change: Change | None = None
    files: dict[str, str] = {}  # path in the version folder -> sha256 (every file but the manifest)

    @classmethod
    def for_writing(cls, data: dict[str, Any]) -> Manifest:
        """Validate a manifest about to be written: every part well-typed and no key this model
        does not know (a typo in publish is caught here, not by a reader later)."""
        manifest = cls.model_validate(data)
        if manifest.model_extra:
            raise ValueError(f"manifest: unknown top-level key(s) {sorted(manifest.model_extra)}")
        return manifest

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data: exactly the keys that were set, values unchanged."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_json(self) -> str:
        """The text of `manifest.json` (sorted keys, two-space indent)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def load_manifest(path: Path) -> Manifest:
    """Read and validate `path` (a manifest.json). Raises `ManifestError` naming the file and the
    first problems."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest is a JSON object, not {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:5])
        raise ManifestError(f"{path}: not a valid mossforge manifest ({exc.error_count()} problem(s): "
                            f"{problems})") from None
