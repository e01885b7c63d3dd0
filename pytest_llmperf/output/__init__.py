"""What a run leaves behind: the terminal tables (``tables``), the results file (``journal``),
saved runs read back (``saved``) and merged from several machines (``merge``), the report folder and
its figures, the machines side by side (``machines``), the exports (github-action-benchmark,
Bencher), the Hub dataset rows and their history across commits (``history``), and ``writers``,
which writes the outputs a session asked for. The output formats know nothing of each other.

May import: ``verdicts``, ``measure``, ``strategies``, ``model``, ``settings``.
"""
