"""Against a stored earlier run: a saved run carries what the next run compares with, and a compared
run fails on a real slowdown or a real change of the outputs, says why, and passes otherwise.

Planted effects are large (2x and more, or a different first token), so these tests cannot flake
on a noisy machine; the gate's false-alarm and detection rates at the default settings are
measured by ``benchmarks/gate_false_alarms.py``. Tests about outputs compare untimed
(``--benchmark-disable``), so no timing verdict can fail them. Torch runs on one thread, as the
README advises on a shared machine: with a busy process on every core, two threads wait on each
other and the speed probe's readings scatter. These tests pass with a CPU hog on every core
(docs/robustness.md).
"""

import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from pytest_llmperf.model import builtin

BASE = ("--llmperf-strategies=planted", "--llmperf-batch-sizes=1,2", "--llmperf-rounds=3", "--llmperf-num-samples=8",
        "--llmperf-max-new-tokens=16")

# The same strategy in the baseline and in the compared run (test ids and identities match), changed
# through the environment: PLANTED_SLOWDOWN makes each round that much longer, PLANTED_PREFIX puts
# text in front of every prompt (a behaviour change the model really sees).
PLANTED_CONFTEST = '''
import dataclasses
import os
import time

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("planted")
class Planted(ManualStrategy):
    def setup(self, ctx):
        prefix = os.environ.get("PLANTED_PREFIX")
        if prefix:  # this test's context only: the session's workload is untouched
            ctx.workload = dataclasses.replace(ctx.workload, texts=tuple(prefix + t for t in ctx.workload.texts))

    def generate(self, ctx):
        start = time.perf_counter()
        generations = super().generate(ctx)
        time.sleep(float(os.environ.get("PLANTED_SLOWDOWN", "0")) * (time.perf_counter() - start))
        if os.environ.get("PLANTED_NEAR_TIE_FLIP"):
            return ctx.finish([flip_first_near_tie(ctx, prompt, sample.token_ids)
                               for prompt, sample in zip(ctx.workload.input_ids, generations.samples)])
        return generations


def flip_first_near_tie(ctx, prompt, ids, gap=0.3):
    """What other hardware does to a greedy answer: at the first position where the model's top two
    tokens are within `gap` nats, the runner-up wins."""
    import torch

    with torch.no_grad():
        ids_now = torch.tensor([[*prompt, *ids]], device=ctx.model.device)
        log_probs = torch.log_softmax(ctx.model(input_ids=ids_now).logits[0].float(), -1)
    for position in range(len(ids)):
        top = log_probs[len(prompt) - 1 + position].topk(2)
        if float(top.values[0] - top.values[1]) < gap:
            return [*ids[:position], int(top.indices[1]), *ids[position + 1:]]
    return list(ids)
'''

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''


@pytest.fixture(autouse=True)
def one_torch_thread(torch_threads_put_back):
    """torch's threads, for this test only (pytester runs in this process)."""
    import torch

    torch.set_num_threads(1)


def save_baseline(run_suite, *args):
    result = run_suite(*BASE, "--benchmark-json=base.json", *args, suite=SUITE, conftest=PLANTED_CONFTEST)
    result.assert_outcomes(passed=2)
    return result


def compared(run_suite, *args, baseline="base.json"):
    """The same suite, compared with a saved run."""
    return run_suite(*BASE, f"--llmperf-baseline={baseline}", *args, suite=SUITE, conftest=PLANTED_CONFTEST)


def saved(pytester, name="base.json"):
    return json.loads((pytester.path / name).read_text())


SPEED_CHANGED = "the machine's speed changed"


def at_a_held_speed(run, attempts=3, also_when=None):
    """``run()`` (a baseline and a comparison) again while the comparison says that the machine's
    speed changed between them and the probe could not correct for it (or, with ``also_when``, while
    that text is in a tokens/s verdict of the comparison's table): that verdict is right on a machine
    whose load changed (it is inconclusive, never regressed or unchanged), and a user then runs it again."""
    def throughput_verdicts(result) -> list[str]:
        cells = [[cell.strip() for cell in line.split("|")] for line in result.stdout.lines if line.startswith("| test_")]
        return [row[-2] for row in cells if row[2] == "tokens/s"]

    for _ in range(attempts):
        result = run()
        if SPEED_CHANGED in result.stdout.str():
            result.stdout.fnmatch_lines([f"*| inconclusive: {SPEED_CHANGED} (probe * ms -> * ms)*"])
        elif also_when is None or not any(also_when in verdict for verdict in throughput_verdicts(result)):
            return result
    # Every attempt's verdict was inconclusive, as it must be while the load keeps changing (seen with a
    # CPU hog on each of the 2 cores): right, and nothing left to check of the planted change here.
    pytest.skip(f"the machine's speed changed between baseline and comparison in each of {attempts} attempts, "
                "or its rounds were too noisy to judge; the verdict was 'inconclusive' each time, as it should be")


