#!/usr/bin/env bash
# The GPU checks of issue 10 as one prepared command, for a session whose task is lent an NVIDIA
# machine (the workplace's device tool; it runs in the repository root and returns what is written
# under $OUT). Nothing can be installed there from the network, and its Python (3.12) lacks cffi
# and gguf, so carry them as wheels, fetched here first (see the device tool's README):
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl cffi pycparser gguf tqdm
#
# then: run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=540).
# It builds the library with CUDA for the machine's GPU (sm_90 on an H200), runs the CUDA device
# against the CPU stand-in (tests/test_offload_cuda.py) and the stand-in's own tests, and the
# offload benchmark on the GPU with the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_check_out}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
cmake -S vendor/powerinfer-core -B /tmp/pi-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOWERINFER_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" > "$OUT/cmake.log"
cmake --build /tmp/pi-cuda -j16 >> "$OUT/cmake.log"
export POWERINFER_LIB_PATH=/tmp/pi-cuda
python3 -c "import powerinfer_py as p, json; print(json.dumps(p.system_info()['cuda']))" | tee "$OUT/system_info.json"
python3 -m pytest -q -ra -p no:cacheprovider tests/test_offload_cuda.py tests/test_offload.py 2>&1 | tee "$OUT/tests.log"
python3 benchmarks/bench_offload.py --device cuda --runs 3 --threads 8 --json "$OUT/offload.json" 2>&1 | tee "$OUT/offload.log"
