"""Image API provider: OpenAI-compatible image generation through the shared model client.

The client brings the disk cache (a re-run asks nothing twice), the endpoint's concurrency and
rate limits, and the one retry layer. A content-policy rejection is a counted drop
("content_policy"), as is a call that failed for good ("image_api_<kind>") or a blank image; none
of them stops the batch. Image APIs take no seed, so the record's seed is empty.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mossforge.client import ChatFailure, ModelClient
from mossforge.generators.diffusion import Rendered, RenderItem, Sink, is_blank

RENDERER_NAME = "image-api"


class ImageApiRenderer:
    name = RENDERER_NAME

    def __init__(self, client: ModelClient, endpoint: str, *, size: str = "1024x1024",
                 params: dict[str, Any] | None = None, blank_std: float = 2.0):
        self.client, self.endpoint, self.size = client, endpoint, size
        self.params = dict(params or {})
        self.blank_std = blank_std
        self.model = client.endpoints[endpoint].model
        self.note = f"image API via endpoint {endpoint!r} ({self.model}), {size}"

    def fingerprint(self) -> dict[str, Any]:
        return {"renderer": self.name, "endpoint": self.endpoint, "model": self.model,
                "size": self.size, "params": self.params, "blank_std": self.blank_std}

    def generate(self, items: Sequence[RenderItem], sink: Sink) -> dict[str, int]:
        results = self.client.images_many(self.endpoint, [item.prompt for item in items],
                                          size=self.size, n=1, stage="render", **self.params)
        stats = {"api_calls": len(items), "api_cached": 0}
        for i, result in enumerate(results):
            if isinstance(result, ChatFailure):
                reason = "content_policy" if result.kind == "content_policy" else f"image_api_{result.kind}"
                sink(i, Rendered(None, None, 1, [result.kind], drop_reason=reason))
                continue
            stats["api_cached"] += int(result.cached)
            try:
                with Image.open(io.BytesIO(result.images[0])) as opened:
                    image = opened.convert("RGB")
            except (UnidentifiedImageError, OSError, IndexError):
                sink(i, Rendered(None, None, 1, ["undecodable"], drop_reason="image_api_undecodable"))
                continue
            if is_blank(np.asarray(image), self.blank_std):
                sink(i, Rendered(None, None, 1, ["blank@0"], drop_reason="blank_image"))
                continue
            sink(i, Rendered(image, None, 1, []))
        return stats
