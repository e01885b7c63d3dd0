"""Batching strategies: one file each, one interface (``base.Strategy``)."""
