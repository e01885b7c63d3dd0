"""A session's run: the per-session state (``session``: the resident model, workloads, bs=1
baselines, results), the runner of one case (``runner``), and what the plugin's hooks delegate to:
the start-up checks and notes (``startup``), the axes as parametrization (``parametrize``), test
ordering, progress lines and the end-of-session summary (``terminal``), pytest-xdist (``distributed``:
timing on the workers, their records and benchmarks to the controller; ``scheduling``: a model
configuration on one worker), every reach into pytest-benchmark's session (``benchmark_session``), and
trimming the harness's frames from a user's traceback.

May import: every layer below (``output`` and down). The pytest face (``plugin``, ``fixture``)
sits above it.
"""
