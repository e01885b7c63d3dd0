"""pytest-benchmark integration: --benchmark-disable, --benchmark-json, autosave/compare."""

import json

from conftest import RIGHT_PADDING_CONFTEST, resolved_auto_device

CONTRACT_KEYS = {
    "model", "strategy", "batch_size", "attn_implementation", "compile_mode", "dtype", "device", "num_samples",
    "generated_tokens", "tokens_per_s", "samples_per_s", "speedup_vs_bs1", "similarity_to_bs1",
    "exact_match_to_bs1", "similarity_to_reference", "load_time_s",
}


def test_benchmark_disable_runs_once_and_still_gates_outputs(run_suite):
    result = run_suite("--benchmark-disable", "--llmperf-rounds", "5", "--llmperf-warmup", "3",
                       "--llmperf-strategies", "manual,rightpad", "--llmperf-batch-sizes", "1,4",
                       "--llmperf-min-tokens-per-s", "1e12",  # no timing, so no throughput gate
                       conftest=RIGHT_PADDING_CONFTEST)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*exact match to bs=1*", "*| 4 * | manual * | 4/4 * | 1.000 * | * | - * | - * | - * | - * |",
                                 "FAILED*rightpad-bs4*"])


def test_json_carries_the_extra_info_contract(run_suite, pytester):
    out = pytester.path / "bench.json"
    result = run_suite("--llmperf-strategies", "manual,pipeline", "--llmperf-batch-sizes", "1,2",
                       f"--benchmark-json={out}")
    result.assert_outcomes(passed=4)
    benchmarks = json.loads(out.read_text())["benchmarks"]
    assert len(benchmarks) == 4
    for bench in benchmarks:
        assert bench["group"] == "builtin sdpa-nocompile-float32"
        info = bench["extra_info"]
        assert CONTRACT_KEYS <= set(info), CONTRACT_KEYS - set(info)
        assert info["model"] == "builtin" and info["device"] == resolved_auto_device() and info["dtype"] == "float32"
        assert info["num_samples"] == 4 and info["exact_match_to_bs1"] == 1.0
        assert 0 < info["generated_tokens"] <= 4 * 8
        # throughput is traceable to the measured round: tokens / time of that round
        assert abs(info["tokens_per_s"] - info["tokens_per_round"][0] / bench["stats"]["median"]) < 1e-6 * info["tokens_per_s"]
        assert abs(info["samples_per_s"] - 4 / bench["stats"]["median"]) < 1e-6 * info["samples_per_s"]
        assert 0 <= info["similarity_to_reference"] <= 1
    by_key = {(b["extra_info"]["strategy"], b["extra_info"]["batch_size"]): b["extra_info"] for b in benchmarks}
    assert by_key[("manual", 1)]["speedup_vs_bs1"] == 1.0
    expected = by_key[("manual", 2)]["samples_per_s"] / by_key[("manual", 1)]["samples_per_s"]
    assert abs(by_key[("manual", 2)]["speedup_vs_bs1"] - expected) < 1e-9


def test_similarity_to_reference_is_null_without_a_reference_column(run_suite, pytester):
    data = pytester.path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"text": f"A bowl of soup number {i}."}) + "\n" for i in range(20)))
    out = pytester.path / "bench.json"
    result = run_suite(f"--llmperf-dataset={data}", "--llmperf-prompt-column=text", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=2", f"--benchmark-json={out}")
    result.assert_outcomes(passed=1)
    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    assert info["similarity_to_reference"] is None
    assert info["num_samples"] == 4  # 20 rows, 80/20 split with seed 42 -> 4 test rows


def test_autosave_then_compare_round_trip(run_suite, pytester):
    storage = f"--benchmark-storage=file://{pytester.path / 'store'}"
    args = ("--llmperf-strategies", "manual", "--llmperf-batch-sizes", "1,2", storage)
    run_suite(*args, "--benchmark-autosave").assert_outcomes(passed=2)
    saved = list((pytester.path / "store").rglob("0001_*.json"))
    assert len(saved) == 1
    assert {b["extra_info"]["batch_size"] for b in json.loads(saved[0].read_text())["benchmarks"]} == {1, 2}
    result = run_suite(*args, "--benchmark-compare", "--benchmark-compare-fail=mean:1000%")
    result.assert_outcomes(passed=2)
    result.stderr.fnmatch_lines(["Comparing against benchmarks from: *0001_*.json"])
    # pytest-benchmark sorts the rows by speed, so saved and new rows come in any order.
    rows = [line for line in result.outlines if line.startswith("test_throughput[sdpa-nocompile-float32-manual-bs")]
    assert len([row for row in rows if "(0001_" in row]) == 2, rows
    assert len([row for row in rows if "(NOW)" in row]) == 2, rows

