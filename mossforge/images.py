"""A content-addressed image store: every image is written once, under its sha256."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image

from mossforge.schema import ImageRef


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic PNG encoding (no timestamps or text chunks), so equal pixels hash equally."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


class ImageStore:
    """Images under `root/<sha[:2]>/<sha>.png`; `ImageRef.path` is relative to `root`."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def put(self, image: Image.Image, *, renderer: str, model_id: str | None = None,
            seed: int | None = None, variant: str | None = None) -> ImageRef:
        data = png_bytes(image)
        sha = hashlib.sha256(data).hexdigest()
        rel = f"{sha[:2]}/{sha}.png"
        path = self.root / rel
        if not path.exists():  # written once; a re-run reuses it
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # never a half-written image under the final name
        return ImageRef(path=rel, sha256=sha, width=image.width, height=image.height,
                        renderer=renderer, model_id=model_id, seed=seed, variant=variant)

    def path(self, ref: ImageRef) -> Path:
        return self.root / ref.path

    def open(self, ref: ImageRef) -> Image.Image:
        return Image.open(self.path(ref))
