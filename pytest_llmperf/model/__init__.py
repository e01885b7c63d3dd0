"""The model and the workload: loading a causal LM for a ``ModelSpec`` (device, dtype, attention,
compile mode; with speculative decoding, its draft), reading and formatting a dataset into prompts,
what identifies both (digests, revisions, causes of changed outputs), and ``builtin/``, the shipped
tiny model, its draft and the dataset files (the scripts that build and verify them are in
``recipes/``).

May import: ``settings``. torch, transformers and datasets are imported inside the functions that
need them.
"""
