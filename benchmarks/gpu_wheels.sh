#!/usr/bin/env bash
# Wheels the GPU machine's image lacks, downloaded here (it reaches no network) into .whl/, for
# benchmarks/gpu_validation.sh to install with --no-index. The image has python3 3.12, torch
# 2.11+cu130, transformers 5.17, pytest, pytest-xdist, nvidia-ml-py, scipy, psutil, matplotlib,
# pyarrow, fsspec, xxhash, pandas, huggingface-hub 1.33, tokenizers 0.23.2, safetensors, tqdm,
# requests and httpx; not datasets, dill or multiprocess. One version of each, matching the
# development venv. Run from the repository root: bash benchmarks/gpu_wheels.sh
set -euo pipefail
WHEELS=(
  transformers==5.24.0      # ours; the image's 5.17 lacks what the plugin's continuous batching uses
  pytest-benchmark==5.3.1   # the plugin's timing
  py-cpuinfo2==10.1.1       # pytest-benchmark 5.3.1's dependency (not py-cpuinfo)
  datasets==5.2.0           # the plugin's dataset loading
  dill==0.4.1               # datasets' dependencies missing from the image
  multiprocess==0.70.19
  safetensors==0.8.0        # transformers 5.24 checks safetensors>=0.8.0 and regex>=2025.10.22 at import;
  regex==2026.11.19         # the image's may be older (transformers 5.17's floors)
  # The test extras, for benchmarks/gpu_suite.sh (bitsandbytes, 43 MB, does not fit the 64 MiB a call carries)
  torchao==0.18.0
  optimum-quanto==0.2.7
  jsonschema==4.26.0
  jsonschema-specifications==2025.9.1
  referencing==0.37.0
  rpds-py==2026.9.1
  pytest==9.2.0             # the development venv's, for pytester's behaviour
  pytest-xdist==3.8.0
)
mkdir -p .whl
for wheel in "${WHEELS[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$wheel"
done
ls -l .whl
