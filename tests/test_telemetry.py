"""GPU telemetry and energy (``telemetry.py``) and the bandwidth roofline (``roofline.py``): the pieces
on synthetic samples, the sampling process for real, and what a user sees on a machine without an
NVIDIA GPU. The NVML path itself runs only where CUDA and nvidia-ml-py are present."""

import importlib.util
import json
import time

import pytest
import torch

from conftest import SUITE, busy_warnings, resolved_auto_device
from pytest_llmperf.measure import roofline, telemetry
from pytest_llmperf.measure.telemetry import RaplCounter, Sample, Sampler, Window


def sample(t, power=None, reasons=0, clock=1980.0):
    return Sample(t, 50.0, 1000.0, power, clock, 60.0, reasons)


def saved(pytester) -> list[dict]:
    return [bench["extra_info"] for bench in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]]


# -- the pieces, on synthetic samples ------------------------------------------------------------------

def test_power_is_integrated_over_the_window_only():
    constant = [sample(t / 10, power=100.0) for t in range(0, 31)]  # 100 W from 0 to 3 s
    assert telemetry.integrate_power_j(constant, 1.0, 2.0) == pytest.approx(100.0)
    assert telemetry.integrate_power_j(constant, 1.05, 1.95) == pytest.approx(90.0)  # ends between samples
    ramp = [sample(0.0, power=0.0), sample(2.0, power=200.0)]
    assert telemetry.integrate_power_j(ramp, 0.0, 2.0) == pytest.approx(200.0)
    assert telemetry.integrate_power_j([sample(0.0, power=1.0)], 0.0, 1.0) is None


def test_thermal_and_power_clock_events_are_named():
    assert telemetry.throttle_reasons(0x4 | 0x40) == ["power cap (software)", "thermal (hardware)"]
    assert telemetry.throttle_reasons(0x1) == []  # GPU idle: not a throttle


def test_a_case_takes_the_samples_and_energy_of_its_measured_rounds():
    windows = [Window(1.0, 2.0, 150.0, tokens=300, samples=10), Window(3.0, 4.0, 120.0, tokens=300, samples=10)]
    samples = [sample(t / 10, power=100.0, reasons=0x20 if t == 35 else 0, clock=1500 if t == 35 else 1980)
               for t in range(0, 50)]
    info = telemetry.summarize(windows, samples, "", "nvml energy counter")
    assert info["telemetry_samples"] == 22  # 1.0..2.0 and 3.0..4.0 at 10 Hz, ends included
    assert info["gpu_throttle_reasons"] == ["thermal (software)"] and info["gpu_sm_clock_mhz_min"] == 1500
    assert info["energy_measure"] == "nvml energy counter"
    assert info["energy_j_rounds"] == [150.0, 120.0] and info["energy_j_per_round"] == 135.0
    assert info["energy_per_token_j"] == pytest.approx((0.5 + 0.4) / 2)
    assert info["energy_per_sample_j"] == pytest.approx(13.5)
    without_counter = [Window(1.0, 2.0, None, 300, 10), Window(3.0, 4.0, None, 300, 10)]
    integrated = telemetry.summarize(without_counter, samples, "", None)
    assert integrated["energy_measure"] == "integrated power"
    assert integrated["energy_j_per_round"] == pytest.approx(100.0)


def test_a_counter_that_did_not_advance_over_a_round_gives_way_to_integrated_power():
    """An H200's NVML energy counter read 0 J over some of a case's 30 ms rounds: it updates less often
    than they last, so none of its readings is a round's energy (they compared as a ZeroDivisionError
    with a later run's); the power samples are integrated over every round instead, or, without
    them, energy is not measured."""
    samples = [sample(t / 10, power=100.0) for t in range(0, 50)]
    windows = [Window(1.0, 2.0, 300.0, tokens=300, samples=10), Window(3.0, 4.0, 0.0, tokens=300, samples=10)]
    info = telemetry.summarize(windows, samples, "", "nvml energy counter")
    assert info["energy_measure"] == "integrated power (nvml energy counter did not advance over a round)"
    assert info["energy_j_rounds"] == pytest.approx([100.0, 100.0])
    assert info["energy_per_token_j"] == pytest.approx(100.0 / 300)
    unmeasured = telemetry.summarize(windows, [], "", "nvml energy counter")
    assert unmeasured["energy_measure"] is unmeasured["energy_j_rounds"] is unmeasured["energy_per_token_j"] is None


