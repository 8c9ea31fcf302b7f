"""Near-duplicate removal with sentence embeddings.

Clustering is *greedy leader*: texts are taken in order; a text whose cosine similarity to an
already kept text (a leader) reaches the threshold joins that leader's cluster, otherwise it becomes
a leader itself. Every member of a cluster is within the threshold of its representative (no
chaining A~B~C pulling in an A and a C that are far apart), and the first text of a cluster is
the one kept, so the result is stable under appending new texts.

Texts go through in blocks: each block is searched against the index of leaders so far (FAISS,
exact for small sets, an HNSW graph above `exact_limit`), and resolved among itself with
one small matrix product. Memory stays bounded and there is no all-pairs loop.

Exact duplicates (same text after case, whitespace and punctuation folding) are found by hashing
first and never embedded twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import faiss
import numpy as np

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)

EXACT = "exact"
NEAR = "near_duplicate"
REFERENCE = "reference"


class Embedder(Protocol):
    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...


def normalize_text(text: str) -> str:
    """Fold what does not change a question's meaning: case, accents' forms, punctuation, spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


@dataclass
class DedupOutcome:
    """Per input row: whether it is a duplicate, of what, and how similar.

    `representative[i]` is the row index of the kept text whose cluster row i joined (i itself when
    kept; -1 when it duplicates a reference, see `reference_match`). `similarity[i]` is its cosine
    similarity to that representative (or reference), 1.0 for kept rows.
    """

    is_duplicate: np.ndarray
    representative: np.ndarray
    similarity: np.ndarray
    reason: list[str | None]
    reference_match: np.ndarray
    threshold: float
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> np.ndarray:
        return np.flatnonzero(~self.is_duplicate)

    def least_similar_duplicates(self, k: int = 10) -> list[tuple[int, int, float]]:
        """The k duplicate rows closest to the threshold, as (row, representative, similarity).

        Read these to tune the threshold: if they look like different questions, raise it.
        """
        rows = np.flatnonzero(self.is_duplicate & (self.reason_array() == NEAR))
        order = rows[np.argsort(self.similarity[rows], kind="stable")][:k]
        return [(int(i), int(self.representative[i]), float(self.similarity[i])) for i in order]

    def reason_array(self) -> np.ndarray:
        return np.array([r or "" for r in self.reason], dtype=object)


