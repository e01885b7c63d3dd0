"""What a run leaves behind: the terminal tables (``tables``), the results file (``journal``),
saved runs read back (``saved``), the report folder and its figures, the exports
(github-action-benchmark, Bencher) and the Hub dataset rows, and ``writers``, which writes the
outputs a session asked for. The output formats know nothing of each other.

May import: ``verdicts``, ``measure``, ``strategies``, ``model``, ``settings``.
"""
