"""Near-duplicate images by perceptual hash (DCT pHash from `imagehash`, 64 bits).

Two images whose hashes differ in at most `max_distance` bits look alike at a glance (the same
composition and tones), even when their bytes differ. Greedy, in the given order: an image
matches the nearest earlier kept image within the distance, or is kept itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def perceptual_hash(image: Image.Image) -> str:
    import imagehash

    return str(imagehash.phash(image))  # 16 hex digits


def near_duplicates(hashes: Sequence[str | None], max_distance: int) -> list[tuple[int, int] | None]:
    """For each hash: None if kept, else (index of the kept image it matches, Hamming distance).

    Missing hashes (None) are always kept. O(n·kept) with vectorised popcounts: fine for the
    tens of thousands of images a run renders.
    """
    kept_values = np.zeros(0, dtype=np.uint64)
    kept_index: list[int] = []
    out: list[tuple[int, int] | None] = []
    for i, h in enumerate(hashes):
        if h is None:
            out.append(None)
            continue
        value = np.uint64(int(h, 16))
        if kept_values.size:
            xor = np.bitwise_xor(kept_values, value)
            distances = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
            j = int(np.argmin(distances))
            if int(distances[j]) <= max_distance:
                out.append((kept_index[j], int(distances[j])))
                continue
        kept_values = np.append(kept_values, value)
        kept_index.append(i)
        out.append(None)
    return out
