#!/usr/bin/env bash
# GPU validation of issue 16: the plugin on architecture-shaped models at real size, in one bounded run.
#
#   bash benchmarks/gpu_wheels.sh            # here, with network: the wheels the GPU image lacks -> .whl/
#   bash benchmarks/gpu_validation.sh        # on the GPU machine, from the repository root (carry .whl)
#   GPU_VALIDATION_CPU_SMOKE=1 bash benchmarks/gpu_validation.sh   # the same steps on CPU, tiny
# GPU_VALIDATION_DRY_RUN=1 prints the steps without running them.
# SHAPES="llama-3.2-1b" picks the shapes (SHAPES=builtin: the built-in model and data set, a quick
# check of the script itself); BARE_SHAPES those of the bare loop (default: SHAPES).
#
# Steps, in order of importance, each under `timeout` and inside one overall budget
# (GPU_VALIDATION_BUDGET_S, default 450 s); a step that fails or runs out of time is reported and the
# next one runs:
#   1. the bare loop (benchmarks/bare_loop.py) for each shape: tokens/s, median token gap, roofline;
#   2. per shape, bs=1: manual with compile none against reduce-overhead (the roofline bar: compiled
#      bs=1 decode at >= 50% of the copy-bandwidth roofline), and continuous (compile none; transformers
#      warns that reduce-overhead's CUDA graphs do not suit continuous batching); then, compile none,
#      manual against continuous, bs 4, 16, 64 and max (doubling then bisecting on out-of-memory,
#      capped at the workload's 64 prompts: the consistency test's bs=1 reference costs every prompt
#      one at a time, so the workload stays small). The first shape is compiled here; the others'
#      compiled bs=1 runs come after every shape's uncompiled steps;
#   3. the bare loop's rows beside the plugin's (read from the results files; afterwards, anywhere:
#      python3 benchmarks/bare_loop.py --shape S --dtype bfloat16 --compare-only OUT/bare_loop.jsonl
#      --plugin-results OUT/results.jsonl).
# bfloat16, sdpa, synthetic prompts of PROMPT_TOKENS random tokens, EOS ignored. Telemetry, energy per
# token and the roofline come from the plugin's tables (nvidia-ml-py in the image).
#
# Everything lands in $OUT (default ./gpu-validation-out): log.txt (all output, the plugin's tables
# included), results.jsonl (every case the plugin finished, all steps), bare_loop.jsonl, and
# artifacts.tgz (pytest-benchmark JSONs and report folders per step). Refreshed after every step.
{  # read whole before it runs: editing the file meanwhile cannot change a run
set -u
cd "$(dirname "$0")/.."
SMOKE=${GPU_VALIDATION_CPU_SMOKE:-0}
OUT=${OUT:-$PWD/gpu-validation-out}
WORK=$(mktemp -d /tmp/gpu-validation.XXXXXX)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
START=$(date +%s)
SCALE=1; [ "$SMOKE" = 1 ] && SCALE=6  # the shared 2-core CPU: imports alone take a minute when it is busy
DEADLINE=$((START + ${GPU_VALIDATION_BUDGET_S:-$((450 * SCALE))}))
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

if [ "$SMOKE" = 1 ]; then
  DEVICE=cpu; DTYPE=float32; SHAPES=${SHAPES:-smollm2-135m}; PROMPT_TOKENS=16; NEW_TOKENS=4
  BS1_SAMPLES=2; SWEEP_SIZES=2; SWEEP_SAMPLES=2; COMPILES=none; BARE_SIZES=1,2; REPEATS=1
else
  DEVICE=cuda; DTYPE=bfloat16; SHAPES=${SHAPES:-llama-3.2-1b gemma-3-270m}; PROMPT_TOKENS=128; NEW_TOKENS=32
  BS1_SAMPLES=4; SWEEP_SIZES=4,16,64; SWEEP_SAMPLES=64; COMPILES=none,reduce-overhead
  BARE_SIZES=1,16,64; REPEATS=3
fi

# The wheels the image lacks (benchmarks/gpu_wheels.sh), into /tmp/site, ahead of the image's own.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ "$SMOKE" != 1 ] && [ "${GPU_VALIDATION_DRY_RUN:-0}" != 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PYTHONPATH || echo "== wheel install failed; going on with the image's packages"
fi
# The plugin from this checkout: through its entry point where it is installed, else named with -p.
PLUGIN=()
python3 -c "from importlib.metadata import entry_points as e; import sys; \
sys.exit(not any(p.value == 'pytest_llmperf.plugin' for p in e(group='pytest11')))" || PLUGIN=(-p pytest_llmperf.plugin)

collect() {
  cat "$WORK"/results-*.jsonl > "$OUT/results.jsonl" 2>/dev/null
  tar czf "$OUT/artifacts.tgz" -C "$WORK" --exclude='results-*.jsonl' . 2>/dev/null
}

step() {  # step NAME MAX_SECONDS COMMAND...: bounded by its maximum and by what is left of the budget
  local name=$1 limit=$2 left rc t0
  shift 2
  left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 30 ]; then echo "== $name: skipped, ${left}s left of the budget"; return; fi
  limit=$((limit * SCALE))
  [ "$limit" -gt $((left - 10)) ] && limit=$((left - 10))
  echo; echo "== $name (at most ${limit}s): $*"
  [ "${GPU_VALIDATION_DRY_RUN:-0}" = 1 ] && return  # print the plan only
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc after $(( $(date +%s) - t0 ))s$([ $rc = 124 ] && echo ', timed out')"
  collect
}

