"""The model and the workload: loading a causal LM for a ``ModelSpec`` (device, dtype, attention,
compile mode), reading and formatting a dataset into prompts, what identifies both (digests,
revisions, causes of changed outputs), and ``builtin/``, the shipped tiny model and dataset files
(the scripts that build and verify them are in ``recipes/``).

May import: ``settings``. torch, transformers and datasets are imported inside the functions that
need them.
"""
