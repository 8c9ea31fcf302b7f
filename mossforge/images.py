"""A content-addressed image store: every image is written once, under its sha256."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from mossforge.schema import ImageRef


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic PNG encoding (no timestamps or text chunks), so equal pixels hash equally.

    zlib level 3, not Pillow's default 6: on scene cards it encodes in about half the time for
    files about 6% larger (benchmarks/README.md, "The everyday loop"). The level is part of every
    image's bytes, so changing it changes every image's sha256 and every version id."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # never a half-written file under the final name


class ImageStore:
    """Images under `root/<sha[:2]>/<sha>.png`; `ImageRef.path` is relative to `root`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def put(self, image: Image.Image, *, renderer: str, model_id: str | None = None,
            seed: int | None = None, variant: str | None = None, **meta: Any) -> ImageRef:
        """Store `image`; `meta` fills the other ImageRef fields (steps, guidance, flags, ...)."""
        data = png_bytes(image)
        sha = hashlib.sha256(data).hexdigest()
        rel = f"{sha[:2]}/{sha}.png"
        path = self.root / rel
        if not path.exists():  # written once; a re-run reuses it
            _atomic_write(path, data)
        return ImageRef(path=rel, sha256=sha, width=image.width, height=image.height,
                        renderer=renderer, model_id=model_id, seed=seed, variant=variant, **meta)

    # A render cache beside the images: what a render request produced (refs, or a drop reason),
    # keyed by a hash of the whole request, so a re-run renders nothing it has rendered before.
    def recall(self, key: str) -> dict | None:
        """The outcome remembered under `key`, if every image it names is still in the store."""
        path = self.root / "renders" / key[:2] / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        refs = [r for r in (entry.get("image"), entry.get("contrast")) if r]
        if any(not (self.root / r["path"]).exists() for r in refs):
            return None
        return entry

    def remember(self, key: str, entry: dict) -> None:
        _atomic_write(self.root / "renders" / key[:2] / f"{key}.json",
                      json.dumps(entry, sort_keys=True).encode("utf-8"))

    def path(self, ref: ImageRef) -> Path:
        return self.root / ref.path

    def open(self, ref: ImageRef) -> Image.Image:
        return Image.open(self.path(ref))