def test_rapl_counters_add_packages_and_survive_a_wrap(tmp_path):
    zones = {"intel-rapl:0": ("package-0", 900_000, 1_000_000), "intel-rapl:1": ("package-1", 5_000_000, 10 ** 8),
             "intel-rapl:2": ("psys", 7_000_000, 10 ** 8), "intel-rapl:0:0": ("core", 1, 10 ** 8)}
    for zone, (name, value, top) in zones.items():
        folder = tmp_path / zone
        folder.mkdir()
        (folder / "name").write_text(name + "\n")
        (folder / "energy_uj").write_text(f"{value}\n")
        (folder / "max_energy_range_uj").write_text(f"{top}\n")
    counter = RaplCounter.find(str(tmp_path))  # the packages only: psys holds them, core is inside one
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("100000\n")  # wrapped: +200,000 uJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("6000000\n")  # +1,000,000 uJ
    assert counter.joules() == pytest.approx(1.2)


def test_the_sampling_process_samples_at_about_20_hz_and_hands_over_what_it_took():
    sampler = Sampler("sampling_readers:cpu_reader")
    try:
        sampler.fetch()  # started: forget what came before the window
        start = time.monotonic()
        time.sleep(1.0)
        end = time.monotonic()
        taken = sampler.fetch()
    finally:
        sampler.stop()
    inside = [s for s in taken if start <= s.t <= end]
    assert 10 <= len(inside) <= 21, len(inside)  # 20 Hz, less what a busy 2-core machine delays
    assert not sampler.running


def test_a_sampling_process_that_cannot_read_says_why_at_once():
    with pytest.raises(RuntimeError, match="OSError: no such sensor"):
        Sampler("sampling_readers:broken_reader")


def test_a_dead_sampling_process_makes_telemetry_not_available_and_the_case_goes_on():
    source = telemetry.Source(sampler=Sampler("sampling_readers:cpu_reader"))
    source.sampler._process.kill()
    source.sampler._process.wait()
    instrument = telemetry.Telemetry(source)
    info = instrument.summary([Window(0.0, 1.0, None, 10, 1)])
    assert info["telemetry"].startswith("not available: the telemetry process stopped")
    assert source.sampler is None


# -- the roofline -------------------------------------------------------------------------------------

def test_a_decode_step_reads_the_weights_once_and_each_sequences_kv_cache():
    from pytest_llmperf.model.loading import load
    from pytest_llmperf.settings.config import ModelSpec

    target = load(ModelSpec("builtin", "cpu", "float32", "sdpa", "none"))
    model, config = target.model, target.model.config
    step = roofline.decode_bytes(model)
    unique = {p.data_ptr(): p.numel() * 4 for p in model.parameters()}
    embedding = model.get_input_embeddings().weight
    tied = model.get_output_embeddings().weight.data_ptr() == embedding.data_ptr()
    assert step.weights == sum(unique.values()) - (0 if tied else embedding.numel() * 4)
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    assert step.kv_per_token == 2 * config.num_hidden_layers * kv_heads * head_dim * 4
    assert step.per_step(sequences=4, context=100) == step.weights + 400 * step.kv_per_token


def test_the_roofline_fraction_is_bytes_over_step_time_over_bandwidth():
    step = roofline.DecodeBytes(weights=1_000_000, kv_per_token=1_000)
    info = roofline.efficiency(step, roofline.Bandwidth(1e9, 1), {"itl_ms_p50": 2.0, "decode_tokens_per_s": 2000.0},
                               prompt_tokens=90, generated_tokens=20)
    # 4 sequences per step (2000 tokens/s x 2 ms), 100 tokens of context each: 1.4 MB in 2 ms = 0.7 GB/s
    assert info["decode_sequences_per_step"] == pytest.approx(4.0)
    assert info["decode_bytes_per_step"] == pytest.approx(1_400_000)
    assert info["roofline_fraction"] == pytest.approx(0.7)
    assert roofline.efficiency(step, roofline.Bandwidth(1e9, 1), {}, 90, 20)["roofline_fraction"] is None