def test_a_saved_run_carries_identity_causes_outputs_samples_and_the_environment(run_suite, pytester):
    save_baseline(run_suite)
    data = saved(pytester)
    info = data["benchmarks"][0]["extra_info"]
    assert info["identity"] == {
        "model": "builtin", "dataset": "builtin", "split": "test", "num_samples": 8, "prompts": info["identity"]["prompts"],
        "max_new_tokens": 16, "decoding": "greedy", "dtype": "float32", "attn_implementation": "sdpa",
        "compile_mode": "none", "strategy": "planted", "batch_size": info["batch_size"]}
    assert {"model_revision", "tokenizer", "chat_template", "prompt_token_ids", "prompt_token_ids_per_prompt",
            "generation_config", "generation_config_resolved"} <= set(info["causes"])
    assert info["causes"]["model_revision"].startswith("local:")
    assert len(info["metric_samples"]["tokens_per_s"]) == 3 and len(info["probe_s"]) == 3
    outputs = data["llmperf"]["outputs"]
    assert len(outputs) == 1, "bs=1 and bs=2 generate the same ids: stored once"
    assert all(b["extra_info"]["outputs"] in outputs for b in data["benchmarks"])
    assert len(outputs[info["outputs"]]) == 8
    machine = data["machine_info"]["llmperf"]
    assert machine["hardware"]["device_type"] in ("cpu", "cuda") and machine["hardware"]["cpu_count"] >= 1
    assert machine["software"]["transformers"] and machine["software"]["torch"]


def test_an_unchanged_run_passes_and_the_table_says_so(run_suite, pytester):
    save_baseline(run_suite)
    result = compared(run_suite, "--llmperf-tolerance=0.5")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*= llmperf vs baseline =*",
        "llmperf vs baseline base.json @ *",
        "| case * | metric * | baseline * | now * | change * | CI * | verdict *",
        "*planted-bs1]*| tokens/s *",
        "*planted-bs1]*| outputs*| 8 samples*| 8 identical*| 0 differ*| identical*",
        "environment: hardware identical",
        "environment: software identical",
    ])


def test_a_planted_slowdown_fails_with_the_numbers_and_the_baseline_run(run_suite, pytester, monkeypatch):
    def run():
        monkeypatch.delenv("PLANTED_SLOWDOWN", raising=False)
        save_baseline(run_suite)
        monkeypatch.setenv("PLANTED_SLOWDOWN", "2")  # rounds 3x as long: a third of the throughput
        return compared(run_suite)

    # noisy rounds (8 pytest-xdist workers sharing one GPU) make a verdict inconclusive: run again, as a user would
    result = at_a_held_speed(run, also_when="inconclusive")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*llmperf gate failed: planted bs=1*",
        # "at equal machine speed" when the speed probe was steady (see docs/benchmarks)
        "*tokens/s vs baseline: * tokens/s now vs * baseline, ratio* 0.* (99% CI 0.*-0.*"
        "): regressed; tolerance 10%; baseline run base.json @ * 2026-*",
    ])


def test_a_planted_behaviour_change_fails_the_drift_gate_as_a_confident_change(run_suite, pytester, monkeypatch):
    save_baseline(run_suite)
    monkeypatch.setenv("PLANTED_PREFIX", "Ignore the text and say nothing. ")
    result = compared(run_suite, "--benchmark-disable")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*outputs vs baseline: */8 identical; match 0.* < required 1; baseline run base.json @ *",
        "*differing samples (now vs the stored baseline run; near-tie = *",
        "*- sample *: confident change at generated token *: * (reference) vs * (now), log-prob margin *",
        "*prompt: *", "*baseline: *", "*now: *",
    ])


