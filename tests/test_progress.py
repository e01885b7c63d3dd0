"""Progress while a long sweep runs (``progress.py``): round k of n, samples done and samples/s so
far, the sweep's ETA, through pytest's terminal reporter; every 10 s on a terminal by default, and a
heartbeat every minute in CI logs."""

import pytest

from pytest_llmperf.measure.progress import Progress, Sweep, duration

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_line_says_the_round_the_rate_and_the_sweeps_eta_at_most_once_per_interval():
    lines, clock = [], Clock()
    sweep = Sweep(total=4, finished_s=[30.0, 50.0])  # two tests done, 40 s each on average
    progress = Progress(lines.append, "manual bs=16", warmup=1, rounds=3, samples=48, sweep=sweep, interval_s=10,
                        clock=clock)
    progress.open()
    clock.now += 4
    progress.after_round()  # 4 s in: too soon for a line
    clock.now += 8
    progress.after_round()  # 12 s in: one line
    clock.now += 4
    progress.after_round()  # 4 s after the last line: none
    assert lines == ["llmperf: manual bs=16: round 2 of 4 (measured 1/3), 96 samples in 12s, 8.0 samples/s | "
                     "sweep: test 3 of 4, about 52s left"]  # 2 rounds left at 6 s, then 1 test at 40 s


def test_the_interval_runs_across_cases_so_that_short_ones_still_show_the_job_is_alive():
    lines, clock = [], Clock()
    sweep = Sweep(total=2)
    for label in ("manual bs=1", "manual bs=4"):  # 40 s each, a line at most every 60 s
        progress = Progress(lines.append, label, warmup=0, rounds=2, samples=8, sweep=sweep, interval_s=60,
                            clock=clock)
        progress.open()
        for _ in range(2):
            clock.now += 20
            progress.after_round()
        sweep.finished(40.0)
    assert len(lines) == 1 and lines[0].startswith("llmperf: manual bs=4: round 1 of 2 (measured 1/2), 8 samples")


def test_durations_read_as_people_write_them():
    assert [duration(s) for s in (0.42, 7, 75, 3725)] == ["0.4s", "7.0s", "1m15s", "1h02m"]


def test_without_a_finished_test_there_is_no_eta_yet():
    assert Sweep(total=3).eta_s(10.0) is None


def test_on_every_round_with_the_sweep_position(run_suite):
    result = run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2", "--llmperf-warmup=1",
                       "--llmperf-rounds=2", "--llmperf-progress=0", suite=SUITE)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([  # ([] is a character class in these patterns: "[[]" is a "[")
        "llmperf: manual bs=1 [[]sdpa-nocompile-float32]: round 1 of 3 (warmup 1/1), 4 samples in *s, * samples/s",
        "llmperf: manual bs=1 [[]sdpa-nocompile-float32]: round 3 of 3 (measured 2/2), 12 samples in *",
        "llmperf: manual bs=2 [[]*]: round 1 of 3 (warmup 1/1), * | sweep: test 2 of 2, about * left",
    ])


def test_off_a_terminal_it_is_a_heartbeat_every_minute_that_off_silences(run_suite, pytester):
    """pytester's output is not a terminal, as a CI log is not: there, pytest's dots for a file only
    show once its tests are all done, so a long job would print nothing; the heartbeat says it is alive."""
    pytester.runpytest("--help").stdout.fnmatch_lines(["*--llmperf-heartbeat=SECONDS*", "*[[]default: 60; ini:*"])
    small = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-num-samples=2",
             "--llmperf-max-new-tokens=4", "--llmperf-warmup=1", "--llmperf-rounds=1")
    heartbeat = run_suite(*small, "--llmperf-heartbeat=0", suite=SUITE)  # at every round
    heartbeat.assert_outcomes(passed=1)
    heartbeat.stdout.fnmatch_lines(["test_perf.py *",  # the line of dots, ended for the heartbeat
                                    "llmperf: manual bs=1 [[]*]: round 1 of 2 (warmup 1/1), 2 samples in *"])
    for silenced in ("--llmperf-heartbeat=off", "--llmperf-progress=off"):
        quiet = run_suite(*small, "--llmperf-heartbeat=0", silenced, suite=SUITE)
        quiet.assert_outcomes(passed=1)
        assert "round 1 of" not in quiet.stdout.str(), silenced


def test_a_bad_heartbeat_value_is_a_usage_error(pytester):
    result = pytester.runpytest("--llmperf-heartbeat=soon")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-heartbeat: invalid value 'soon'; expected a number*"])


@pytest.mark.parametrize("value", ["sometimes", "-1"])
def test_a_bad_progress_value_is_a_usage_error(pytester, value):
    result = pytester.runpytest(f"--llmperf-progress={value}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*--llmperf-progress: invalid value '{value}'; valid values: auto, on, off, or "
                                 "seconds between lines*"])
