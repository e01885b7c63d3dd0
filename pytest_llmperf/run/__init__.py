"""A session's run: the per-session state (``session``: the resident model, workloads, bs=1
baselines, results), the runner of one case (``runner``), and what the plugin's hooks delegate to:
the start-up checks and notes (``startup``), the axes as parametrization (``parametrize``), test
ordering, progress lines and the end-of-session summary (``terminal``), passing records between
xdist workers and the controller, and trimming the harness's frames from a user's traceback.

May import: every layer below (``output`` and down). The pytest face (``plugin``, ``fixture``)
sits above it.
"""
