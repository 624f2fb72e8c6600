#!/usr/bin/env bash
# Builds the peer we compare against, llama-cpp-python 0.3.36 (llama.cpp built natively for this
# CPU), into its own venv next to the cached assets. About 5 minutes on 2 cores. Safe to re-run.
# Usage: bash benchmarks/setup_peer.sh [path-to-sdist]
set -euo pipefail
dest=${POWERINFER_ASSETS:-$HOME/.cache/powerinfer-py/assets}
venv="$dest/peer-venv"
if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "$venv/bin/python"; exit 0
fi
python3 -m venv --clear "$venv"
CMAKE_ARGS="-DGGML_NATIVE=on" "$venv/bin/pip" install -q "${1:-llama-cpp-python==0.3.36}"
"$venv/bin/python" -c "import llama_cpp; print('peer llama-cpp-python', llama_cpp.__version__)" >&2
echo "$venv/bin/python"
