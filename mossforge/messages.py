"""Chat messages as every role sends them: a question, optionally an image, optionally a system
prompt. Targets, judges and evaluations all build their requests here, so an image is attached the
same way everywhere (a PNG data URL, which OpenAI, vLLM and Ollama all accept)."""

from __future__ import annotations

import base64
import os
from pathlib import Path


def data_url(png: bytes | str | os.PathLike[str]) -> str:
    """A `data:image/png;base64,...` URL from PNG bytes or a path to a PNG file."""
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def user_turn(text: str, image: bytes | str | os.PathLike[str] | None = None,
              system_prompt: str | None = None) -> list[dict]:
    """One user message (text first, then the image, as users type it) after an optional system
    prompt. With no image the content is a plain string, which text-only servers require."""
    messages: list[dict] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    if image is None:
        messages.append({"role": "user", "content": text})
    else:
        messages.append({"role": "user", "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": data_url(image)}},
        ]})
    return messages