def test_a_near_tie_flip_is_numeric_drift_and_can_be_tolerated(run_suite, pytester, monkeypatch):
    save_baseline(run_suite)
    monkeypatch.setenv("PLANTED_NEAR_TIE_FLIP", "1")
    in_session_off = ("--llmperf-min-exact-match=off", "--llmperf-min-similarity=off", "--benchmark-disable")
    result = compared(run_suite, *in_session_off)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*outputs vs baseline: */8 identical; match 0.* < required 1*",
                                 "*- sample *: near-tie at generated token *: * (reference) vs * (now), "
                                 "log-prob margin *"])
    assert "confident change" not in result.stdout.str()
    tolerated = compared(run_suite, *in_session_off, "--llmperf-tolerate-near-ties")
    tolerated.assert_outcomes(passed=2)
    tolerated.stdout.fnmatch_lines(["*| outputs*| 8 samples*| * identical*| * differ*| tolerated (* near-tie)*"])
    # Compared with another machine's outputs (a baseline without this machine), near-ties are what
    # other hardware does: tolerated without the option.
    data = saved(pytester)
    data["machine_info"]["llmperf"]["hardware"].update(device_type="cuda", gpu_count=1,
                                                       gpus=[{"name": "NVIDIA L4", "memory_mb": 22700,
                                                              "capability": "8.9"}])
    (pytester.path / "l4.json").write_text(json.dumps(data))
    elsewhere = compared(run_suite, *in_session_off, baseline="l4.json")
    elsewhere.assert_outcomes(passed=2)
    elsewhere.stdout.fnmatch_lines(["*| outputs*| 8 samples*| * identical*| * differ*| tolerated (* near-tie)*"])


def copy_of_the_builtin_model(pytester):
    model = pytester.path / "model"
    shutil.copytree(builtin.MODEL_DIR, model)
    return model


def add_a_line_on_top(path, line):
    path.write_text(f"{line}\n{path.read_text()}")


def compared_with_model(run_suite, model, *args):
    return run_suite(*BASE, f"--llmperf-model={model}", "--llmperf-baseline=base.json", "--benchmark-disable", *args,
                     suite=SUITE, conftest=PLANTED_CONFTEST)


def test_an_edited_chat_template_is_named_as_the_likely_cause(run_suite, pytester):
    model = copy_of_the_builtin_model(pytester)
    save_baseline(run_suite, f"--llmperf-model={model}")
    template = model / "chat_template.jinja"
    template.write_text(template.read_text().replace("{{", "Answer in French. {{", 1))
    result = compared_with_model(run_suite, model)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*outputs vs baseline: * < required 1; baseline run * likely cause: chat template "
                                 "changed; prompt token ids differ for 8/8 prompts*",
                                 "*changed input (chat template changed; its prompt token ids differ) at generated "
                                 "token 0*"])


def test_a_changed_input_is_never_tolerated_as_a_near_tie(run_suite, pytester):
    """An empty line on top of the chat template moves a few greedy answers by a hair (log-prob margins
    within --llmperf-near-tie): that is a change of what the model is given, not numeric drift, and
    --llmperf-tolerate-near-ties does not let it pass."""
    model = copy_of_the_builtin_model(pytester)
    save_baseline(run_suite, f"--llmperf-model={model}")
    add_a_line_on_top(model / "chat_template.jinja", "")
    result = compared_with_model(run_suite, model, "--llmperf-tolerate-near-ties")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*- sample *: changed input (chat template changed; its prompt token ids differ) at generated token *: "
        "* (reference) vs * (now), log-prob margin *",
        "*| outputs*| 8 samples*| * identical*| * differ*| drifted (* changed input)*",
        "likely causes of the drift: chat template changed; prompt token ids differ for 8/8 prompts"])
    assert "near-tie at" not in result.stdout.str() and "| tolerated (" not in result.stdout.str()


def test_a_changed_cause_is_said_even_when_every_gate_passes(run_suite, pytester):
    """A Jinja comment changes the template, not the prompts: the outputs are identical, and the run
    still says what changed since the baseline."""
    model = copy_of_the_builtin_model(pytester)
    save_baseline(run_suite, f"--llmperf-model={model}")
    add_a_line_on_top(model / "chat_template.jinja", "{# edited #}")
    result = compared_with_model(run_suite, model)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*| outputs*| 8 samples*| 8 identical*| 0 differ*| identical*",
                                 "changed since the baseline: chat template changed"])


def test_a_copied_model_folder_is_compared_and_what_changed_is_named(run_suite, pytester):
    """The built-in model's folder copied elsewhere is the same model: only its path differs, so it is
    compared, with the path among the causes (equal file sizes do not prove equal weights). Another
    config at that path is other work, and says what differs."""
    save_baseline(run_suite)
    model = copy_of_the_builtin_model(pytester)
    add_a_line_on_top(model / "chat_template.jinja", "")
    result = compared_with_model(run_suite, model, "--llmperf-tolerate-near-ties")
    result.assert_outcomes(failed=2)
    moved = f"model path changed: 'builtin' -> '{model}' (the same config and weight file sizes)"
    result.stdout.fnmatch_lines([f"*- sample *: changed input (chat template changed; {moved}; its prompt token ids "
                                 "differ) at generated token *",
                                 "*| outputs*| drifted (* changed input)*",
                                 f"likely causes of the drift: chat template changed; prompt token ids differ for 8/8 "
                                 f"prompts; {moved}"])
    config = model / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()), indent=4))
    other = compared_with_model(run_suite, model, "--llmperf-min-exact-match=off", "--llmperf-min-similarity=off")
    other.assert_outcomes(passed=2)
    other.stdout.fnmatch_lines([f"*planted-bs1]*| not comparable: the work differs: model: 'builtin' -> '{model}'; "
                                "and chat template changed; model weights or config changed; prompt token ids differ "
                                "for 8/8 prompts*"])


