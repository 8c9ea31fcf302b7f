#!/usr/bin/env bash
# Create .venv and install mossforge into it: `bash scripts/bootstrap.sh [EXTRA]` (EXTRA: test).
#
# torch goes in first, pinned: 2.13.0 is the CPU build this project is tested with, and an
# unpinned torch (asked for by sentence-transformers) would pull a CUDA build of several GB.
# On a GPU machine, install the torch build you want first; the project's bound keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$python" -m venv .venv
# pip warns about every missing mirror folder of this machine's pip config; keep the rest.
quiet() { "$@" 2>&1 | { grep -vE "is ignored: it is neither a file nor a directory" || true; }; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  quiet .venv/bin/pip install --quiet "torch==${MOSSFORGE_TORCH:-2.13.0}"
fi
quiet .venv/bin/pip install --quiet -e ".${1:+[$1]}"
.venv/bin/python -c "import torch, prefect, sentence_transformers, datasets" \
  || { echo "bootstrap: the environment in .venv does not import; see the errors above" >&2; exit 1; }
# The bundled MiniLM exported to ONNX once (dedup then skips importing torch); a no-op when present.
.venv/bin/python -m filters.embeddings --export >/dev/null
