"""Settings: the option table (every ``--llmperf-*`` flag, its ini key, parser and default), the
frozen ``Settings``/``ModelSpec``/``WorkloadSpec``/``Thresholds`` built from it, and the strategy
registry (names, with where each is implemented).

The bottom layer: it imports nothing from the rest of the package, and nothing heavy (no torch,
transformers or datasets), since the plugin reads it when pytest starts.
"""
