"""Verdicts: the in-session gates (throughput floors, consistency, memory and latency ceilings,
roofline), the cross-commit comparison against a stored run (``regression``) with its noise-aware
statistics, the stored baseline it reads, and the drift diagnosis (near-tie or confident change).

May import: ``measure``, ``strategies``, ``model``, ``settings``.
"""