def test_an_impossible_fraction_is_refused_as_a_disturbed_probe_not_a_number():
    step, latency = roofline.DecodeBytes(weights=1_000_000, kv_per_token=1_000), {"itl_ms_p50": 2.0,
                                                                                  "decode_tokens_per_s": 2000.0}
    # decoding moved 0.7 GB/s; a probe that read 0.5 GB/s ran while something else had the memory
    info = roofline.efficiency(step, roofline.Bandwidth(0.5e9, 3), latency, prompt_tokens=90, generated_tokens=20)
    assert info["roofline_fraction"] is None and info["decode_bytes_per_step"] == pytest.approx(1_400_000)
    assert info["roofline_note"] == ("probe disturbed: decoding moved 1.40x the copy bandwidth the probe read "
                                     "(0.5 GB/s, best of 3 probes); a probe reads low while other work loads the "
                                     "machine")
    # a copy cannot beat the device's own figure either, whatever fraction it gives
    faster = roofline.efficiency(step, roofline.Bandwidth(4e9, 1, device=3e9), latency, 90, 20)
    assert faster["roofline_fraction"] is None
    assert faster["roofline_note"].startswith("probe disturbed: the copy probe read 4 GB/s (best of 1 probe), above "
                                              "the device's own 3 GB/s")
    fine = roofline.efficiency(step, roofline.Bandwidth(1e9, 1, device=3e9), latency, 90, 20)
    assert fine["roofline_fraction"] == pytest.approx(0.7) and fine["roofline_note"] is None
    # nor read 1% of it: on a GPU a launch-bound decode moves so little that the fraction stays below 1
    low = roofline.efficiency(step, roofline.Bandwidth(1e9, 2, device=100e9), latency, 90, 20)
    assert low["roofline_fraction"] is None
    assert low["roofline_note"] == ("probe disturbed: the copy probe read 1 GB/s (best of 2 probes), 1.0% of the "
                                    "device's own 100 GB/s, where a quiet one reads at least 5%; a probe reads low "
                                    "while other work loads the machine")
    mig = roofline.efficiency(step, roofline.Bandwidth(8e9, 1, device=100e9), latency, 90, 20)
    assert mig["roofline_fraction"] == pytest.approx(0.7 / 8) and mig["roofline_note"] is None  # a MIG slice


def test_the_copy_probe_measures_a_plausible_bandwidth():
    bandwidth = roofline.copy_bandwidth("cpu", lambda: None, nbytes=64 * 2 ** 20, copies=3)
    assert 1e8 < bandwidth < 1e12  # between 0.1 GB/s and 1 TB/s


def test_the_probe_keeps_its_best_reading_and_waits_fifty_times_its_cost_before_the_next():
    probe = roofline.Probe("cpu", lambda: None)
    assert probe.due() and probe.reading().measured is None and probe.device_figure is None
    assert probe.device_source == "a CPU gives no figure of its own"
    probe.run()
    assert not probe.due()  # the process runs 50x the probe's cost before the next: at most 2% of it
    assert probe._next_at - time.monotonic() > 0.9 * roofline.PROBE_SPACING * probe.cost_s
    probe.run()
    reading = probe.reading()
    assert reading.probes == 2 and reading.measured == max(probe.readings) and len(probe.readings) == 2