def at_machine_speed(data, factor, scatter=(0.6, 1.0, 1.8)):
    """The saved run as a machine ``factor`` times as fast would have measured it, with speed-probe
    readings scattered too much to correct for (CV 54%): what a heavily loaded machine records. What
    energy such a machine used cannot be made up (the probe does not scale it; a GPU idles through
    a slower machine's longer rounds), so it saved none, as a run without an energy counter (a CPU
    without readable RAPL) saves none."""
    from statistics import median

    from pytest_llmperf.measure.metrics import METRICS_BY_NAME

    data = json.loads(json.dumps(data))
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        probe = median(info["probe_s"]) / factor
        info["probe_s"] = [probe * spread for spread in scatter]
        for name, values in info["metric_samples"].items():
            metric = METRICS_BY_NAME[name]
            if metric.machine_bound:
                info["metric_samples"][name] = [v * factor if metric.higher_is_better else v / factor for v in values]
            elif name == "energy_per_token_j":
                info["metric_samples"][name] = []
    return data


def test_a_machine_speed_change_the_probe_cannot_correct_is_inconclusive(run_suite, pytester, monkeypatch):
    """The baseline ran on a machine 5x as fast (or as slow) and its probe readings scattered: an
    unchanged run is not "regressed", a planted slowdown is not "improved"; both are inconclusive,
    and say why."""
    save_baseline(run_suite)
    (pytester.path / "faster.json").write_text(json.dumps(at_machine_speed(saved(pytester), 5)))
    (pytester.path / "slower.json").write_text(json.dumps(at_machine_speed(saved(pytester), 1 / 5)))
    unchanged = compared(run_suite, "--llmperf-tolerance=0.5", baseline="faster.json")
    monkeypatch.setenv("PLANTED_SLOWDOWN", "2")  # rounds 3x as long, on a machine 5x as fast as the baseline's
    slowed = compared(run_suite, baseline="slower.json")
    for result in (unchanged, slowed):
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([
            f"*planted-bs1]*| tokens/s *| inconclusive: {SPEED_CHANGED} (probe * ms -> * ms)*",
            f"*planted-bs1]*| samples/s *| inconclusive: {SPEED_CHANGED} (probe * ms -> * ms)*",
            f"*planted-bs2]*| tokens/s *| inconclusive: {SPEED_CHANGED} (probe * ms -> * ms)*"])
        assert not any(verdict in result.stdout.str() for verdict in ("| regressed", "| improved"))


def test_other_threads_make_timing_not_comparable_and_strict_env_fails(run_suite, pytester, monkeypatch):
    """The same machine (docs/ci.md: the hardware fingerprint) run with other threads: the environment
    guard. Another machine altogether is "no baseline for this hardware" (tests/test_fleet.py)."""
    save_baseline(run_suite)
    data = saved(pytester)
    data["machine_info"]["llmperf"]["hardware"]["torch_num_threads"] = 64
    (pytester.path / "other.json").write_text(json.dumps(data))
    monkeypatch.setenv("PLANTED_SLOWDOWN", "2")  # would regress, but cannot be judged on other hardware
    result = compared(run_suite, baseline="other.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*| tokens/s*| not comparable (other hardware)*",
                                 "environment: hardware differs: torch_num_threads: 64 -> 1 (timing not comparable)"])
    strict = compared(run_suite, "--llmperf-strict-env", baseline="other.json")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*tokens/s vs baseline: * not comparable (other hardware)*"])


def test_a_changed_workload_is_not_comparable(run_suite, pytester):
    save_baseline(run_suite)
    result = compared(run_suite, "--llmperf-max-new-tokens=8")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*planted-bs1]*| not comparable: the work differs: max_new_tokens: 16 -> 8 *"])


