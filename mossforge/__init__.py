"""mossforge's shared core: the record schema, the config models and the image store.

`generators/`, `filters/` and `flows/` all import from here; this package imports none of them.
"""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("mossforge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"


@functools.cache
def code_version() -> str:
    """Package version plus the git commit when running from a checkout ("0.1.0+g1a2b3c4[.dirty]")."""
    root = Path(__file__).resolve().parent.parent
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty=.dirty", "--abbrev=7"],
            cwd=root, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{described}" if described else __version__


# The installed packages whose behaviour shapes what a build writes: the cards' pixels (pillow),
# the embeddings and so dedup's decisions (onnxruntime, sentence-transformers, transformers,
# tokenizers, torch, faiss-cpu, numpy), diffusion's images (diffusers), image hashes (imagehash),
# the local models' answers (llama-cpp-python), the files (polars, pyarrow, datasets).
OUTPUT_PACKAGES = ("pillow", "onnxruntime", "sentence-transformers", "transformers", "tokenizers", "torch",
                   "faiss-cpu", "numpy", "diffusers", "imagehash", "llama-cpp-python", "polars", "pyarrow",
                   "datasets")


@functools.cache
def package_versions() -> dict[str, str]:
    """Python's version and those of the OUTPUT_PACKAGES installed (recorded in each version's
    manifest, and part of every cached stage's key)."""
    import platform

    versions = {"python": platform.python_version()}
    for name in OUTPUT_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # an optional one (llama-cpp-python)
            pass
    return versions


@functools.cache
def source_hash() -> str:
    """Hash of mossforge's own Python sources and of `package_versions()`: part of every cached
    stage's key, so a code change or a new Pillow, ONNX Runtime, ... recomputes the stages instead
    of reusing results the old code or packages produced."""
    import hashlib
    import importlib.util

    # flows/, generators/ and filters/ install as mossforge.flows, ...: in a checkout they are
    # folders beside mossforge/, in an installed wheel folders inside it.
    files: dict[str, Path] = {}
    for package in ("mossforge", "mossforge.generators", "mossforge.filters", "mossforge.flows"):
        folder = Path(next(iter(importlib.util.find_spec(package).submodule_search_locations))).resolve()
        for path in folder.rglob("*.py"):
            files.setdefault(f"{package}/{path.relative_to(folder).as_posix()}", path)
    digest = hashlib.sha256(repr(sorted(package_versions().items())).encode())
    for name, path in sorted(files.items()):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
