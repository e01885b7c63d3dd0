#!/usr/bin/env bash
# The plugin's own tests and the main job on a GPU machine, in one bounded run: `pytest tests` (the
# CUDA-only tests run there instead of skipping, and every pytester run resolves `auto` to cuda:0),
# then `pytest perf_tests` with its defaults on cuda:0.
#
#   bash benchmarks/gpu_wheels.sh     # here, with network: the wheels the GPU image lacks -> .whl/
#   bash benchmarks/gpu_suite.sh      # on the GPU machine, from the repository root (carry .whl)
#   TESTS="tests/test_options.py" PERF_ARGS="--llmperf-num-samples 4" bash benchmarks/gpu_suite.sh
#                                     # a quick check of the script itself, on any machine
#   PERF_LIMIT_S=0 bash benchmarks/gpu_suite.sh   # the tests only
#
# The test extras that fit the carried tree (torchao, optimum-quanto, jsonschema and theirs) are
# wheels in .whl too; bitsandbytes (43 MB) does not fit beside them, and its tests skip with their
# reason. Everything lands in $OUT (default ./gpu-suite-out): log.txt, junit.xml (one row per test,
# with its outcome and time) and perf_tests.json (pytest-benchmark's JSON of the main job).
{  # read whole before it runs
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-suite-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
START=$(date +%s)

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || echo "== wheel install failed; going on with the image's packages"
fi
# The plugin's entry point (pytester's runs load plugins as a user's pytest does): an editable install
# where it is not installed yet, with no build isolation (no network there).
python3 -c "from importlib.metadata import entry_points as e; import sys; \
sys.exit(not any(p.value == 'pytest_llmperf.plugin' for p in e(group='pytest11')))" \
  || python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . \
  || echo "== editable install failed"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

echo "== environment, $(date -u +%FT%TZ)"
nvidia-smi 2>/dev/null | head -15
python3 -c "
import sys, torch, transformers, pytest, pytest_benchmark, pytest_llmperf
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(),
      'transformers', transformers.__version__, 'pytest', pytest.__version__,
      'pytest-benchmark', pytest_benchmark.__version__, 'plugin', pytest_llmperf.__file__)
for name in ('datasets', 'pynvml', 'scipy', 'psutil', 'matplotlib', 'torchao', 'optimum.quanto', 'bitsandbytes', 'jsonschema', 'xdist'):
    try: print(name, getattr(__import__(name), '__version__', 'present'))
    except Exception as exc: print(name, 'missing:', exc)
"
nproc; free -g | head -2

echo; echo "== pytest ${TESTS:-tests} (at most ${TESTS_LIMIT_S:-390}s)"
t0=$(date +%s)
timeout -k 10 "${TESTS_LIMIT_S:-390}" python3 -m pytest ${TESTS:-tests} -n "${WORKERS:-8}" --dist worksteal -p no:cacheprovider \
  -rfEs --durations=25 --junitxml "$OUT/junit.xml"
echo "== tests: exit $? after $(( $(date +%s) - t0 ))s"

if [ "${PERF_LIMIT_S:-120}" = 0 ]; then echo "== gpu_suite done in $(( $(date +%s) - START ))s (perf_tests not asked for)"; exit; fi
echo; echo "== pytest perf_tests on cuda (at most ${PERF_LIMIT_S:-120}s)"
t0=$(date +%s)
# shellcheck disable=SC2086
timeout -k 10 "${PERF_LIMIT_S:-120}" python3 -m pytest perf_tests -p no:cacheprovider ${PERF_ARGS:-} \
  --benchmark-json "$OUT/perf_tests.json"
echo "== perf_tests: exit $? after $(( $(date +%s) - t0 ))s"
echo "== gpu_suite done in $(( $(date +%s) - START ))s"
exit
}