def test_no_baseline_for_a_case_passes_with_a_note_unless_required(run_suite, pytester):
    save_baseline(run_suite)
    args = ("--llmperf-strategies=planted", "--llmperf-batch-sizes=1,4", "--llmperf-rounds=3",
            "--llmperf-baseline=base.json", "--benchmark-disable")
    result = run_suite(*args, suite=SUITE, conftest=PLANTED_CONFTEST)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*planted-bs4]*| no baseline: no case * in the baseline *"])
    required = run_suite(*args, "--llmperf-require-baseline", suite=SUITE, conftest=PLANTED_CONFTEST)
    required.assert_outcomes(passed=1, failed=1)
    required.stdout.fnmatch_lines(["*no case *planted-bs4] in the baseline*"])


def test_benchmark_disable_still_gates_drift(run_suite, pytester, monkeypatch):
    save_baseline(run_suite)
    monkeypatch.setenv("PLANTED_PREFIX", "Ignore the text and say nothing. ")
    result = run_suite(*BASE, "--benchmark-disable", "--llmperf-baseline=base.json", suite=SUITE,
                       conftest=PLANTED_CONFTEST)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*outputs vs baseline: * < required 1*"])


def test_benchmark_compare_selects_the_baseline(run_suite, pytester, monkeypatch):
    storage = f"--benchmark-storage=file://{pytester.path / 'store'}"

    def run():
        monkeypatch.delenv("PLANTED_SLOWDOWN", raising=False)
        run_suite(*BASE, storage, "--benchmark-autosave", suite=SUITE, conftest=PLANTED_CONFTEST
                  ).assert_outcomes(passed=2)
        monkeypatch.setenv("PLANTED_SLOWDOWN", "2")
        return run_suite(*BASE, storage, "--benchmark-compare", suite=SUITE, conftest=PLANTED_CONFTEST)

    result = at_a_held_speed(run)
    outcomes = result.parseoutcomes()
    # both cases are 2x slower; on a busy machine one may be too noisy to judge (inconclusive, passed)
    assert outcomes.get("failed") in (1, 2) and outcomes.get("failed", 0) + outcomes.get("passed", 0) == 2
    result.stdout.fnmatch_lines(["*tokens/s vs baseline: *, ratio* 0.*: regressed; tolerance 10%; baseline run 000*"])
    assert not re.search(r"\| tokens/s +\|.*\| unchanged", result.stdout.str()), "a planted slowdown is never unchanged"


def test_a_plain_pytest_benchmark_run_is_no_baseline_and_says_what_it_holds(run_suite, pytester, capsys):
    pytester.makepyfile(test_plain="def test_sum(benchmark):\n    benchmark(sum, range(100))\n")
    storage = f"--benchmark-storage=file://{pytester.path / 'store'}"
    pytester.runpytest("test_plain.py", "-p", "no:cacheprovider", "--benchmark-json=plain.json", storage,
                       "--benchmark-autosave").assert_outcomes(passed=1)
    holds = "holds no pytest-llmperf cases: 1 plain pytest-benchmark benchmark (test_sum), none saved by pytest-llmperf"
    result = run_suite("--llmperf-baseline=plain.json")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--llmperf-baseline: baseline plain.json {holds}"])
    from pytest_llmperf.cli import main

    capsys.readouterr()
    assert main(["report", "plain.json", "--out", "report"]) == 2
    assert capsys.readouterr().err == f"pytest-llmperf: error: plain.json {holds}\n"
    # --benchmark-compare takes the latest saved run, whoever saved it: each case says what it holds
    selected = run_suite("test_perf.py", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1", storage,
                         "--benchmark-compare")
    selected.assert_outcomes(passed=1)
    selected.stdout.fnmatch_lines([f"*| no baseline: no case * in the baseline: *0001_*.json {holds}*"])


def test_a_bad_baseline_path_is_a_usage_error(run_suite):
    result = run_suite("--llmperf-baseline=missing.json")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-baseline: baseline 'missing.json': no such file*"])


def test_github_summary_and_junit_properties_are_written(run_suite, pytester, monkeypatch):
    save_baseline(run_suite)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = compared(run_suite, "--llmperf-tolerance=0.9", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    text = summary.read_text()
    assert text.startswith("## pytest-llmperf") and "**llmperf: builtin [sdpa-nocompile-float32]" in text
    assert "**llmperf vs baseline base.json" in text and "| case " in text
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert len(properties) == 2
    for props in properties:
        assert float(props["llmperf.tokens_per_s"]) > 0 and props["llmperf.baseline"] == "compared"
        assert props["llmperf.tokens_per_s.verdict"] in ("unchanged", "inconclusive", "improved")
        assert props["llmperf.outputs.identical"] == "8" and props["llmperf.outputs.verdict"] == "identical"

