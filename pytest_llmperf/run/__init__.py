"""A session's run: the per-session state (``session``: the resident model, workloads, bs=1
baselines, results), the runner of one case (``runner``), test ordering, passing records between
xdist workers and the controller, and trimming the harness's frames from a user's traceback.

May import: every layer below (``output`` and down). The pytest face (``plugin``, ``fixture``)
sits above it.
"""
