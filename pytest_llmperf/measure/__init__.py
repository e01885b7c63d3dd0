"""Measuring a case: warmup and timed rounds through pytest-benchmark (``timing``), the instruments
read around each round (garbage collector, compile counter, peak memory, latency, telemetry and
energy, speed probe, progress), the roofline, what speculative decoding proposed and kept
(``speculation``), the environment fingerprint, the largest batch size that fits, the outputs
compared with the bs=1 baseline and the references (``compare``), the metric table, the
statistics, and ``RunResult``, what one case measured.

May import: ``strategies``, ``model``, ``settings``.
"""
