"""Batching strategies: one file each, behind one interface (``base.Strategy``, ``RunContext``,
``Generations``), plus ``latency_reporter``, what a strategy calls to report its requests' times.
A new strategy is one module and one line in ``settings/registry.py`` (or ``register_strategy``).

May import: ``model``, ``settings``. The built-in strategies stand alone (a variant may extend the
one it varies: ``keydataset`` a pipeline, ``continuous_serving`` continuous batching, ``bucketed``
manual).
"""