def test_a_reading_above_the_devices_own_figure_is_not_the_best_once_a_possible_one_is_read():
    """A copy cannot beat its device: such a reading was disturbed (a clock read before the copy finished).
    Kept as the best, it would leave the rest of the process without a roofline."""
    step, latency = roofline.DecodeBytes(weights=1_000_000, kv_per_token=1_000), {"itl_ms_p50": 2.0,
                                                                                  "decode_tokens_per_s": 2000.0}
    probe = roofline.Probe("cpu", lambda: None)
    probe.device_figure = 100e9  # as CUDA gives it
    probe.readings.append(150e9)
    impossible = roofline.efficiency(step, probe.reading(), latency, 90, 20)
    assert impossible["roofline_fraction"] is None and "above the device's own 100 GB/s" in impossible["roofline_note"]
    probe.readings.append(80e9)
    reading = probe.reading()
    assert reading.measured == 80e9 and reading.probes == 2
    assert roofline.efficiency(step, reading, latency, 90, 20)["roofline_note"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_probe_reads_below_the_devices_own_figure():
    figure, source = roofline.device_bandwidth("cuda")
    assert figure is not None, source
    probe = roofline.Probe("cuda", torch.cuda.synchronize)
    probe.run()
    # a quiet copy reads 70-90% of the figure; beside other work on the GPU (the other pytest-xdist workers of
    # `pytest tests -n 8`) an H200 read 16%: above the share below which the plugin calls a probe disturbed
    assert roofline.PROBE_MIN_DEVICE_SHARE * figure < probe.reading().measured < figure, (probe.readings, figure, source)


# -- what a user sees ---------------------------------------------------------------------------------

def test_without_an_nvidia_gpu_telemetry_is_not_available_said_once_and_nothing_fails(run_suite, pytester):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", "--llmperf-device=cpu",
                       "--benchmark-json=bench.json")
    result.assert_outcomes(passed=2)
    infos = saved(pytester)
    for info in infos:
        assert set(telemetry.KEYS) <= set(info)
        assert info["telemetry"] == "not available: no NVIDIA GPU in use (device cpu)"
        assert info["gpu_power_w_mean"] is None
        assert set(roofline.KEYS) <= set(info) and 0 < info["roofline_fraction"] < 1
        assert info["memory_bandwidth_probes"] >= 1 and info["device_memory_bandwidth_gb_s"] is None
        assert info["device_memory_bandwidth_source"] == "a CPU gives no figure of its own"
        assert info["roofline_note"] is None
    said = [line for line in result.stdout.lines if "not available: no NVIDIA GPU" in line]
    assert said == ["GPU telemetry and energy: not available: no NVIDIA GPU in use (device cpu)"]


def test_the_roofline_floor_fails_below_and_passes_above(run_suite):
    common = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    tight = run_suite(*common, "--llmperf-min-roofline=1.0")
    tight.assert_outcomes(failed=1)
    tight.stdout.fnmatch_lines(["  roofline fraction: * < required 1 (* MB per step in * ms, copy bandwidth * GB/s)"])
    run_suite(*common, "--llmperf-min-roofline=0.0001").assert_outcomes(passed=1)


# A copy probe that ran while other work had the memory: 0.8 GB/s on a machine that gives 40 when
# quiet. Simulated here by dividing the real probe's reading by 1,000: by 100, as such a machine did,
# the decode of a loaded machine (load average 2.55 on 2 CPUs, beside the other worker of
# `pytest tests -n 2`) once moved less than the probe read, and the probe was not seen as disturbed.
DISTURBED_PROBE = """
import pytest_llmperf.measure.roofline as roofline

quiet = roofline.copy_bandwidth


def pytest_configure(config):
    roofline.copy_bandwidth = lambda *args, **kwargs: quiet(*args, **kwargs) / 1000


def pytest_unconfigure(config):
    roofline.copy_bandwidth = quiet
"""


@pytest.fixture
def a_process_that_never_probed(monkeypatch):
    """The copy probe's readings are kept for the process (``roofline.Probe.of``), and this one ran
    sessions before: for a test of a session's first probe, none are known."""
    monkeypatch.setattr(roofline.Probe, "_of_process", {})


