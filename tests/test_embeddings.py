"""The ONNX Runtime embeddings equal sentence-transformers' (the reference) within a tolerance,
and make the same dedup decisions."""

from __future__ import annotations

import numpy as np
import pytest

from mossforge.filters import embeddings
from mossforge.filters.dedup import find_duplicates


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    path = embeddings.onnx_path()
    if not path.is_file():  # bootstrap exports it; without it, export here (about 30 s)
        path = embeddings.export_onnx(tmp_path_factory.mktemp("onnx") / "minilm.onnx")
    return embeddings._OnnxModel(path)


def test_onnx_and_sentence_transformers_agree(onnx_model):
    from mossforge.generators.plan import draw_slots
    from mossforge.generators.seedbank import SeedBank

    bank = SeedBank()
    slots = draw_slots(bank.slot_space(), 40, 0)
    texts = [bank.generate(s, seed=0, config_hash="x", code_version="y").question for s in slots]
    texts += ["", "a", "Ünïcödé — “quotes” ✓", "word " * 400]  # empty, tiny, non-ASCII, truncated
    ours = onnx_model.encode(texts, batch_size=32)
    reference = embeddings.MiniLMEmbedder(runtime="torch").encode(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert np.abs(ours - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    for threshold in (0.8, 0.9, 0.95):
        a = find_duplicates(texts, threshold, embeddings=ours)
        b = find_duplicates(texts, threshold, embeddings=reference)
        assert list(a.representative) == list(b.representative) and a.stats == b.stats


def test_the_batch_size_changes_speed_not_vectors(onnx_model):
    """Sorted by length and padded per batch: the batch size must not change an embedding."""
    texts = [f"How do I {verb} the {noun} safely at home?" * k
             for k, verb in enumerate(["clean", "store", "cut", "open"], 1) for noun in ["knife", "bleach", "lock"]]
    by_batch = [onnx_model.encode(texts, batch_size=n) for n in (1, 5, 64, 256)]
    for vectors in by_batch[1:]:
        assert np.abs(vectors - by_batch[0]).max() < 1e-5


def test_the_default_runtime_is_onnx_when_exported_and_torch_on_request(monkeypatch):
    monkeypatch.setenv("MOSSFORGE_EMBEDDINGS", "torch")
    assert embeddings.default_runtime() == "torch"
    monkeypatch.delenv("MOSSFORGE_EMBEDDINGS")
    assert embeddings.default_runtime() == ("onnx" if embeddings.onnx_path().is_file() else "torch")