model_options() {  # a shape with synthetic prompts; SHAPES=builtin: the built-in model and data set
  if [ "$1" = builtin ]; then echo --llmperf-model builtin --llmperf-dataset builtin
  else echo --llmperf-model "shape:$1" --llmperf-dataset synthetic --llmperf-prompt-tokens "$PROMPT_TOKENS"; fi
}

plugin() {  # plugin NAME MAX_SECONDS SHAPE EXTRA_OPTIONS...: pytest perf_tests with the common options
  local name=$1 limit=$2 shape=$3
  shift 3
  # shellcheck disable=SC2046
  step "$name" "$limit" python3 -m pytest perf_tests "${PLUGIN[@]}" -p no:cacheprovider -p no:randomly -q \
    $(model_options "$shape") --llmperf-max-new-tokens "$NEW_TOKENS" --llmperf-device "$DEVICE" --llmperf-dtype "$DTYPE" --llmperf-attn sdpa \
    --llmperf-progress off --llmperf-results-file "$WORK/results-$name.jsonl" \
    --benchmark-json "$WORK/benchmark-$name.json" --llmperf-report "$WORK/report-$name" "$@"
}

echo "== gpu_validation: smoke=$SMOKE device=$DEVICE shapes=[$SHAPES] budget $((DEADLINE - START))s, $(date -u +%FT%TZ)"
step environment 60 bash -c 'nvidia-smi 2>/dev/null | head -15; python3 -c "
import sys, torch, transformers, pytest, pytest_benchmark, pytest_llmperf
print(sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available(),
      \"transformers\", transformers.__version__, \"pytest\", pytest.__version__,
      \"pytest-benchmark\", pytest_benchmark.__version__, \"plugin\", pytest_llmperf.__file__)
for name in (\"datasets\", \"pynvml\", \"scipy\", \"psutil\", \"matplotlib\"):
    try: print(name, getattr(__import__(name), \"__version__\", \"present\"))
    except Exception as exc: print(name, \"missing:\", exc)
"; nproc; free -g | head -2'

for shape in ${BARE_SHAPES:-$SHAPES}; do
  step "bare-$shape" 60 python3 benchmarks/bare_loop.py --shape "$shape" --device "$DEVICE" --dtype "$DTYPE" \
    --batch-sizes "$BARE_SIZES" --prompt-tokens "$PROMPT_TOKENS" --new-tokens "$NEW_TOKENS" --repeats "$REPEATS" \
    --json "$OUT/bare_loop.jsonl"
done
# The first shape gets every step before the next shape starts; compiling takes a minute or more
# per shape, so the other shapes' compiled runs come last, in what is left of the budget.
first=1
for shape in $SHAPES; do  # bs=1: compile none against reduce-overhead (manual), manual against continuous
  compiles=none; [ "$first" = 1 ] && compiles=$COMPILES
  plugin "bs1-$shape" $([ "$first" = 1 ] && echo 180 || echo 60) "$shape" --llmperf-strategies manual,continuous \
    --llmperf-compile "$compiles" -k "not (continuous and reduce)" --llmperf-batch-sizes 1 \
    --llmperf-num-samples "$BS1_SAMPLES" --llmperf-warmup 1 --llmperf-rounds 3
  # max: doubling then bisecting, capped at the workload's prompts
  plugin "sweep-$shape" 110 "$shape" --llmperf-strategies manual,continuous --llmperf-compile none \
    --llmperf-batch-sizes "$SWEEP_SIZES,max" --llmperf-num-samples "$SWEEP_SAMPLES" --llmperf-warmup 1 \
    --llmperf-rounds 2
  first=0
done
if [ "$COMPILES" != none ]; then
  for shape in ${SHAPES#* }; do  # every shape but the first, compiled, bs=1, manual
    [ "$shape" = "$SHAPES" ] && break  # a single shape: already compiled above
    plugin "bs1-compiled-$shape" 150 "$shape" --llmperf-strategies manual --llmperf-compile reduce-overhead \
      --llmperf-batch-sizes 1 --llmperf-num-samples "$BS1_SAMPLES" --llmperf-warmup 1 --llmperf-rounds 3
  done
fi
for shape in $SHAPES; do  # the bare loop's rows beside the plugin's: no model built (also runnable afterwards)
  step "compare-$shape" 30 python3 benchmarks/bare_loop.py --shape "$shape" --dtype "$DTYPE" \
    --compare-only "$OUT/bare_loop.jsonl" --plugin-results "$OUT/results.jsonl"
done
collect
echo; echo "== gpu_validation done in $(( $(date +%s) - START ))s; files in $OUT:"; ls -l "$OUT"
exit
}