def _build_index(dimension: int, expected: int, exact_limit: int, ef_search: int) -> faiss.Index:
    """Exact inner-product index for small sets; HNSW (approximate, much faster) for large ones.

    HNSW needs no training and grows one vector at a time, which greedy-leader clustering needs;
    unlike an inverted-file index, its search cost does not blow up when the texts are clustered
    (as generated questions are).
    """
    if expected <= exact_limit:
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWFlat(dimension, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.hnsw.efSearch = ef_search
    return index


def find_duplicates(
    texts: Sequence[str],
    threshold: float = 0.9,
    *,
    embedder: Embedder | None = None,
    embeddings: np.ndarray | None = None,
    references: Sequence[str] = (),
    reference_embeddings: np.ndarray | None = None,
    block_size: int = 1024,
    exact_limit: int = 20_000,
    ef_search: int = 32,
    show_progress: bool = False,
) -> DedupOutcome:
    """Mark exact and near duplicates among `texts`, and texts that duplicate a reference.

    Give either an `embedder` or precomputed unit-length `embeddings` (one row per text). Texts
    that nearly duplicate a reference are dropped first and never become leaders.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = len(texts)
    is_dup = np.zeros(n, dtype=bool)
    representative = np.arange(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float32)
    reference_match = np.full(n, -1, dtype=np.int64)
    reason: list[str | None] = [None] * n

    # 1. Exact duplicates: keep the first occurrence of each normalized text.
    first_of: dict[str, int] = {}
    unique_rows: list[int] = []
    for i, text in enumerate(texts):
        key = normalize_text(text)
        j = first_of.setdefault(key, i)
        if j == i:
            unique_rows.append(i)
        else:
            is_dup[i], representative[i], reason[i] = True, j, EXACT

    if embeddings is None:
        if embedder is None:
            raise ValueError("give an embedder or precomputed embeddings")
        unique_emb = embedder.encode([texts[i] for i in unique_rows], show_progress=show_progress)
    else:
        if len(embeddings) != n:
            raise ValueError(f"{len(embeddings)} embeddings for {n} texts")
        unique_emb = np.ascontiguousarray(embeddings[unique_rows], dtype=np.float32)
    candidate = np.ones(len(unique_rows), dtype=bool)  # still eligible to be kept

    # 2. Against references: one nearest-neighbour search per text.
    if len(references):
        ref_keys = {normalize_text(r): k for k, r in enumerate(references)}
        if reference_embeddings is None:
            if embedder is None:
                raise ValueError("give an embedder or reference embeddings")
            reference_embeddings = embedder.encode(list(references), show_progress=show_progress)
        ref_index = _build_index(unique_emb.shape[1], len(references), exact_limit, ef_search)
        ref_index.add(np.ascontiguousarray(reference_embeddings, dtype=np.float32))
        best_sim, best_ref = ref_index.search(unique_emb, 1)
        for u, row in enumerate(unique_rows):
            exact_ref = ref_keys.get(normalize_text(texts[row]))
            if exact_ref is not None:
                best_sim[u, 0], best_ref[u, 0] = 1.0, exact_ref
            if best_ref[u, 0] >= 0 and best_sim[u, 0] >= threshold:
                candidate[u] = False
                is_dup[row], representative[row] = True, -1
                similarity[row], reference_match[row] = best_sim[u, 0], best_ref[u, 0]
                reason[row] = REFERENCE

    # 3. Greedy leader clustering of the remaining unique texts, block by block.
    eligible = np.flatnonzero(candidate)
    dim = unique_emb.shape[1] if unique_emb.ndim == 2 else 0
    index = _build_index(dim, len(eligible), exact_limit, ef_search)
    leader_rows: list[int] = []  # unique-row position of each leader, in index order
    for start in range(0, len(eligible), block_size):
        block = eligible[start:start + block_size]
        vectors = unique_emb[block]
        if index.ntotal:
            sims, hits = index.search(vectors, 1)
            sims, hits = sims[:, 0], hits[:, 0]
        else:
            sims, hits = np.full(len(block), -1.0, dtype=np.float32), np.full(len(block), -1)
        within = vectors @ vectors.T  # similarities inside the block
        new_leaders: list[int] = []  # positions within the block
        for b in range(len(block)):
            best_sim, best_pos = (sims[b], hits[b]) if hits[b] >= 0 else (-1.0, -1)
            if new_leaders:
                local = within[b, new_leaders]
                k = int(np.argmax(local))
                if local[k] > best_sim:
                    best_sim, best_pos = local[k], -2 - k  # marks a leader of this block
            if best_sim >= threshold:
                leader_u = leader_rows[best_pos] if best_pos >= 0 else block[new_leaders[-2 - best_pos]]
                row = unique_rows[block[b]]
                is_dup[row], representative[row] = True, unique_rows[leader_u]
                similarity[row], reason[row] = best_sim, NEAR
            else:
                new_leaders.append(b)
        if new_leaders:
            index.add(np.ascontiguousarray(vectors[new_leaders]))
            leader_rows.extend(int(block[b]) for b in new_leaders)

    # Exact copies follow their first occurrence into its cluster (or its reference).
    for i in range(n):
        if reason[i] == EXACT:
            first = representative[i]
            if reason[first] is not None:
                representative[i] = representative[first]
                similarity[i] = similarity[first]
                reference_match[i] = reference_match[first]

    counts = {"rows": n, "unique_texts": len(unique_rows)}
    for label in (EXACT, NEAR, REFERENCE):
        counts[label] = sum(1 for r in reason if r == label)
    counts["kept"] = int((~is_dup).sum())
    return DedupOutcome(is_dup, representative, similarity, reason, reference_match, threshold,
                        counts)