def test_a_second_session_in_the_process_keeps_the_probe_readings_of_the_first(a_process_that_never_probed,
                                                                              run_suite, pytester, monkeypatch):
    """As one long session would: the second session does not probe on its first case, but only once a
    probe is due (here never: the spacing is made too long to come round) or its case decoded faster
    than the best reading allows (here it cannot: a reading no copy reaches is planted before it)."""
    monkeypatch.setattr(roofline, "PROBE_SPACING", 10 ** 6)
    args = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-device=cpu", "--benchmark-json=bench.json")
    run_suite(*args).assert_outcomes(passed=1)
    (first,) = saved(pytester)
    (probe,) = roofline.Probe._of_process.values()
    assert 1 <= first["memory_bandwidth_probes"] == len(probe.readings)
    probe.readings.append(1e13)  # 10 TB/s: a CPU gives no figure of its own to call it impossible
    run_suite(*args).assert_outcomes(passed=1)
    (second,) = saved(pytester)
    assert second["memory_bandwidth_probes"] == first["memory_bandwidth_probes"] + 1 == len(probe.readings)
    assert second["memory_bandwidth_gb_s"] == 1e4 and second["roofline_note"] is None


def test_a_session_with_other_threads_probes_again(a_process_that_never_probed, torch_threads_put_back, run_suite):
    """A copy on more threads moves more: a CPU's readings are kept per thread count (the sessions run in
    this process, so ``--llmperf-threads`` sets its threads: set back after)."""
    args = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-device=cpu")
    run_suite(*args, "--llmperf-threads=1").assert_outcomes(passed=1)
    run_suite(*args, "--llmperf-threads=2").assert_outcomes(passed=1)
    assert sorted(roofline.Probe._of_process) == [("cpu", 1), ("cpu", 2)]


def test_a_disturbed_probe_is_said_and_never_judged_by_the_roofline_floor(a_process_that_never_probed, run_suite,
                                                                          pytester):
    """On CPU the decode then moves more than the probe read; on a GPU, whose launch-bound decode of
    the built-in model moves far less than its memory can, the probe reads below what any copy on the
    device reads (a share of the device's own figure), which a CPU does not give."""
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-min-roofline=0.5",
                       "--benchmark-json=bench.json", conftest=DISTURBED_PROBE)
    result.assert_outcomes(passed=1, warnings=1 + busy_warnings(result))
    (info,) = saved(pytester)
    assert info["roofline_fraction"] is None and info["memory_bandwidth_probes"] == 2  # probed again at once
    on_gpu = resolved_auto_device().startswith("cuda")
    assert (info["device_memory_bandwidth_gb_s"] is not None) is on_gpu
    if on_gpu:
        assert info["memory_bandwidth_gb_s"] < roofline.PROBE_MIN_DEVICE_SHARE * info["device_memory_bandwidth_gb_s"]
        why = ("the copy probe read * GB/s (best of 2 probes), *% of the device's own * GB/s, where a quiet one reads "
               "at least 5%")
    else:
        assert info["decode_bytes_per_step"] / (info["decode_step_ms"] / 1e3) > info["memory_bandwidth_gb_s"] * 1e9
        why = "decoding moved *x the copy bandwidth the probe read (* GB/s, best of 2 probes)"
    result.stdout.fnmatch_lines([
        f"*roofline fraction: not checked (probe disturbed: {why}; a probe reads low while other work loads the "
        "machine)",
        "| 1 * | manual * | probe disturbed |",
        f"roofline of manual bs=1: probe disturbed: {why.split(' (')[0]}*"])


@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("pynvml") is None,
                    reason="needs a CUDA GPU and nvidia-ml-py")
def test_on_an_nvidia_gpu_telemetry_and_energy_are_measured(run_suite, pytester):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-device=cuda",
                       "--llmperf-num-samples=32", "--llmperf-max-new-tokens=32", "--llmperf-rounds=3",
                       "--benchmark-json=bench.json", suite=SUITE)
    result.assert_outcomes(passed=1)
    (info,) = saved(pytester)
    assert info["telemetry"].startswith("nvml") and info["telemetry_samples"] > 0
    assert info["gpu_power_w_mean"] > 0 and info["gpu_sm_clock_mhz_mean"] > 0
    assert info["energy_per_token_j"] > 0 and len(info["metric_samples"]["energy_per_token_j"]) == 3
    assert "energy/token" in result.stdout.str()
